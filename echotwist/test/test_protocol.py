"""
Tests for L{echotwist.server.protocol}.
"""

from __future__ import annotations

import socket

from OpenSSL import SSL
from twisted.internet import main
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IOpenSSLContextFactory,
    ITCPTransport,
)
from twisted.internet.task import Clock
from twisted.internet.tcp import Connection
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides, implementer

from echotwist.server.protocol import Echo, EchoFactory, RefusedEcho, describe_peer
from echotwist.test.support import PEER, connect


class _TCPStringTransport(StringTransport):
    """
    A L{StringTransport} that says it has TCP's options (as TCP, TLS and
    UNIX transports do), recording C{setTcpNoDelay}.

    @ivar no_delay: what C{setTcpNoDelay} was last given, or L{None}.
    """

    def __init__(self, host: IAddress) -> None:
        super().__init__(hostAddress=host, peerAddress=PEER)
        alsoProvides(self, ITCPTransport)
        self.no_delay: bool | None = None

    def setTcpNoDelay(self, enabled: bool) -> None:
        """
        @param enabled: whether Nagle's algorithm is to be off.
        """
        self.no_delay = enabled


class EchoTests(SynchronousTestCase):
    """
    Tests for L{Echo}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoFactory(self.clock)

    def test_echoesEveryChunkInOrder(self) -> None:
        """
        Every byte of many chunks, including empty ones, NUL and 0xFF, is
        written back in order, and nothing else is written.
        """
        protocol, transport = connect(self.factory)
        chunks = [bytes([i % 256]) * (i % 7) for i in range(1000)] + [b"\x00\xff"]
        for chunk in chunks:
            protocol.dataReceived(chunk)
        self.assertEqual(transport.value(), b"".join(chunks))
        self.assertEqual(protocol.bytes_in, len(b"".join(chunks)))

    def test_noDelayOverTCP(self) -> None:
        """
        Over TCP Nagle's algorithm is turned off, so that an echo is never
        held back waiting for the peer to acknowledge the one before; a UNIX
        connection (whose class claims L{ITCPTransport} too) is left alone.
        """
        tcp = _TCPStringTransport(IPv4Address("TCP", "127.0.0.1", 9000))
        unix = _TCPStringTransport(UNIXAddress(b"/run/echo.sock"))
        for transport in tcp, unix:
            protocol = self.factory.buildProtocol(PEER)
            assert protocol is not None
            protocol.makeConnection(transport)
        self.assertEqual(tcp.no_delay, True)
        self.assertEqual(unix.no_delay, None)

    def test_noDelayRefused(self) -> None:
        """
        A system that refuses C{TCP_NODELAY} (as some do on a socket the peer
        has already reset) does not stop the connection being served.
        """

        class Refusing(_TCPStringTransport):
            def setTcpNoDelay(self, enabled: bool) -> None:
                raise OSError(22, "Invalid argument")

        transport = Refusing(IPv4Address("TCP", "127.0.0.1", 9000))
        protocol = self.factory.buildProtocol(PEER)
        assert protocol is not None
        protocol.makeConnection(transport)
        protocol.dataReceived(b"still echoed")
        self.assertEqual(transport.value(), b"still echoed")
        self.assertEqual(len(self.factory.open_connections), 1)

    def test_lostWithoutTransport(self) -> None:
        """
        A protocol that was never connected can still be told its connection
        was lost (nothing to forget on a transport).
        """
        protocol = self.factory.buildProtocol(PEER)
        assert protocol is not None
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.connections_total, 0)

    def test_registersTransportAsStreamingProducer(self) -> None:
        """
        The transport is registered as its own streaming producer, so it stops
        reading while its outgoing buffer is full.
        """
        _, transport = connect(self.factory)
        self.assertIs(transport.producer, transport)
        self.assertTrue(transport.streaming)

    def test_halfClose(self) -> None:
        """
        When the client shuts its sending side the server unregisters the
        producer and closes once what it has buffered is written.
        """
        protocol, transport = connect(self.factory)
        self.assertTrue(IHalfCloseableProtocol.providedBy(protocol))
        protocol.dataReceived(b"last words")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"last words")
        self.assertIsNone(transport.producer)
        self.assertTrue(transport.disconnecting)

    def test_writeConnectionLost(self) -> None:
        """
        Once our sending side is shut (which only C{loseWriteConnection}
        does, and L{Echo} never calls it), the server closes.
        """
        protocol, transport = connect(self.factory)
        protocol.writeConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_logsConnectAndDisconnect(self) -> None:
        """
        One line names the peer on connect, in the lab's C{Connected by} form;
        one line on disconnect gives bytes in and out and the duration.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            protocol.dataReceived(b"12345")
            self.clock.advance(2.5)
            protocol.connectionLost(Failure(ConnectionLost("reset by peer")))
        messages = [e["log_format"].format(**e) for e in events]
        self.assertEqual(
            messages,
            [
                "Connected by ('127.0.0.1', 57854)",
                "Disconnected ('127.0.0.1', 57854): 5 bytes in, 5 bytes out, "
                "2.500 s (Connection to the other side was lost in a non-clean "
                "fashion: reset by peer.)",
            ],
        )

    def test_peerFromBuildProtocol(self) -> None:
        """
        The peer is named from the address the factory was given (the
        transport's C{getPeer()} is not asked to build it again); a protocol
        built without the factory asks the transport.
        """
        given = IPv4Address("TCP", "192.0.2.1", 1)
        with capturedLogs() as events:
            protocol = self.factory.buildProtocol(given)
            protocol.makeConnection(StringTransport(peerAddress=PEER))
            alone = Echo()
            alone.factory = self.factory
            alone.makeConnection(StringTransport(peerAddress=PEER))
        self.assertEqual(protocol.peer, "('192.0.2.1', 1)")
        self.assertEqual(alone.peer, "('127.0.0.1', 57854)")
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["Connected by ('192.0.2.1', 1)", "Connected by ('127.0.0.1', 57854)"],
        )

    def test_oneByte(self) -> None:
        """
        One byte is C{1 byte}, not C{1 bytes}.
        """
        with capturedLogs() as events:
            protocol, _ = connect(self.factory)
            protocol.dataReceived(b"1")
            protocol.connectionLost(Failure(ConnectionDone()))
        [line] = [formatEvent(e) for e in events if "Disconnected" in e["log_format"]]
        self.assertIn(": 1 byte in, 1 byte out, ", line)

    def test_verboseLogsChunksTruncated(self) -> None:
        """
        With C{verbose} each chunk is logged as a repr, cut after 64 bytes.
        """
        self.factory.verbose = True
        protocol, _ = connect(self.factory)
        with capturedLogs() as events:
            protocol.dataReceived(b"a" * 100)
        [event] = events
        message = event["log_format"].format(**event)
        self.assertEqual(
            message,
            "Received 100 bytes from ('127.0.0.1', 57854): "
            f"{b'a' * 64!r}... (+36 bytes)",
        )

    def test_quietByDefault(self) -> None:
        """
        Without C{verbose}, chunks are not logged.
        """
        protocol, _ = connect(self.factory)
        with capturedLogs() as events:
            protocol.dataReceived(b"hello")
        self.assertEqual(list(events), [])


