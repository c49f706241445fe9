"""
Live: the echo protocol turns Nagle's algorithm off on a real loopback TCP
connection, and leaves a UNIX one alone (whose socket has no such option);
TCP urgent data is echoed in place, by one process and by workers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT, connect, recv_exactly
from twistd_support import twistd_echo
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.task import Clock
from twisted.internet.tcp import Server
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.unix import Server as UNIXServer
from twisted.protocols.policies import WrappingFactory

from echotwist.server.protocol import EchoFactory


@contextmanager
def _set_on_connect(
    factory: IProtocolFactory, level: int, option: int
) -> Iterator[tuple[socket.socket, IProtocol]]:
    """
    Connect a protocol of C{factory} by hand to the accepted side of a real
    loopback TCP connection, through Twisted's own TCP server transport (on
    a memory reactor), asserting that the socket option was off before and
    is on after.

    @return: the client's socket and the connected protocol; all closed on
        exit.
    """
    listener = socket.create_server((HOST, 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        accepted, address = listener.accept()
        with accepted:
            accepted.setblocking(False)
            protocol = factory.buildProtocol(address)
            assert protocol is not None
            transport = Server(
                accepted,
                protocol,
                address,
                None,  # type: ignore[arg-type]
                1,
                MemoryReactorClock(),
            )
            assert accepted.getsockopt(level, option) == 0
            protocol.makeConnection(transport)
            assert accepted.getsockopt(level, option) != 0
            yield client, protocol


def test_no_delay_over_tcp() -> None:
    """
    An accepted TCP connection gets C{TCP_NODELAY} once the protocol is
    connected, and still echoes.
    """
    factory = EchoFactory(Clock())
    nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY)
    with _set_on_connect(factory, *nodelay) as (client, protocol):
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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_urgent_data_echoed_in_place(tmp_path: Path, workers: str) -> None:
    """
    C{abc}, an urgent C{X} (C{MSG_OOB}) and C{def} come back as C{abcXdef},
    and the server counts 7 bytes in and 7 out: nothing dropped, in one
    process or in a worker.
    """
    with twistd_echo("--workers", workers, directory=tmp_path) as server:
        if workers != "1":
            server.wait_for(r"worker \d+: \[-\] EchoFactory starting on", 2)
        with connect(server.port) as sock:
            sock.sendall(b"abc")
            assert recv_exactly(sock, 3) == b"abc"
            sock.send(b"X", socket.MSG_OOB)
            sock.sendall(b"def")
            assert recv_exactly(sock, 4) == b"Xdef"
        line = server.wait_for(r"Disconnected .*: (\d+) bytes in, (\d+) bytes out")
        assert line.groups() == ("7", "7")


def test_urgent_data_before_accept(tmp_path: Path) -> None:
    """
    Urgent data sent at once, before the server has accepted the
    connection, still comes back in place.
    """
    with twistd_echo(directory=tmp_path) as server:
        with connect(server.port) as sock:
            sock.sendall(b"abc")
            sock.send(b"X", socket.MSG_OOB)
            sock.sendall(b"def")
            sock.shutdown(socket.SHUT_WR)
            assert recv_exactly(sock, 8) == b"abcXdef"
        server.wait_for(r"Disconnected .*: 7 bytes in, 7 bytes out")


def test_urgent_inline_through_a_wrapper() -> None:
    """
    A connection whose transport is a protocol wrapper (as TLS and the PROXY
    protocol put round it) still gets C{SO_OOBINLINE} on its TCP socket.
    """
    factory = WrappingFactory(EchoFactory(Clock()))
    with _set_on_connect(factory, socket.SOL_SOCKET, socket.SO_OOBINLINE):
        pass
