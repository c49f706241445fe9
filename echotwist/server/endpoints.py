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
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.python import usage

from echotwist.ports import MAX_PORT as MAX_PORT
from echotwist.ports import PORT_RANGE, not_a_port
from echotwist.ports import port_number as port_number


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


def endpoint_kind(description: str) -> str:
    """
    @param description: a server endpoint description.
    @return: its type, in lower case: C{tcp} for C{TCP:9000:backlog=5}.
    """
    return description.split(":", 1)[0].lower()


def takes_backlog(description: str) -> bool:
    """
    @param description: a server endpoint description.
    @return: whether its kind takes a C{backlog} parameter.
    """
    return _KINDS.get(endpoint_kind(description), _OTHER).backlog


def shareable(description: str) -> bool:
    """
    @param description: a server endpoint description.
    @return: whether C{--workers} can share its listening socket.
    """
    return _KINDS.get(endpoint_kind(description), _OTHER).shareable


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
            f"--port {value}: an IPv6 address goes in brackets, e.g. [::1]:9000"
        )
    number = port_number(port)
    if number is None or not 0 <= number <= MAX_PORT:
        raise usage.UsageError(
            f"--port {value}: expected HOST:PORT, e.g. 127.0.0.1:9000 or "
            f"[::1]:9000 ({PORT_RANGE})"
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
        string (C{tcp6:9000:interface=\\:\\:1}, C{unix:/run/echo}).
    @param backlog: listen queue length, added where the endpoint type takes
        one and the description does not already set it.
    @param ipv6: for a port number, as for L{any_address}.
    @return: the full description, for L{endpoints.serverFromString}.
    @raise usage.UsageError: for a port number outside 0-65535.
    """
    number = port_number(port)
    if number is not None:
        if not 0 <= number <= MAX_PORT:
            raise usage.UsageError(not_a_port("--port", port))
        port = any_address(number, ipv6)
    elif (interface := host_port(port)) is not None:
        port = interface
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


def check_endpoint(
    description: str, option: str = "port", typed: str | None = None
) -> None:
    """
    Parse a server endpoint description now, so a typo is a usage error
    rather than a traceback once twistd starts.

    @param description: the full description.
    @param option: the option it came from, for the message.
    @param typed: what the user typed, if not C{description} (the message
        names it, not parameters echotwist added such as C{backlog=}).
    @raise usage.UsageError: if Twisted can't make an endpoint of it.
    """
    from twisted.internet import reactor

    shown = repr(description if typed is None else typed)
    try:
        endpoints.serverFromString(reactor, description)
    except IndexError:
        raise usage.UsageError(
            f"--{option} {shown}: no such socket passed by systemd "
            "(LISTEN_FDS, LISTEN_PID)"
        ) from None
    except Exception as e:
        # Endpoint parsers and plugins raise anything: ValueError for a
        # typo, OpenSSL.crypto.Error for a key file that isn't PEM, ...
        reason = str(e) or type(e).__name__
        raise usage.UsageError(f"--{option} {shown}: {_explain(reason)}") from None


#: Python's message for a number C{int} could not read.
_NOT_INT = re.compile(r"invalid literal for int\(\) with base 10: (.*)")


def _explain(reason: str) -> str:
    """
    @param reason: what an endpoint parser raised, as text.
    @return: C{reason} in the user's terms, with what would work.
    """
    if found := _NOT_INT.fullmatch(reason):
        return (
            f"{found.group(1)} is not a port number ({PORT_RANGE}), "
            "e.g. tcp:9000 or 9000"
        )
    if reason.startswith("Unknown endpoint type"):
        return (
            f"{reason}; expected a port number (9000), HOST:PORT "
            "(127.0.0.1:9000, [::1]:9000) or an endpoint such as tcp:9000, "
            "tcp6:9000, unix:/tmp/echo.sock or ssl:9443:privateKey=key.pem"
        )
    return reason


#: The longest path a UNIX socket can have on Linux, in bytes.
UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class Listener:
    """
    One listening endpoint, as the user asked for it.

    @ivar option: the option, without dashes (C{port}, C{metrics}).
    @ivar typed: its value as typed.
    @ivar description: the full description it was made.
    """

    option: str
    typed: str
    description: str

    def address(self) -> tuple[str, str]:
        """
        @return: the interface (C{""} if not given) and the port or path
            the description names, as Twisted's parser would read them.
        """
        fields = [
            f.replace("\\:", ":")
            for f in re.split(r"(?<!\\):", inner_endpoint(self.description))
        ]
        named = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        plain = [f for f in fields[1:] if "=" not in f]
        where = named.get("port", named.get("address", plain[0] if plain else ""))
        return named.get("interface", ""), where


def inner_endpoint(description: str) -> str:
    """
    @param description: a server endpoint description.
    @return: the description a wrapper kind (C{haproxy:}) wraps, or
        C{description} itself.
    """
    if endpoint_kind(description) == "haproxy":
        return description.split(":", 1)[1]
    return description


def listen_failure(listeners: Sequence[Listener], error: CannotListenError) -> str:
    """
    Say, in one line, which option could not listen, why, and what would.

    @param listeners: every endpoint the process listens on.
    @param error: what one of them failed with.
    @return: the message: the option and value as typed, what is wrong and
        what would work.
    """
    port = error.port
    where = str(port) if not isinstance(port, bytes) else port.decode(errors="replace")
    interface = error.interface or ""
    found = [each for each in listeners if each.address()[1] == where]
    if len(found) > 1:
        found = [each for each in found if each.address()[0] == interface] or found
    named = " and ".join(f"--{each.option} {each.typed}" for each in found)
    if not named:
        named = f"port {where}"
    unix = bool(found) and endpoint_kind(inner_endpoint(found[0].description)) in (
        "unix",
    )
    socket_error = error.socketError
    number = getattr(socket_error, "errno", None)
    if unix:
        place = where
    elif interface in ("", "::", "0.0.0.0"):
        place = f"port {where}"
    else:
        place = f"port {where} on {interface}"
    if unix and "too long" in str(socket_error):
        size = len(where.encode())
        return (
            f"{named}: the path is {size} bytes long, and a UNIX socket path "
            f"can be at most {UNIX_PATH_MAX}: choose a shorter one, e.g. "
            "unix:/tmp/echo.sock"
        )
    if number == errno.EADDRINUSE:
        if len(found) > 1:
            return f"{named}: both name {place}: give each a port of its own"
        if unix:
            return (
                f"{named}: {place} is in use by another server: stop it, or "
                "choose another path"
            )
        return (
            f"{named}: {place} is in use by another program: stop it, or choose "
            "another port (0 picks a free one)"
        )
    if number == errno.EACCES:
        if unix:
            return (
                f"{named}: permission denied to create {place}: choose a "
                "directory you can write to"
            )
        return (
            f"{named}: permission denied to listen on {place}: ports below 1024 "
            "need root or CAP_NET_BIND_SERVICE; choose a port of 1024 or more"
        )
    if number == errno.EADDRNOTAVAIL:
        return (
            f"{named}: {interface} is not an address of this machine: choose "
            "one of its addresses, or leave interface= out to listen on all"
        )
    reason = getattr(socket_error, "strerror", None) or str(socket_error)
    return f"{named}: can't listen on {place}: {reason}"
