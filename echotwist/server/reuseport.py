"""
One C{SO_REUSEPORT} listening socket per worker, for C{--workers} on TCP.

Workers that share one listening socket take connections from one accept
queue, and whichever worker wakes first takes them: under a burst one
worker takes most (measured with C{benchmarks/worker_spread.py}: 25/175 in
a round of 200 connections opened at once).  Sockets bound to the same
address with C{SO_REUSEPORT} each have their own queue, and the kernel
hashes each new connection to one of them: the parent makes one per worker
and hands each worker its own, so the spread no longer depends on who
wakes first.

The parent keeps every socket open for as long as it runs, so a worker that
dies loses nothing: the connections hashed to its socket wait in the queue
for its replacement (which adopts the same socket) instead of being reset.
A socket closes only when the parent and its worker have both closed it,
that is when the whole service stops.

Only TCP ports (C{tcp}, C{tcp6}, and C{haproxy:} around them) are made so:
a UNIX socket is bound to a path, not balanced this way, and a socket
systemd passes is one socket.  Those keep the shared socket.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.abstract import isIPv6Address
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory

from echotwist._twisted_private import listening_socket
from echotwist.server.endpoints import endpoint_kind

#: The endpoint kinds whose listening socket can be one per worker.
REUSEPORT_KINDS = frozenset({"tcp", "tcp6"})


def one_per_worker(description: str) -> bool:
    """
    @param description: a server endpoint description (without any
        C{haproxy:} prefix).
    @return: whether C{--workers} gives each worker its own socket for it.
    """
    return endpoint_kind(description) in REUSEPORT_KINDS


def _reuseport_socket(family: socket.AddressFamily) -> socket.socket:
    """
    @param family: C{AF_INET} or C{AF_INET6}.
    @return: a non-blocking TCP socket with C{SO_REUSEADDR} (as Twisted's
        ports have) and C{SO_REUSEPORT}.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setblocking(False)
    return sock


class _ReusePortTCP(tcp.Port):
    """
    A TCP port whose socket has C{SO_REUSEPORT}, so that more sockets can
    be bound to its address.
    """

    def createInternetSocket(self) -> socket.socket:
        """
        @return: the socket, with C{SO_REUSEPORT} set before it is bound.
        """
        sock: socket.socket = super().createInternetSocket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock


class ReusePortReactor:
    """
    A reactor for Twisted's TCP endpoints whose C{listenTCP} makes a
    C{SO_REUSEPORT} port, after checking that no other socket listens on
    the address (another service with C{SO_REUSEPORT} by the same user
    would otherwise be joined silently, sharing its connections, where a
    second C{twistd echo} on a port must fail with "Address already in
    use"); everything else is the real reactor's.

    @ivar backlog: the backlog the last port listened with.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self.backlog = 50

    def listenTCP(
        self,
        port: int,
        factory: IProtocolFactory,
        backlog: int = 50,
        interface: str = "",
    ) -> IListeningPort:
        """
        Listen as L{twisted.internet.interfaces.IReactorTCP.listenTCP}, with
        C{SO_REUSEPORT}.

        @raise CannotListenError: if the address is in use or can't be
            bound.
        """
        if port:
            _check_free(port, interface)
        listening = _ReusePortTCP(port, factory, backlog, interface, self._reactor)
        listening.startListening()
        self.backlog = backlog
        return listening

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


def _check_free(port: int, interface: str) -> None:
    """
    Bind a plain socket (without C{SO_REUSEPORT}) to the address, then
    close it.

    @raise CannotListenError: if that fails, e.g. because something listens
        there.
    """
    family = socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET
    host = interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    try:
        address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )[0][4]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        raise CannotListenError(interface, port, e) from None


def more_sockets(port: IListeningPort, count: int, backlog: int) -> list[socket.socket]:
    """
    Bind C{count} more listening sockets to the address of C{port} (a
    L{ReusePortReactor} port), each with C{SO_REUSEPORT}.

    @param port: the first socket's port.
    @param count: how many more.
    @param backlog: their listen backlog.
    @return: the sockets, listening.
    @raise CannotListenError: if one can't be bound.
    """
    first = listening_socket(port)
    address = first.getsockname()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _reuseport_socket(first.family)
            sockets.append(sock)
            sock.bind(address)
            sock.listen(backlog)
    except OSError as e:
        for sock in sockets:
            sock.close()
        raise CannotListenError(address[0], address[1], e) from None
    return sockets
