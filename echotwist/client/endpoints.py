"""
Client endpoints from the command line's words: C{--connect} descriptions,
with errors in the user's terms, and TCP endpoints to one address.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    clientFromString,
)
from twisted.internet.interfaces import IStreamClientEndpoint

from echotwist.client.exits import EXIT_USAGE, ClientExit

__all__ = ["EXAMPLES", "EndpointError", "describe_error", "make_endpoint", "tcp_to"]

#: The client endpoint kinds worth knowing, each with its form and an
#: example.
EXAMPLES = {
    "tcp": "tcp:HOST:PORT (e.g. tcp:localhost:9000)",
    "tls": "tls:HOST:PORT[:trustRoots=DIR] (e.g. tls:localhost:9443:trustRoots=ca/)",
    "unix": "unix:PATH (e.g. unix:/run/echo.sock)",
}
_ALL_FORMS = "; ".join(EXAMPLES.values())


class EndpointError(ValueError):
    """
    A C{--connect} description that can't be used, said in the user's
    terms.
    """


def describe_error(description: str, error: Exception) -> str:
    """
    Say what is wrong with an endpoint description Twisted refused, without
    Twisted's internals (C{TCP4ClientEndpoint.__init__() missing 1 required
    positional argument: 'port'}).

    @param description: what the user typed.
    @param error: what C{clientFromString} raised.
    @return: one line: what was typed, what is wrong, what would work.
    """
    kind = description.split(":", 1)[0]
    form = EXAMPLES.get(kind, _ALL_FORMS)
    text = str(getattr(error, "originalException", error) or "")
    if text.startswith("Unknown endpoint type"):
        return f"--connect {description!r}: unknown kind {kind!r}; use {_ALL_FORMS}"
    if kind in ("tcp", "tls") and ("[" in description or "::" in description):
        # An IPv6 address: Twisted reads its colons as separators.
        other = ", or --host ::1 --port 9000" if kind == "tcp" else ""
        return (
            f"--connect {description!r}: escape each colon of an IPv6 address"
            f" (e.g. {kind}:\\:\\:1:9000){other}"
        )
    missing = re.findall(r"'(\w+)'", text) if "missing" in text else []
    if missing:
        names = " and ".join(missing)
        return f"--connect {description!r}: no {names} given; use {form}"
    if unexpected := re.search(r"unexpected keyword argument '(\w+)'", text):
        return (
            f"--connect {description!r}: {kind} takes no {unexpected.group(1)}="
            f"; use {form}"
        )
    if number := re.search(r"invalid literal for int\(\) with base 10: (.*)", text):
        return (
            f"--connect {description!r}: {number.group(1)} is not a number; use {form}"
        )
    if not text:
        text = type(error).__name__
    return f"--connect {description!r}: {text}"


def make_endpoint(reactor: Any, args: Any) -> IStreamClientEndpoint:
    """
    @param reactor: the reactor.
    @param args: the parsed command line (C{connect}, C{host}, C{port}).
    @return: the endpoint C{--connect}, or C{--host} and C{--port}, name.
    @raise ClientExit: with the usage status, for an endpoint description
        Twisted can't parse.
    """
    if args.connect is None:
        return HostnameEndpoint(reactor, args.host, args.port)
    if args.connect.split(":", 1)[0] in ("tls", "ssl"):
        try:
            import OpenSSL  # noqa: F401
        except ImportError as e:
            # Twisted's tls: parser fails with a NameError without it.
            raise ClientExit(
                EXIT_USAGE,
                f"--connect {args.connect!r}: {e}: pip install 'echotwist[tls]'",
            ) from None
    try:
        endpoint: IStreamClientEndpoint = clientFromString(reactor, args.connect)
        return endpoint
    except (ValueError, KeyError, TypeError, ImportError, OSError) as e:
        # UnlistableError (a trustRoots directory that can't be read) says
        # nothing itself: its originalException says why.
        raise ClientExit(EXIT_USAGE, describe_error(args.connect, e)) from None


def tcp_to(
    reactor: Any,
    address: str,
    port: int,
    timeout: float,
    bind: tuple[str, int] | None = None,
) -> IStreamClientEndpoint:
    """
    @param reactor: the reactor.
    @param address: an IPv4 or IPv6 address (not a name).
    @param port: the server's port.
    @param timeout: seconds for connecting.
    @param bind: the source address and port, if one is asked for.
    @return: a TCP endpoint to exactly that address.
    """
    if ipaddress.ip_address(address).version == 6:
        return TCP6ClientEndpoint(reactor, address, port, timeout, bind)
    return TCP4ClientEndpoint(reactor, address, port, timeout, bind)
