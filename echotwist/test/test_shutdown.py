"""
Tests for L{echotwist.server.shutdown}.
"""

from __future__ import annotations

import signal
from typing import cast

from twisted.application.service import Service
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import Snapshot, local_snapshots
from echotwist.server.protocol import Echo, EchoFactory
from echotwist.server.shutdown import ShutdownService, drain
from echotwist.server.udp import EchoDatagramProtocol


def connect(factory: EchoFactory) -> tuple[Echo, StringTransport]:
    """
    @return: a new connected L{Echo} of C{factory} and its transport.
    """
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    protocol = factory.buildProtocol(address)
    assert protocol is not None
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


def lose(protocol: Echo, transport: StringTransport) -> None:
    """
    Deliver C{connectionLost}, as the reactor would after a close or abort.
    """
    reason = ConnectionAborted() if transport.disconnected else ConnectionDone()
    protocol.connectionLost(Failure(reason))


class DrainTests(SynchronousTestCase):
    """
    Tests for L{drain}.
    """

    def test_nothingOpen(self) -> None:
        """
        With no connection open, L{drain} fires at once with 0 aborted.
        """
        clock = Clock()
        self.assertEqual(self.successResultOf(drain(EchoFactory(clock), clock, 5)), 0)

    def test_waitsForConnections(self) -> None:
        """
        L{drain} fires once the last open connection has ended by itself.
        """
        clock = Clock()
        factory = EchoFactory(clock)
        first, first_transport = connect(factory)
        second, second_transport = connect(factory)
        done = drain(factory, clock, 5)
        lose(first, first_transport)
        clock.advance(1)
        self.assertNoResult(done)
        lose(second, second_transport)
        clock.advance(1)
        self.assertEqual(self.successResultOf(done), 0)
        self.assertFalse(second_transport.disconnected)

    def test_abortsAfterTimeout(self) -> None:
        """
        Connections still open after the timeout are aborted, and counted.
        """
        clock = Clock()
        factory = EchoFactory(clock)
        connections = [connect(factory) for _ in range(3)]
        done = drain(factory, clock, 5)
        clock.advance(4.9)
        self.assertEqual([t.disconnected for _, t in connections], [False] * 3)
        clock.advance(0.1)
        self.assertEqual([t.disconnected for _, t in connections], [True] * 3)
        self.assertNoResult(done)
        for protocol, transport in connections:
            lose(protocol, transport)
        clock.advance(1)
        self.assertEqual(self.successResultOf(done), 3)
        self.assertEqual(factory.open_connections, set())


class ShutdownServiceTests(SynchronousTestCase):
    """
    Tests for L{ShutdownService}.
    """

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def test_summary(self) -> None:
        """
        Stopping the service waits for connections, then logs one summary
        line summing every process's counts, a worker gone by then as it was
        when shutdown began.
        """
        reactor = MemoryReactorClock()
        factory = EchoFactory(reactor)
        protocol, transport = connect(factory)
        protocol.dataReceived(b"hello")
        udp = EchoDatagramProtocol(reactor)
        udp.datagrams_echoed = 7
        workers = {"1": Snapshot(connections_total=3, bytes_echoed=10)}

        def counts() -> dict[str, Snapshot]:
            return {**local_snapshots(factory, [udp]), **workers}

        service = ShutdownService(factory, reactor, timeout=2, counts=counts)
        service.startService()
        stopped = service.stopService()
        self.assertNoResult(stopped)
        workers.clear()
        reactor.advance(2)
        self.assertTrue(transport.disconnected)
        lose(protocol, transport)
        reactor.advance(1)
        self.successResultOf(stopped)
        [summary] = [
            e for e in self.events if "Shutdown complete" in e.get("log_format", "")
        ]
        self.assertEqual(
            (summary["connections"], summary["bytes"], summary["aborted"]), (4, 15, 1)
        )
        self.assertEqual(summary["datagrams"], 7)

    def test_waitsForChildren(self) -> None:
        """
        Stopping stops the children first and logs the summary only once
        they have stopped (a worker pool's workers have exited).
        """
        reactor = MemoryReactorClock()
        child = SlowToStop()
        service = ShutdownService(EchoFactory(reactor), reactor)
        child.setServiceParent(service)
        service.startService()
        stopped = service.stopService()
        self.assertFalse(child.running)
        reactor.advance(1)
        self.assertNoResult(stopped)
        self.assertFalse([e for e in self.events if "Shutdown complete" in str(e)])
        child.stopped.callback(None)
        self.successResultOf(stopped)
        self.assertTrue([e for e in self.events if "Shutdown complete" in str(e)])

    def test_sigtermHandler(self) -> None:
        """
        Once the reactor runs, SIGTERM is handled by the service, which asks
        the reactor (from the thread-safe queue) to stop; the previous
        handler is restored after the test.
        """
        reactor = ThreadCallReactor()
        previous = signal.getsignal(signal.SIGTERM)
        self.addCleanup(signal.signal, signal.SIGTERM, previous)
        service = ShutdownService(EchoFactory(reactor), reactor)
        service.startService()
        self.assertIs(signal.getsignal(signal.SIGTERM), previous)
        for function, args, kwargs in reactor.whenRunningHooks:
            function(*args, **kwargs)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
        self.assertEqual(reactor.from_thread, [reactor.stop])


class ThreadCallReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that records C{callFromThread} calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.from_thread: list[object] = []

    def callFromThread(self, function: object) -> None:
        """
        Record C{function} instead of calling it.
        """
        self.from_thread.append(function)


class SlowToStop(Service):
    """
    A service whose stop completes when the test says.

    @ivar stopped: returned by L{stopService}.
    """

    def __init__(self) -> None:
        self.stopped: Deferred[None] = Deferred()

    def stopService(self) -> Deferred[None]:
        """
        @return: L{stopped}.
        """
        super().stopService()
        return self.stopped
