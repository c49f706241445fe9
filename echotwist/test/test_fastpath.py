"""
Tests for L{echotwist.server.fastpath}, on real connected sockets (a socket pair)
driven by a L{MemoryReactor}, so no global reactor runs.
"""

from __future__ import annotations

import contextlib
import socket

from twisted.internet import main
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.tcp import Connection, Server
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.unix import Server as UNIXServer
from twisted.trial.unittest import SynchronousTestCase

from echotwist._twisted_private import CLOSED_AFTER_ECHO, DirectEcho, unsent_bytes
from echotwist.server.fastpath import (
    can_read_directly,
    can_send_directly,
    send,
)
from echotwist.server.protocol import Echo, EchoFactory
from echotwist.server.reactor import EchoReactor
from echotwist.test.support import BareTLSContext

#: The reactors the connections here are made on.
Reactor = MemoryReactorClock | EchoReactor


def connected(
    test: SynchronousTestCase, reactor: Reactor | None = None
) -> tuple[Connection, socket.socket, Reactor]:
    """
    Wrap one end of a socket pair in a Twisted L{Connection}.

    @param reactor: the connection's reactor (by default a new
        L{MemoryReactorClock}).
    @return: the connection, the other end (non-blocking) and the reactor.
    """
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    test.addCleanup(ours.close)
    test.addCleanup(theirs.close)
    if reactor is None:
        reactor = MemoryReactorClock()
    connection = Connection(ours, Protocol(), reactor)
    connection.connected = True
    return connection, theirs, reactor


def drain(peer: socket.socket) -> bytes:
    """
    @return: everything the peer can read now.
    """
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def echo_connected(
    test: SynchronousTestCase, factory: EchoFactory, reactor: Reactor | None = None
) -> tuple[Connection, Echo, socket.socket, Reactor]:
    """
    Connect an echo protocol from C{factory} to a L{Connection} on one end
    of a socket pair, as a port would.

    @param reactor: as for L{connected}.
    @return: the connection, its protocol, the other end (non-blocking) and
        the reactor.
    """
    connection, peer, reactor = connected(test, reactor)
    protocol = factory.buildProtocol(None)  # type: ignore[arg-type]
    assert protocol is not None
    connection.protocol = protocol
    connection.getPeer = lambda: None  # type: ignore[method-assign]
    connection.getHost = lambda: None  # type: ignore[method-assign]
    protocol.makeConnection(connection)
    return connection, protocol, peer, reactor


class SendTests(SynchronousTestCase):
    """
    Tests for L{can_send_directly} and L{send}.
    """

    def test_otherTransportsUseWrite(self) -> None:
        """
        Only TCP and UNIX connections may be sent to directly: not other
        transports (here a L{StringTransport}; TLS's is not one either).
        """
        self.assertFalse(can_send_directly(StringTransport()))
        connection, _peer, _reactor = connected(self)
        self.assertTrue(can_send_directly(connection))

    def test_emptyBufferSendsAtOnce(self) -> None:
        """
        With nothing buffered the bytes reach the socket at once, without
        waiting for the reactor to say the socket is writable.
        """
        connection, peer, reactor = connected(self)
        send(connection, b"hello")
        self.assertEqual(drain(peer), b"hello")
        self.assertEqual(reactor.getWriters(), [])
        self.assertEqual(unsent_bytes(connection), 0)

    def test_bufferedDataIsNotOvertaken(self) -> None:
        """
        With bytes already buffered new ones are buffered behind them by
        C{transport.write}, so the order holds.
        """
        connection, peer, reactor = connected(self)
        connection.write(b"first ")
        send(connection, b"second")
        self.assertEqual(drain(peer), b"")
        self.assertEqual(reactor.getWriters(), [connection])
        connection.doWrite()
        self.assertEqual(drain(peer), b"first second")

    def test_partialSendBuffersTheRestAndPauses(self) -> None:
        """
        What the socket does not take is buffered by C{transport.write},
        which pauses the transport's own streaming producer once past
        C{bufferSize}: backpressure works as without the direct path.
        """
        connection, peer, reactor = connected(self)
        connection.registerProducer(connection, True)
        data = bytes(range(256)) * 16384  # 4 MiB: more than the socket takes
        send(connection, data)
        self.assertTrue(connection.producerPaused)
        self.assertEqual(reactor.getWriters(), [connection])
        received = [drain(peer)]
        for _ in range(10000):
            if not unsent_bytes(connection):
                break
            connection.doWrite()
            received.append(drain(peer))
        self.assertEqual(b"".join(received), data)
        self.assertFalse(connection.producerPaused)

    def test_closingUsesWrite(self) -> None:
        """
        Once C{loseConnection} is called, writes go through
        C{transport.write}, which buffers them.
        """
        connection, peer, _reactor = connected(self)
        connection.disconnecting = True
        send(connection, b"late")
        self.assertEqual(drain(peer), b"")
        self.assertEqual(unsent_bytes(connection), 4)

    def test_tlsUsesWrite(self) -> None:
        """
        A connection with TLS started on it (C{startTLS}, before the protocol
        is connected) is never written straight to the socket:
        L{can_send_directly} refuses it, so L{Echo} echoes through
        C{transport.write}, which encrypts.
        """
        ours, peer = socket.socketpair()
        for end in ours, peer:
            end.setblocking(False)
            self.addCleanup(end.close)
        protocol = EchoFactory(Clock()).buildProtocol(None)  # type: ignore[arg-type]
        connection = Server(
            ours,
            protocol,
            ("127.0.0.1", 57854),
            None,  # type: ignore[arg-type]
            0,
            MemoryReactorClock(),
        )
        connection.getHost = lambda: None  # type: ignore[method-assign]
        connection.startTLS(BareTLSContext())
        self.assertFalse(can_send_directly(connection))
        protocol.makeConnection(connection)
        protocol.dataReceived(b"secret")
        self.assertNotIn(b"secret", drain(peer))

    def test_sendErrorUsesWrite(self) -> None:
        """
        If the socket fails, the bytes go to C{transport.write} so that the
        transport meets the error itself on its next write and closes.
        """
        connection, peer, reactor = connected(self)
        peer.close()
        send(connection, b"x" * 100)
        self.assertEqual(unsent_bytes(connection), 100)
        self.assertEqual(reactor.getWriters(), [connection])


