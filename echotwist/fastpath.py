"""
Write an echo straight to the socket when nothing is waiting to go out.

L{FileDescriptor.write} only buffers: the bytes leave on the reactor's next
writable event, which costs two C{epoll_ctl} calls (start and stop watching
for writability) and one more trip round the reactor for every echo.  When
the transport's buffer is empty nothing can be overtaken, so sending at once
keeps the order and skips all of that; whatever the socket does not take is
handed to C{transport.write} as usual, which then buffers it, pauses the
producer past C{bufferSize} and closes on error exactly as before.

Only plain TCP and UNIX connections (L{twisted.internet.tcp.Connection} and
its subclasses) with no TLS started take the direct path; every other
transport, and any of those with something buffered or closing, gets
C{transport.write}.
"""

from __future__ import annotations

from typing import TypeGuard

from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection


def can_send_directly(transport: ITransport) -> TypeGuard[Connection]:
    """
    Decide, once per connection, whether L{send} may be used on it.

    TLS is started on a connection only by its protocol calling
    C{startTLS}; a protocol that never does may decide this once, when the
    connection is made.

    @param transport: a connected transport.
    @return: whether it is a TCP or UNIX connection with no TLS started.
    """
    return isinstance(transport, Connection) and not transport.TLS


def send(connection: Connection, data: bytes) -> None:
    """
    Write C{data} to C{connection}, straight to its socket when nothing is
    buffered, else (and for whatever the socket does not take) through
    C{connection.write}, with its buffering and backpressure.

    Only what a connection's own life changes is checked: something
    buffered, closing or closed.  Neither TLS (see L{can_send_directly}) nor
    a shut sending side (C{loseWriteConnection}) can come about unless the
    protocol asks for it.

    @param connection: a connection L{can_send_directly} accepted, whose
        protocol neither starts TLS nor calls C{loseWriteConnection}.
    @param data: the bytes to write, after any written before.
    """
    if (
        connection.dataBuffer
        or connection._tempDataLen
        or not connection.connected
        or connection.disconnecting
    ):
        connection.write(data)
        return
    try:
        sent = connection.socket.send(data)
    except OSError:
        # Full (EAGAIN), interrupted, or broken: transport.write buffers
        # it, and meets any error itself on its next write and closes.
        sent = 0
    if sent < len(data):
        connection.write(data[sent:] if sent else data)
