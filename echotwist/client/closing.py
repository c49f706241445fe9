"""
Closing a stream connection the way C{nc -N} does, so that the server sees
a clean end: half-close (or TLS C{close_notify}), then wait for the server
to close its side.

A plain C{loseConnection} closes both directions at once: over a UNIX
socket the server's own half-close then fails (C{EPIPE}) and it logs the
connection as "lost in a non-clean fashion"; over TLS the process may exit
before the server's C{close_notify} arrives, which the server sees as a
reset.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime, ISSLTransport

#: Seconds the server gets to close its side after ours, before the
#: connection is aborted.
CLOSE_GRACE = 2.0


def close_cleanly(
    transport: Any, clock: IReactorTime, grace: float = CLOSE_GRACE
) -> IDelayedCall | None:
    """
    Start a clean close of C{transport}: TLS sends C{close_notify} and waits
    for the server's; TCP and UNIX shut their sending side, so that the
    server reads the end and closes. Either way the connection ends when the
    server closes its side, or is aborted after C{grace} seconds.

    @param transport: a connected stream transport.
    @param clock: for the grace period.
    @param grace: seconds the server gets.
    @return: the call that aborts the connection after C{grace} (cancel it
        when the connection is lost first), or L{None} for a transport that
        can only be closed at once.
    """
    half_close = getattr(transport, "loseWriteConnection", None)
    if ISSLTransport.providedBy(transport) or half_close is None:
        # TLS: loseConnection sends close_notify and closes the socket
        # only once the peer's close_notify came back. (A TLS wrapper
        # forwards unknown names to the TCP transport below it, so its
        # loseWriteConnection would skip close_notify.)
        transport.loseConnection()
        if not ISSLTransport.providedBy(transport):
            return None
    else:
        half_close()
    abort = getattr(transport, "abortConnection", transport.loseConnection)
    return clock.callLater(grace, abort)