class DirectEchoTests(SynchronousTestCase):
    """
    Tests for L{can_read_directly} and L{direct_echo} (L{DirectEcho}).
    """

    def echoing(
        self, idle_timeout: float = 10.0
    ) -> tuple[Connection, Echo, socket.socket, Clock]:
        """
        @return: a connection whose echo protocol is connected to it (the
            idle timer on C{clock}), so that its C{doRead} is a
            L{DirectEcho}'s, the other end of its socket and the clock.
        """
        clock = Clock()
        factory = EchoFactory(clock, idle_timeout=idle_timeout)
        connection, protocol, peer, _reactor = echo_connected(self, factory)
        self.assertIsInstance(getattr(connection.doRead, "__self__", None), DirectEcho)
        return connection, protocol, peer, clock

    def test_plainConnectionsOnly(self) -> None:
        """
        Only a connection whose C{doRead} is Twisted's plain one may read
        directly, for its own protocol: not a UNIX server connection, whose
        C{doRead} also receives file descriptors, nor for a protocol wrapped
        inside the connection's.
        """
        connection, _peer, reactor = connected(self)
        self.assertTrue(can_read_directly(connection, connection.protocol))
        self.assertFalse(can_read_directly(connection, Protocol()))
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        inner = Protocol()
        unix = UNIXServer(ours, inner, None, None, 0, reactor)
        self.assertFalse(can_read_directly(unix, inner))

    def test_echoesAndCounts(self) -> None:
        """
        What the peer sent is echoed straight back, in order, and counted as
        the protocol's C{dataReceived} would.
        """
        connection, protocol, peer, _clock = self.echoing()
        peer.send(b"first ")
        self.assertIsNone(connection.doRead())
        peer.send(b"second")
        self.assertIsNone(connection.doRead())
        self.assertEqual(drain(peer), b"first second")
        self.assertEqual(protocol.bytes_in, 12)

    def test_keepsConnectionFromIdleTimeout(self) -> None:
        """
        A read counts as activity for the idle timer (which looks at the
        count): a connection read from just before its timeout is kept a
        whole timeout after the read, and closed at most a tenth later.
        """
        connection, _protocol, peer, clock = self.echoing(idle_timeout=10.0)
        clock.advance(9)
        peer.send(b"x")
        connection.doRead()
        clock.pump([0.25] * 39 + [0.24])  # 9.99 s after the read
        self.assertFalse(connection.disconnecting)
        clock.pump([0.01] + [0.25] * 4)  # 11 s after it
        self.assertTrue(connection.disconnecting)

    def test_partlyWrittenDataIsNotOvertaken(self) -> None:
        """
        With the rest of a partly sent write still in the transport's buffer
        (the socket took only part of it), what is read next goes behind
        it, not straight to the socket ahead of it.
        """
        connection, _protocol, peer, _clock = self.echoing()
        first = b"f" * (8 << 20)
        connection.write(first)
        connection.doWrite()
        self.assertTrue(0 < unsent_bytes(connection) < len(first))
        peer.send(b"second")
        connection.doRead()
        received = bytearray()
        for _ in range(100000):
            if len(received) >= len(first) + 6:
                break
            received += drain(peer)
            connection.doWrite()
        self.assertEqual(bytes(received), first + b"second")

    def test_bufferedDataIsNotOvertaken(self) -> None:
        """
        With some echo still buffered in the transport, what is read next
        goes behind it through C{transport.write}, not straight to the
        socket ahead of it.
        """
        connection, _protocol, peer, _clock = self.echoing()
        connection.write(b"first ")
        peer.send(b"second")
        connection.doRead()
        self.assertEqual(drain(peer), b"")
        connection.doWrite()
        self.assertEqual(drain(peer), b"first second")

    def test_backpressure(self) -> None:
        """
        A peer that sends without reading fills our socket's send buffer:
        the rest of its echo is buffered by C{transport.write}, which pauses
        reading from it (the transport is its own producer); once the peer
        reads, every byte comes back, in order.
        """
        connection, _protocol, peer, _clock = self.echoing()
        sent = bytearray()
        for round_number in range(10000):
            if connection.producerPaused:
                break
            chunk = bytes([round_number % 256]) * 65536
            with contextlib.suppress(BlockingIOError):
                sent += chunk[: peer.send(chunk)]
            connection.doRead()
        self.assertTrue(connection.producerPaused)
        received = bytearray()
        for _ in range(100000):
            if len(received) >= len(sent):
                break
            received += drain(peer)
            if unsent_bytes(connection):
                connection.doWrite()
            else:
                connection.doRead()
        self.assertEqual(bytes(received), bytes(sent))
        self.assertFalse(connection.producerPaused)

    def test_nothingToRead(self) -> None:
        """
        A read that would block is no error: the connection goes on.
        """
        connection, protocol, _peer, _clock = self.echoing()
        self.assertIsNone(connection.doRead())
        self.assertEqual(protocol.bytes_in, 0)

    def test_peerClosed(self) -> None:
        """
        End of file with some echo still buffered is reported as C{doRead}
        reports it, a clean close, so that a half-closing client still gets
        the rest of its echo (the reactor calls C{readConnectionLost}).
        """
        connection, _protocol, peer, _clock = self.echoing()
        connection.write(b"still to send")
        peer.shutdown(socket.SHUT_WR)
        self.assertIs(connection.doRead(), main.CONNECTION_DONE)

    def test_peerClosedAllSent(self) -> None:
        """
        End of file with the whole echo sent is a clean close too, but one
        the reactor closes at once (L{CLOSED_AFTER_ECHO}).
        """
        connection, _protocol, peer, _clock = self.echoing()
        peer.shutdown(socket.SHUT_WR)
        why = connection.doRead()
        self.assertIs(why, CLOSED_AFTER_ECHO)
        self.assertIsInstance(why, ConnectionDone)

    def test_peerReset(self) -> None:
        """
        A socket error on reading (here the peer closing with our echo
        unread, a reset) is reported as a lost connection.
        """
        connection, _protocol, peer, _clock = self.echoing()
        connection.getHandle().send(b"unread")
        peer.close()
        self.assertIs(connection.doRead(), main.CONNECTION_LOST)


