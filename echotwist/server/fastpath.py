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
time per echo; L{DirectEcho} does the same work in one call and is put in
the connection's C{doRead}'s place (the echotwist-epoll reactor calls it
without reading the connection at all).

Only plain TCP and UNIX connections (L{twisted.internet.tcp.Connection} and
its subclasses) with no TLS started take the direct paths, and only those
whose C{doRead} is Twisted's plain C{recv} one (not UNIX's, which receives
file descriptors) read directly; every other transport gets
C{transport.write} and Twisted's own C{doRead}, and an echo on one of those
with something still buffered goes behind it through C{transport.write}.
"""

from __future__ import annotations

from typing import TypeGuard

from twisted.internet.interfaces import ITransport
from twisted.internet.tcp import Connection

from echotwist._twisted_private import (
    DirectEcho,
    has_plain_do_read,
    send,
    tls_started,
)

__all__ = [
    "can_read_directly",
    "can_send_directly",
    "direct_echo",
    "send",
]


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
    Decide whether a L{DirectEcho} may stand in for C{connection.doRead}.

    @param connection: a connection L{can_send_directly} accepted.
    @param protocol: the echo protocol being connected to it.
    @return: whether its C{doRead} is L{Connection.doRead}, the one
        L{DirectEcho} does the work of, and C{protocol} is its protocol
        (not one wrapped inside it).
    """
    return has_plain_do_read(connection) and connection.protocol is protocol


def direct_echo(connection: Connection) -> DirectEcho:
    """
    @param connection: a connection L{can_read_directly} accepted.
    @return: a L{DirectEcho} for it, whose C{do_read} is to take the
        place of its C{doRead} (L{echotwist._twisted_private.read_directly}).
    """
    return DirectEcho(connection)
