"""
Endpoint descriptions, as C{--port} takes them: what kind each is, whether
it takes a listen backlog, whether C{--workers} can share it, and the full
description built from what was typed.

Every property of a kind is in L{_KINDS}; a kind not listed there (an
endpoint plugin's) takes no backlog and can't be shared.

The PROXY protocol wrapper (C{haproxy:tcp:9000}, L{twisted.protocols.haproxy})
plugs in here as a I{wrapper} kind: a prefix followed by a whole inner
description.  L{endpoint_kind} stays C{haproxy}; L{takes_backlog} and
L{shareable} answer for the inner description (C{tcp:9000}), so that
L{endpoint_description} adds C{backlog=} to it (Twisted's parser hands the
rest of the string on unchanged), and C{--workers} shares the inner socket
while each worker wraps its adopted endpoint with the PROXY parser again.
L{server_endpoint} makes every endpoint that serves, a C{haproxy:} one
with L{echotwist.server.proxy}'s reader rather than Twisted's wrapper (see
there why), and with the header before TLS for C{haproxy:ssl:}.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.python import usage

from echotwist.ports import MAX_PORT as MAX_PORT
from echotwist.ports import not_a_port
from echotwist.ports import port_number as port_number
from echotwist.server.proxy import HeaderBeforeTLS, ProxyEndpoint, ProxySettings


@dataclass(frozen=True)
class _Kind:
    """
    What echotwist knows about one kind of server endpoint.

    @ivar backlog: whether it takes a C{backlog} parameter.
    @ivar shareable: whether workers can adopt its listening socket: a plain
        one, ready as soon as C{listen} returns.
    """

    backlog: bool
    shareable: bool


_KINDS = {
    "tcp": _Kind(backlog=True, shareable=True),
    "tcp6": _Kind(backlog=True, shareable=True),
    "unix": _Kind(backlog=True, shareable=True),
    "ssl": _Kind(backlog=True, shareable=False),
    "systemd": _Kind(backlog=False, shareable=True),
}

_OTHER = _Kind(backlog=False, shareable=False)

#: The prefix of a PROXY protocol port: C{haproxy:} and a whole inner
#: description (L{echotwist.server.proxy}).
PROXY_PREFIX = "haproxy:"


def proxied(description: str) -> bool:
    """
    @param description: a server endpoint description.
    @return: whether it is a PROXY protocol one (C{haproxy:...}).
    """
    return endpoint_kind(description) == "haproxy"


def inner_description(description: str) -> str:
    """
    @param description: a server endpoint description.
    @return: the description a C{haproxy:} prefix wraps (C{tcp:9000} for
        C{haproxy:tcp:9000}), or C{description} itself.
    """
    if proxied(description):
        return description[len(PROXY_PREFIX) :]
    return description


def endpoint_kind(description: str) -> str:
    """
    @param description: a server endpoint description.
    @return: its type, in lower case: C{tcp} for C{TCP:9000:backlog=5}.
    """
    return description.split(":", 1)[0].lower()


def takes_backlog(description: str) -> bool:
    """
    @param description: a server endpoint description.
    @return: whether its kind (for C{haproxy:}, its inner description's)
        takes a C{backlog} parameter.
    """
    return _KINDS.get(endpoint_kind(inner_description(description)), _OTHER).backlog


def shareable(description: str) -> bool:
    """
    @param description: a server endpoint description.
    @return: whether C{--workers} can share its listening socket (for
        C{haproxy:}, its inner description's).
    """
    return _KINDS.get(endpoint_kind(inner_description(description)), _OTHER).shareable


def dual_stack() -> bool:
    """
    Whether this host can listen on IPv6 and IPv4 with one socket: it has
    IPv6, and a new IPv6 socket accepts IPv4-mapped connections
    (C{IPV6_V6ONLY} off, Linux's C{net.ipv6.bindv6only=0}, the default).

    @return: whether a bare port number can be a C{tcp6} one.
    """
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            return probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    except (OSError, AttributeError):
        return False


def any_address(number: int, ipv6: bool | None = None) -> str:
    """
    The description of TCP port C{number} on every address, where clients
    look for it: a dual-stack IPv6 socket (C{tcp6}, interface C{::}) that
    also accepts IPv4 connections, or IPv4 only (C{tcp}) where there is no
    such socket.

    @param number: the port number.
    @param ipv6: whether to use the dual-stack socket; L{None} asks
        L{dual_stack}.
    @return: C{tcp6:NUMBER} or C{tcp:NUMBER}.
    """
    if ipv6 is None:
        ipv6 = dual_stack()
    return f"tcp6:{number}" if ipv6 else f"tcp:{number}"


def host_port(value: str) -> str | None:
    """
    Read C{HOST:PORT} (C{127.0.0.1:9000}, C{[::1]:9000}) as TCP on that
    interface, as C{--udp} reads it.

    @param value: a C{--port} value.
    @return: its C{tcp} or C{tcp6} description, or L{None} if C{value} does
        not start with an IP address and a colon (it may be an endpoint
        description).
    @raise usage.UsageError: for an IP address with no port number after
        it, or an IPv6 address not in brackets.
    """
    host, colon, port = value.rpartition(":")
    if not colon:
        return None
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return None
    if address.version == 6 and not bracketed:
        raise usage.UsageError(
            f"--port {value!r}: an IPv6 address goes in brackets, e.g. [::1]:9000"
        )
    number = port_number(port)
    if number is None or not 0 <= number <= MAX_PORT:
        raise usage.UsageError(
            f"--port {value!r}: {not_a_port(port)}; expected HOST:PORT, e.g. "
            "127.0.0.1:9000 or [::1]:9000"
        )
    if address.version == 6:
        interface = str(address).replace(":", "\\:")
        return f"tcp6:{number}:interface={interface}"
    return f"tcp:{number}:interface={address}"


def endpoint_description(port: str, backlog: int, ipv6: bool | None = None) -> str:
    """
    Turn a C{--port} value into a full server endpoint description.

    @param port: a port number (C{9000}, made L{any_address}'s C{tcp6:9000}
        or C{tcp:9000}), C{HOST:PORT} (L{host_port}) or any server endpoint
        string (C{tcp6:9000:interface=\\:\\:1}, C{unix:/run/echo}),
        perhaps behind C{haproxy:} (C{haproxy:9000} is made
        C{haproxy:tcp6:9000}).
    @param backlog: listen queue length, added where the endpoint type takes
        one and the description does not already set it.
    @param ipv6: for a port number, as for L{any_address}.
    @return: the full description, for L{endpoints.serverFromString}.
    @raise usage.UsageError: for a port number outside 0-65535.
    """
    number = port_number(port)
    if number is not None:
        if not 0 <= number <= MAX_PORT:
            raise usage.UsageError(f"--port {not_a_port(port)}")
        port = any_address(number, ipv6)
    elif (interface := host_port(port)) is not None:
        port = interface
    elif proxied(port) and (
        port_number(inner_description(port)) is not None
        or host_port(inner_description(port)) is not None
    ):
        inner = endpoint_description(inner_description(port), backlog, ipv6)
        return PROXY_PREFIX + inner
    if takes_backlog(port) and "backlog=" not in port:
        port = f"{port}:backlog={backlog}"
    return port


def check_shareable(descriptions: Sequence[str]) -> None:
    """
    Check that workers can share every port: C{tcp}, C{tcp6}, C{unix} or
    C{systemd}, whose listening socket is plain and ready at once.

    @param descriptions: the server endpoint descriptions.
    @raise usage.UsageError: naming the first that can't be shared.
    """
    kinds = sorted(name for name, kind in _KINDS.items() if kind.shareable)
    for description in descriptions:
        if not shareable(description):
            raise usage.UsageError(
                f"--port {description!r}: --workers can share only "
                f"{', '.join(kinds)} ports"
            )


class ListenerError(usage.UsageError):
    """
    A listener can't start for a reason outside the command line's syntax: a
    port in use, a directory that is missing or can't be written, a TLS file
    that can't be read, no socket passed by systemd.

    It is a L{usage.UsageError}, so that whoever parses L{Options} without
    twistd meets it as one; twistd itself gets one line (see
    L{echotwist.server.tap}).

    @ivar option: the option, without its dashes (C{port}, C{metrics},
        C{udp}).
    @ivar description: the option's value.
    @ivar reason: why it can't listen.
    """

    def __init__(self, option: str, description: str, reason: str) -> None:
        super().__init__(f"--{option} {description!r}: {reason}")
        self.option = option
        self.description = description
        self.reason = reason


def failure_reason(error: BaseException) -> str:
    """
    Say why a listener failed, in a few words, and what would work.

    @param error: what listening (or parsing the endpoint) raised.
    @return: the system's words and the file at fault for an L{OSError}
        (C{No such file or directory: /run/echo/echo.sock.lock}), the
        socket error of a L{CannotListenError}, else the exception's message
        (or its type's name, if it has none); for a port in use, one that
        needs privileges, an address the host lacks or a UNIX socket path
        too long (said in words, not as bytes), what to do instead.
    """
    if isinstance(error, CannotListenError) and error.socketError is not None:
        inner = error.socketError
        if "path too long" in str(inner) and isinstance(error.port, (bytes, str)):
            size = len(os.fsencode(error.port))
            return (
                f"the path is {size} bytes long, and a UNIX socket path can be "
                f"at most {UNIX_PATH_MAX}: choose a shorter one, e.g. "
                "unix:/tmp/echo.sock"
            )
        return failure_reason(inner) if isinstance(inner, BaseException) else str(inner)
    if isinstance(error, OSError) and error.strerror:
        name = error.filename2 if error.filename2 is not None else error.filename
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if name is None and error.errno in ADVICE:
            return f"{error.strerror}: {ADVICE[error.errno]}"
        return error.strerror if name is None else f"{error.strerror}: {name}"
    return str(error) or type(error).__name__


#: The longest path a UNIX socket can have on Linux, in bytes.
UNIX_PATH_MAX = 107

#: What would work, for the errors a C{bind} gives.
ADVICE = {
    errno.EADDRINUSE: (
        "another program listens there; stop it, or choose another port "
        "(0 picks a free one)"
    ),
    errno.EACCES: (
        "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port "
        "of 1024 or more"
    ),
    errno.EADDRNOTAVAIL: (
        "not an address of this machine; choose one of its addresses, or "
        "leave the interface out to listen on all"
    ),
}


def _about_the_environment(error: Exception) -> bool:
    """
    @param error: what parsing an endpoint description raised.
    @return: whether it says something about the system rather than the
        description: a file that can't be read (L{OSError}), a key or
        certificate that OpenSSL refuses (its module's exceptions).
    """
    return isinstance(error, OSError) or type(error).__module__.startswith("OpenSSL")


def check_endpoint(
    description: str, option: str = "port", typed: str | None = None
) -> None:
    """
    Parse a server endpoint description now, so a typo is a usage error
    rather than a traceback once twistd starts.

    @param description: the full description.
    @param option: the option it came from, for the message.
    @param typed: what the user typed, if not C{description}: the message
        names it, not parameters echotwist added such as C{backlog=}.
    @raise ListenerError: if the description is well formed but what it
        names is not there: no such socket passed by systemd, a TLS file
        that can't be read or isn't PEM.
    @raise usage.UsageError: if Twisted can't make an endpoint of it for any
        other reason.
    """
    from twisted.internet import reactor

    shown = description if typed is None else typed
    try:
        endpoints.serverFromString(reactor, description)
    except IndexError:
        raise ListenerError(
            option,
            shown,
            "no such socket passed by systemd (LISTEN_FDS, LISTEN_PID)",
        ) from None
    except ImportError as e:
        # ssl: without the tls extra (pyOpenSSL): say how to get it.
        raise usage.UsageError(
            f"--{option} {shown!r}: {e}: pip install 'echotwist[tls]'"
        ) from None
    except Exception as e:
        # Endpoint parsers and plugins raise anything: ValueError for a
        # typo, OpenSSL.crypto.Error for a key file that isn't PEM, ...
        if _about_the_environment(e):
            raise ListenerError(option, shown, failure_reason(e)) from None
        reason = _explain(str(e) or type(e).__name__)
        raise usage.UsageError(f"--{option} {shown!r}: {reason}") from None


#: Python's message for a number C{int} could not read.
_NOT_INT = re.compile(r"invalid literal for int\(\) with base 10: (.*)")


def _explain(reason: str) -> str:
    """
    @param reason: what an endpoint parser raised, as text.
    @return: C{reason} in the user's terms, with what would work.
    """
    if found := _NOT_INT.fullmatch(reason):
        return f"{not_a_port(found.group(1)[1:-1])}, e.g. tcp:9000"
    if reason.startswith("Unknown endpoint type"):
        return (
            f"{reason}; expected a port number (9000), HOST:PORT "
            "(127.0.0.1:9000, [::1]:9000) or an endpoint such as tcp:9000, "
            "tcp6:9000, unix:/tmp/echo.sock or ssl:9443:privateKey=key.pem"
        )
    return reason


def server_endpoint(
    reactor: Any, description: str, proxy: ProxySettings
) -> IStreamServerEndpoint:
    """
    Make the endpoint a full description names, reading a C{haproxy:}
    prefix as echotwist does rather than as Twisted does: the header is
    required within C{proxy}'s timeout, from C{proxy}'s trusted peers, and
    under TLS (C{haproxy:ssl:...}) it comes first, before the handshake.

    @param reactor: the reactor.
    @param description: a description L{endpoint_description} made.
    @param proxy: the process's PROXY settings.
    @return: the endpoint.
    """
    endpoint: IStreamServerEndpoint
    if not proxied(description):
        endpoint = endpoints.serverFromString(reactor, description)
        return endpoint
    inner = inner_description(description)
    if endpoint_kind(inner) == "ssl":
        endpoint = endpoints.serverFromString(HeaderBeforeTLS(reactor, proxy), inner)
        return endpoint
    return ProxyEndpoint(endpoints.serverFromString(reactor, inner), proxy)
