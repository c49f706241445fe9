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

from collections.abc import Callable

from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection


def writer_for(transport: ITransport) -> Callable[[bytes], None]:
    """
    Choose how to write to C{transport}.

    @param transport: a connected transport.
    @return: a function that writes bytes to it, in order, with the same
        buffering and backpressure as C{transport.write}.
    """
    if not isinstance(transport, Connection):
        return transport.write
    connection = transport

    def write(data: bytes) -> None:
        if (
            connection.TLS
            or connection.dataBuffer
            or connection._tempDataLen
            or not connection.connected
            or connection.disconnecting
            or connection._writeDisconnected
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

    return write