class IdleTimeoutTests(SynchronousTestCase):
    """
    Tests for the idle timeout, which counts inactivity, not age.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoFactory(self.clock, idle_timeout=10)

    def test_idleConnectionClosed(self) -> None:
        """
        A connection silent for C{idle_timeout} seconds, with nothing left to
        send, is closed cleanly (not aborted).
        """
        _, transport = connect(self.factory)
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        with capturedLogs() as events:
            self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        [event] = events
        self.assertEqual(
            event["log_format"].format(**event),
            "Closing ('127.0.0.1', 57854): idle for 10 s",
        )

    def test_stalledCloseAborted(self) -> None:
        """
        A connection closed for being idle that has still not closed one
        more C{idle_timeout} later (its transport could not tell that echo
        was waiting, as TLS can't) is aborted.
        """
        _, transport = connect(self.factory)
        self.clock.advance(10)
        self.assertEqual(
            (transport.disconnecting, transport.disconnected), (True, False)
        )
        self.clock.advance(10)
        self.assertTrue(transport.disconnected)

    def test_wrappedCloseNotAwaited(self) -> None:
        """
        Behind a wrapper whose close waits for the client's answer (TLS: its
        close_notify, which a client that does not read never sends), the
        connection under it is closed at the idle timeout, not aborted one
        timeout later.
        """

        class AwaitsAnswer(ProtocolWrapper):
            def loseConnection(self) -> None:
                self.disconnecting = True

        wrapping = WrappingFactory(self.factory)
        wrapping.protocol = AwaitsAnswer
        wrapper = wrapping.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        wrapper.makeConnection(transport)
        with capturedLogs():
            self.clock.advance(10)
        self.assertEqual(
            (transport.disconnecting, transport.disconnected), (True, False)
        )

    def test_nonReadingClientAborted(self) -> None:
        """
        A client that sends but stops reading, so that its echo can't drain
        and reading from it is paused, is aborted at the idle timeout (at
        most a tenth of it after): its connection ends and its slot is
        freed.
        """
        protocol, connection, reactor = socket_connection(self, idle_timeout=10)
        factory = protocol.factory
        protocol.dataReceived(b"x" * (4 << 20))  # more than the socket takes
        self.assertTrue(connection.producerPaused)
        with capturedLogs() as events:
            reactor.pump([1] * 11)
        self.assertEqual(factory.open_connections, set())
        messages = [e["log_format"].format(**e) for e in events]
        self.assertIn(
            f"Aborting {protocol.peer}: nothing received for 10 s and its echo "
            "not read",
            messages,
        )

    def test_halfClosedNonReaderAborted(self) -> None:
        """
        A client that half-closes and never reads its echo is aborted at the
        idle timeout (at most a tenth of it after) rather than held open
        until the echo drains.
        """
        protocol, connection, reactor = socket_connection(self, idle_timeout=10)
        protocol.dataReceived(b"x" * (4 << 20))
        protocol.readConnectionLost()
        self.assertTrue(connection.disconnecting)
        reactor.pump([1] * 11)
        self.assertEqual(protocol.factory.open_connections, set())

    def test_tricklingConnectionKept(self) -> None:
        """
        A byte every second keeps a connection open well past the timeout.
        """
        protocol, transport = connect(self.factory)
        for _ in range(30):
            self.clock.advance(1)
            protocol.dataReceived(b"x")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"x" * 30)

    def test_closedWithinATenthOfTheTimeout(self) -> None:
        """
        The byte count is looked at every tenth of the timeout: a connection
        is closed no sooner than the timeout after its last byte, and no
        later than a tenth of it more.
        """
        protocol, transport = connect(self.factory)
        self.clock.advance(0.5)
        protocol.dataReceived(b"x")
        self.clock.pump([0.25] * 39 + [0.24])  # 9.99 s after the byte
        self.assertFalse(transport.disconnecting)
        with capturedLogs():
            self.clock.pump([0.01] + [0.25] * 2)  # 10.5 s after it
        self.assertTrue(transport.disconnecting)

    def test_oddTimeoutsClosedOnTime(self) -> None:
        """
        Whatever the timeout, a connection silent from the start is closed
        at the check that falls on the timeout, not one later, though the
        checks' times are sums of a tenth of it that do not add up exactly.
        """
        for timeout in (0.0173, 0.3, 7.7, 300.0):
            clock = Clock()
            _, transport = connect(EchoFactory(clock, idle_timeout=timeout))
            with capturedLogs():
                for _ in range(10):
                    self.assertFalse(transport.disconnecting)
                    clock.advance(timeout / 10)
            self.assertTrue(transport.disconnecting, timeout)

    def test_noTimerWorkPerChunk(self) -> None:
        """
        A chunk received does not touch the idle timer (restarting it for
        every chunk would cost more than a tenth of the time per echo): the
        one call scheduled stays as it was.
        """
        protocol, _ = connect(self.factory)
        [call] = self.clock.getDelayedCalls()
        due = call.getTime()
        self.clock.advance(0.5)
        protocol.dataReceived(b"x")
        self.assertEqual(
            [(c, c.getTime()) for c in self.clock.getDelayedCalls()], [(call, due)]
        )

    def test_timerCancelledOnDisconnect(self) -> None:
        """
        No timer is left behind once the connection is gone.
        """
        protocol, _ = connect(self.factory)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noTimeout(self) -> None:
        """
        Without an idle timeout no timer is set.
        """
        connect(EchoFactory(self.clock))
        self.assertEqual(self.clock.getDelayedCalls(), [])


def socket_connection(
    test: SynchronousTestCase, idle_timeout: float
) -> tuple[Echo, Connection, MemoryReactorClock]:
    """
    Serve an L{Echo} on one end of a socket pair, through Twisted's own
    L{Connection} and a L{MemoryReactorClock} that is also the factory's
    clock.

    @param test: the test, to close the sockets when it ends.
    @param idle_timeout: the factory's idle timeout.
    @return: the protocol, its connection and the reactor; the peer reads
        nothing.
    """
    ours, peer = socket.socketpair()
    for end in ours, peer:
        end.setblocking(False)
        test.addCleanup(end.close)
    reactor = MemoryReactorClock()
    protocol = EchoFactory(reactor, idle_timeout=idle_timeout).buildProtocol(PEER)
    connection = Connection(ours, protocol, reactor)
    connection.connected = True
    connection.getPeer = lambda: PEER  # type: ignore[method-assign]
    connection.getHost = lambda: None  # type: ignore[method-assign]
    protocol.makeConnection(connection)
    return protocol, connection, reactor


class ConnectionLimitTests(SynchronousTestCase):
    """
    Tests for L{EchoFactory}'s connection limit and counters.
    """

    def setUp(self) -> None:
        self.factory = EchoFactory(Clock(), max_connections=2)

    def test_refusesOverLimit(self) -> None:
        """
        At the limit, C{buildProtocol} returns a L{RefusedEcho}, which closes
        its connection as soon as it is made; the refusal is counted, the
        connection is never counted as open, and its end logs nothing.
        """
        connect(self.factory)
        connect(self.factory)
        for _ in range(2):
            refused = self.factory.buildProtocol(PEER)
            self.assertIsInstance(refused, RefusedEcho)
            transport = StringTransport(peerAddress=PEER)
            with capturedLogs() as events:
                refused.makeConnection(transport)
                refused.connectionLost(Failure(ConnectionDone()))
            self.assertTrue(transport.disconnecting)
            self.assertEqual(list(events), [])
        self.assertEqual(self.factory.refused_total, 2)
        self.assertEqual(self.factory.connections_total, 2)
        self.assertEqual(len(self.factory.open_connections), 2)

    def test_refusedUnderTLS(self) -> None:
        """
        Over the limit behind a TLS wrapper (an C{ssl:} port) the wrapper has
        a protocol to deliver the connection to: the TCP connection under it
        is closed at once and its end raises nothing (with L{None}, the
        wrapper raised on connect and on close and never closed the socket).
        """
        connect(self.factory)
        connect(self.factory)
        tls = TLSMemoryBIOFactory(_NoCertificate(), False, self.factory)
        wrapper = tls.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        wrapper.makeConnection(transport)
        self.assertTrue(transport.disconnecting)
        wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.refused_total, 1)
        self.assertEqual(len(self.factory.open_connections), 2)

    def test_refusedClosedCleanlyAtOnce(self) -> None:
        """
        A refused TCP connection is closed on the first write event, with
        nothing to wait for, and cleanly: the client reads an end of file,
        not a reset.
        """
        connect(self.factory)
        connect(self.factory)
        with socket.create_server(("127.0.0.1", 0)) as server:
            client = socket.create_connection(server.getsockname())
            self.addCleanup(client.close)
            ours, _ = server.accept()
        refused = self.factory.buildProtocol(PEER)
        connection = Connection(ours, refused, MemoryReactorClock())
        connection.connected = True
        refused.makeConnection(connection)
        self.assertIs(connection.doWrite(), main.CONNECTION_DONE)
        connection.connectionLost(Failure(ConnectionDone()))  # as the reactor does
        self.assertEqual(client.recv(1), b"")

    def test_acceptsAgainWhenSlotFrees(self) -> None:
        """
        Once a connection ends, a new one is accepted.
        """
        first, _ = connect(self.factory)
        connect(self.factory)
        first.connectionLost(Failure(ConnectionLost()))
        self.assertIsInstance(self.factory.buildProtocol(PEER), Echo)

    def test_refusalsLoggedOnceNotPerConnection(self) -> None:
        """
        Reaching the limit is logged once, however many are refused, and the
        count is logged when a slot frees.
        """
        first, _ = connect(self.factory)
        connect(self.factory)
        with capturedLogs() as events:
            for _ in range(100):
                self.factory.buildProtocol(PEER)
            first.connectionLost(Failure(ConnectionLost()))
        warnings = [
            e["log_format"].format(**e)
            for e in events
            if e["log_namespace"].endswith("EchoFactory")
        ]
        self.assertEqual(len(warnings), 2)
        self.assertIn("Connection limit (2) reached", warnings[0])
        self.assertIn("100 connections were refused", warnings[1])

    def test_counters(self) -> None:
        """
        Open connections, totals and bytes echoed are kept across connects
        and disconnects.
        """
        factory = EchoFactory(Clock())
        a, _ = connect(factory)
        b, _ = connect(factory)
        a.dataReceived(b"abc")
        b.dataReceived(b"de")
        a.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(factory.open_connections, {b})
        self.assertEqual(factory.connections_total, 2)
        self.assertEqual(factory.bytes_echoed, 5)


@implementer(IOpenSSLContextFactory)
class _NoCertificate:
    """
    A TLS server context factory without a certificate: enough for a
    connection that ends before its handshake starts.
    """

    def getContext(self) -> SSL.Context:
        """
        @return: a bare server context.
        """
        return SSL.Context(SSL.TLS_SERVER_METHOD)


class _FDSetRecorder:
    """
    The part of L{twisted.internet.interfaces.IReactorFDSet} a
    L{FileDescriptor} uses, recording who is being read and written.
    """

    def __init__(self) -> None:
        self.readers: set[object] = set()
        self.writers: set[object] = set()

    def addReader(self, reader: object) -> None:
        self.readers.add(reader)

    def removeReader(self, reader: object) -> None:
        self.readers.discard(reader)

    def addWriter(self, writer: object) -> None:
        self.writers.add(writer)

    def removeWriter(self, writer: object) -> None:
        self.writers.discard(writer)


class _StalledSocket(FileDescriptor):
    """
    A L{FileDescriptor} whose peer takes only what C{accept} allows, to watch
    Twisted's real buffering and producer logic at work.
    """

    def __init__(self, reactor: _FDSetRecorder) -> None:
        super().__init__(reactor)  # type: ignore[arg-type]
        self.connected = 1
        self.accept = 0

    def writeSomeData(self, data: bytes) -> int:
        taken = min(self.accept, len(data))
        self.accept -= taken
        return taken

    def getPeer(self) -> IPv4Address:
        return PEER

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 9000)


class BackpressureTests(SynchronousTestCase):
    """
    A client that sends but does not read stops being read from.
    """

    def setUp(self) -> None:
        self.reactor = _FDSetRecorder()
        self.socket = _StalledSocket(self.reactor)
        protocol = EchoFactory(Clock()).buildProtocol(PEER)
        assert protocol is not None
        self.protocol = protocol
        self.protocol.makeConnection(self.socket)
        self.socket.startReading()

    def test_pausesReadingWhenBufferFull(self) -> None:
        """
        Once the outgoing buffer passes C{bufferSize}, reading stops.
        """
        self.protocol.dataReceived(b"x" * self.socket.bufferSize)
        self.assertIn(self.socket, self.reactor.readers)
        self.protocol.dataReceived(b"x")
        self.assertNotIn(self.socket, self.reactor.readers)

    def test_resumesReadingWhenDrained(self) -> None:
        """
        Once the peer has read the whole buffer, reading starts again.
        """
        size = self.socket.bufferSize + 1
        self.protocol.dataReceived(b"x" * size)
        self.socket.accept = size - 1
        self.socket.doWrite()
        self.assertNotIn(self.socket, self.reactor.readers)
        self.socket.accept = 1
        self.socket.doWrite()
        self.assertIn(self.socket, self.reactor.readers)

    def test_halfCloseWhilePausedStillCloses(self) -> None:
        """
        A client that half-closes while reading is paused still gets its
        echo, and then the connection closes.
        """
        size = self.socket.bufferSize + 1
        self.protocol.dataReceived(b"x" * size)
        self.protocol.readConnectionLost()
        self.socket.accept = size
        # doWrite's result tells the reactor to drop the connection.
        self.assertIs(self.socket.doWrite(), main.CONNECTION_DONE)


class DescribePeerTests(SynchronousTestCase):
    """
    Tests for L{describe_peer}.
    """

    def test_ip(self) -> None:
        """
        An IP peer is shown as the lab shows it.
        """
        self.assertEqual(describe_peer(PEER), "('127.0.0.1', 57854)")

    def test_ipv4Mapped(self) -> None:
        """
        An IPv4 client of a dual-stack socket is shown by its IPv4 address;
        an IPv6 one as it is.
        """
        mapped = IPv6Address("TCP", "::ffff:127.0.0.1", 57854)
        self.assertEqual(describe_peer(mapped), "('127.0.0.1', 57854)")
        plain = IPv6Address("TCP", "::1", 57854)
        self.assertEqual(describe_peer(plain), "('::1', 57854)")
        upper = IPv6Address("TCP", "::FFFF:10.0.0.1", 1)
        self.assertEqual(describe_peer(upper), "('10.0.0.1', 1)")
        # IPv4-translated and other ::ffff:-prefixed addresses are not mapped.
        for other in ("::ffff:0:1.2.3.4", "::ffff:1:2", "::ffff:1.2.3"):
            self.assertEqual(
                describe_peer(IPv6Address("TCP", other, 1)), repr((other, 1))
            )

    def test_unixUnnamed(self) -> None:
        """
        A UNIX client socket usually has no name: L{None} from C{getPeer()},
        C{b""} in the address a UNIX port gives C{buildProtocol}.
        """
        self.assertEqual(describe_peer(UNIXAddress(None)), "unix:(unnamed)")
        self.assertEqual(describe_peer(UNIXAddress(b"")), "unix:(unnamed)")

    def test_unixNamed(self) -> None:
        """
        A named UNIX socket is shown by its path.
        """
        self.assertEqual(describe_peer(UNIXAddress(b"/run/e")), "unix:/run/e")