class EchoDirectTests(SynchronousTestCase):
    """
    L{echotwist.server.protocol.Echo} writes through L{send}, and reads through
    a L{DirectEcho} where it may.
    """

    def connect(self, verbose: bool = False) -> tuple[Connection, Echo]:
        """
        @return: a connection and the L{Echo} connected to it.
        """
        factory = EchoFactory(Clock(), verbose=verbose)
        connection, protocol, _peer, _reactor = echo_connected(self, factory)
        return connection, protocol

    def test_readsDirectly(self) -> None:
        """
        On a plain connection the transport's C{doRead} becomes a
        L{DirectEcho}'s, until the connection is lost.
        """
        connection, protocol = self.connect()
        self.assertIsInstance(getattr(connection.doRead, "__self__", None), DirectEcho)
        protocol.connectionLost()
        self.assertNotIn("doRead", vars(connection))

    def test_echoReactorCallsDirectly(self) -> None:
        """
        On the echotwist-epoll reactor the L{DirectEcho} is also in the
        reactor's own table (which its C{doPoll} calls without reading the
        connection), until the connection is lost.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        connection, protocol, _peer, _reactor = echo_connected(
            self, EchoFactory(Clock()), reactor
        )
        self.assertEqual(
            list(reactor._direct_echoes.values()),
            [getattr(connection.doRead, "__self__", None)],
        )
        protocol.connectionLost()
        self.assertEqual(reactor._direct_echoes, {})

    def test_verboseReadsThroughDataReceived(self) -> None:
        """
        With C{--verbose} each chunk must pass through C{dataReceived} to be
        logged: Twisted's own C{doRead} is kept.
        """
        connection, _protocol = self.connect(verbose=True)
        self.assertNotIn("doRead", vars(connection))

    def test_subclassReadsThroughDataReceived(self) -> None:
        """
        A subclass of L{Echo} with its own C{dataReceived} is not bypassed:
        Twisted's own C{doRead} is kept.
        """

        class Shouting(Echo):
            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data.upper())

        factory = EchoFactory(Clock())
        factory.protocol = Shouting
        connection, _protocol, _peer, _reactor = echo_connected(self, factory)
        self.assertNotIn("doRead", vars(connection))

    def test_echoOverSocket(self) -> None:
        """
        An echo over a real connection goes straight back to the socket.
        """
        _connection, protocol, peer, reactor = echo_connected(
            self, EchoFactory(Clock())
        )
        protocol.dataReceived(b"ping")
        self.assertEqual(drain(peer), b"ping")
        self.assertEqual(reactor.getWriters(), [])
