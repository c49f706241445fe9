"""
Echo on a plain connection without the layers Twisted puts round each call.

Writing: an echo goes straight to the socket when nothing is waiting to go
out.  L{FileDescriptor.write} only buffers: the bytes leave on the reactor's next
writable event, which costs two C{epoll_ctl} calls (start and stop watching
for writability) and one more trip round the reactor for every echo.  When
the transport's buffer is empty nothing can be overtaken, so sending at once
keeps the order and skips all of that; whatever the socket does not take is
handed to C{transport.write} as usual, which then buffers it, pauses the
producer past C{bufferSize} and closes on error exactly as before.

Reading: the reactor calls a connection's C{doRead}, which calls
C{_dataReceived}, which calls the protocol's C{dataReceived}, which writes.
For an echo those calls, not the two system calls, are most of the Python
time per echo; L{read_and_echo} does the same work in one call and is put in
the connection's C{doRead}'s place.

Only plain TCP and UNIX connections (L{twisted.internet.tcp.Connection} and
its subclasses) with no TLS started take the direct paths, and only those
whose C{doRead} is Twisted's plain C{recv} one (not UNIX's, which receives
file descriptors) read directly; every other transport, and any of those
with something buffered or closing, gets C{transport.write} and Twisted's
own C{doRead}.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeGuard

from twisted.internet import main
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection

from echotwist._twisted_private import (
    has_plain_do_read,
    peer_closed,
    send,
    tls_started,
)

__all__ = [
    "Counted",
    "can_read_directly",
    "can_send_directly",
    "read_and_echo",
    "reads_directly",
    "send",
]


class Counted(Protocol):
    """
    What L{read_and_echo} updates on the protocol for each chunk it echoes:
    an L{echotwist.server.protocol.Echo}'s byte count and idle timer.
    """

    bytes_in: int

    @property
    def timeOut(self) -> float | None:
        """
        The idle timeout in seconds, or L{None} if there is none.
        """

    def resetTimeout(self) -> None:
        """
        Start the idle timer again: something was received.
        """


def can_send_directly(transport: ITransport) -> TypeGuard[Connection]:
    """
    Decide, once per connection, whether L{send} may be used on it.

    TLS is started on a connection only by its protocol calling
    C{startTLS}; a protocol that never does may decide this once, when the
    connection is made.

    @param transport: a connected transport.
    @return: whether it is a TCP or UNIX connection with no TLS started.
    """
    return isinstance(transport, Connection) and not tls_started(transport)


def can_read_directly(connection: Connection, protocol: object) -> bool:
    """
    Decide whether L{read_and_echo} may stand in for C{connection.doRead}.

    @param connection: a connection L{can_send_directly} accepted.
    @param protocol: the echo protocol being connected to it.
    @return: whether its C{doRead} is L{Connection.doRead}, the one
        L{read_and_echo} does the work of, and C{protocol} is its protocol
        (not one wrapped inside it).
    """
    return has_plain_do_read(connection) and connection.protocol is protocol


def reads_directly(connection: Connection) -> Callable[[], object]:
    """
    @param connection: a connection L{can_read_directly} accepted.
    @return: L{read_and_echo} bound to it and its socket's C{recv}, to take
        the place of its C{doRead}.
    """
    socket = connection.getHandle()
    return partial(read_and_echo, connection, socket.recv)


def read_and_echo(
    connection: Connection, recv: Callable[[int], bytes]
) -> ConnectionDone | ConnectionLost | None:
    """
    Read what the socket has and echo it: L{Connection.doRead}, C{Echo}'s
    C{dataReceived} and L{send} in one call, with their results.

    Bound to the connection by L{reads_directly}, it takes the place of the
    connection's own C{doRead}.

    @param connection: a connection L{can_read_directly} accepted, whose
        protocol stays the same echo protocol and never starts TLS; its
        count and idle timer are updated as its C{dataReceived} would.
    @param recv: its socket's C{recv}.
    @return: what C{doRead} returns: why the connection ended (the peer
        closed or reset it), or L{None} while it goes on.
    """
    try:
        data = recv(connection.bufferSize)
    except BlockingIOError:
        return None
    except OSError:
        return main.CONNECTION_LOST
    if not data:
        return peer_closed(connection)
    protocol: Counted = connection.protocol  # type: ignore[assignment]
    protocol.bytes_in += len(data)
    if protocol.timeOut is not None:
        protocol.resetTimeout()
    send(connection, data)
    return None
