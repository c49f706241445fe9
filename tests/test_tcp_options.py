"""
Live: the echo protocol turns Nagle's algorithm off on a real loopback TCP
connection, and leaves a UNIX one alone (whose socket has no such option).
"""

from __future__ import annotations

import socket

from sockets import HOST, TIMEOUT
from twisted.internet.task import Clock
from twisted.internet.tcp import Server
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.unix import Server as UNIXServer

from echotwist.server.protocol import EchoFactory


def test_no_delay_over_tcp() -> None:
    """
    An accepted TCP connection gets C{TCP_NODELAY} once the protocol is
    connected, and still echoes.
    """
    listener = socket.create_server((HOST, 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        accepted, address = listener.accept()
        with accepted:
            accepted.setblocking(False)
            protocol = EchoFactory(Clock()).buildProtocol(address)
            assert protocol is not None
            transport = Server(
                accepted, protocol, address, None, 1, MemoryReactorClock()
            )
            nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert accepted.getsockopt(*nodelay) == 0
            protocol.makeConnection(transport)
            assert accepted.getsockopt(*nodelay) != 0
            protocol.dataReceived(b"ping")
            client.settimeout(TIMEOUT)
            assert client.recv(4) == b"ping"


def test_unix_left_alone() -> None:
    """
    A UNIX connection (whose class claims TCP's options) is connected
    without trying C{TCP_NODELAY}, which its socket would refuse.
    """
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        protocol = EchoFactory(Clock()).buildProtocol(None)  # type: ignore[arg-type]
        assert protocol is not None
        transport = UNIXServer(ours, protocol, None, None, 1, MemoryReactorClock())
        protocol.makeConnection(transport)
        protocol.dataReceived(b"ping")
        theirs.settimeout(TIMEOUT)
        assert theirs.recv(4) == b"ping"
