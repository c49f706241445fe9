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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.python import usage

from echotwist.server.proxy import HeaderBeforeTLS, ProxyEndpoint, ProxySettings

#: The largest TCP or UDP port number.
MAX_PORT = 65535


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


def port_number(text: str) -> int | None:
    """
    Read a port number as typed.

    @param text: an option's value, or the port part of one.
    @return: the number C{text} spells in ASCII digits, after an optional
        minus sign and whether or not it is in range (the caller says what
        is wrong with it), or L{None} if it spells none.  (C{str.isdigit}
        alone would accept digits C{int} rejects, such as C{"\u00b2"}.)
    """
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        return int(text)
    return None


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


def endpoint_description(port: str, backlog: int) -> str:
    """
    Turn a C{--port} value into a full server endpoint description.

    @param port: a port number (C{9000}, made C{tcp:9000}) or any server
        endpoint string (C{tcp6:9000:interface=\\:\\:1}, C{unix:/run/echo}),
        perhaps behind C{haproxy:} (C{haproxy:9000} is made
        C{haproxy:tcp:9000}).
    @param backlog: listen queue length, added where the endpoint type takes
        one and the description does not already set it.
    @return: the full description, for L{endpoints.serverFromString}.
    @raise usage.UsageError: for a port number outside 0-65535.
    """
    number = port_number(port)
    if number is not None:
        if not 0 <= number <= MAX_PORT:
            raise usage.UsageError(f"--port {port}: a port number is 0-{MAX_PORT}")
        port = f"tcp:{number}"
    elif proxied(port) and port_number(inner_description(port)) is not None:
        inner = endpoint_description(inner_description(port), backlog)
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
    Say why a listener failed, in a few words.

    @param error: what listening (or parsing the endpoint) raised.
    @return: the system's words and the file at fault for an L{OSError}
        (C{No such file or directory: /run/echo/echo.sock.lock}), the
        socket error of a L{CannotListenError}, else the exception's message
        (or its type's name, if it has none).
    """
    if isinstance(error, CannotListenError) and error.socketError is not None:
        inner = error.socketError
        return failure_reason(inner) if isinstance(inner, BaseException) else str(inner)
    if isinstance(error, OSError) and error.strerror:
        name = error.filename2 if error.filename2 is not None else error.filename
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return error.strerror if name is None else f"{error.strerror}: {name}"
    return str(error) or type(error).__name__


def _about_the_environment(error: Exception) -> bool:
    """
    @param error: what parsing an endpoint description raised.
    @return: whether it says something about the system rather than the
        description: a file that can't be read (L{OSError}), a key or
        certificate that OpenSSL refuses (its module's exceptions).
    """
    return isinstance(error, OSError) or type(error).__module__.startswith("OpenSSL")


def check_endpoint(description: str, option: str = "port") -> None:
    """
    Parse a server endpoint description now, so a typo is a usage error
    rather than a traceback once twistd starts.

    @param description: the full description.
    @param option: the option it came from, for the message.
    @raise ListenerError: if the description is well formed but what it
        names is not there: no such socket passed by systemd, a TLS file
        that can't be read or isn't PEM.
    @raise usage.UsageError: if Twisted can't make an endpoint of it for any
        other reason.
    """
    from twisted.internet import reactor

    try:
        endpoints.serverFromString(reactor, description)
    except IndexError:
        raise ListenerError(
            option,
            description,
            "no such socket passed by systemd (LISTEN_FDS, LISTEN_PID)",
        ) from None
    except Exception as e:
        # Endpoint parsers and plugins raise anything: ValueError for a
        # typo, OpenSSL.crypto.Error for a key file that isn't PEM, ...
        if _about_the_environment(e):
            raise ListenerError(option, description, failure_reason(e)) from None
        reason = str(e) or type(e).__name__
        raise usage.UsageError(f"--{option} {description!r}: {reason}") from None


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
