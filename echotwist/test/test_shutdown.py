"""
Tests for L{echotwist.server.shutdown}.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ReactorNotRunning,
)
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import Snapshot, local_snapshots
from echotwist.server.protocol import Echo, EchoFactory
from echotwist.server.shutdown import ShutdownService, drain
from echotwist.server.udp import EchoDatagramProtocol
from echotwist.test.support import connect


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
        self.assertIn(
            "Shutdown complete: 4 connections served, 15 bytes echoed, ",
            formatEvent(summary),
        )

    def test_summarySingular(self) -> None:
        """
        One of a thing is said in the singular.
        """
        reactor = MemoryReactorClock()
        factory = EchoFactory(reactor)
        one = Snapshot(connections_total=1, bytes_echoed=1, datagrams_echoed=1)
        service = ShutdownService(factory, reactor, counts=lambda: {"0": one})
        service.startService()
        self.successResultOf(service.stopService())
        [summary] = [
            formatEvent(e)
            for e in self.events
            if "Shutdown complete" in e.get("log_format", "")
        ]
        self.assertEqual(
            summary,
            "Shutdown complete: 1 connection served, 1 byte echoed, 0 refused at "
            "the connection limit, 0 closed at the shutdown timeout; UDP: 1 "
            "datagram echoed, 0 dropped",
        )

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
        [stop] = reactor.from_thread
        self.assertFalse(reactor.hasStopped)
        stop()
        self.assertTrue(reactor.hasStopped)

    def running_service(
        self,
    ) -> tuple[ShutdownService, ThreadCallReactor, list[int]]:
        """
        A started L{ShutdownService} whose reactor "runs": its SIGTERM and
        SIGINT handlers are in place, SIGINT's wrapping one that records
        the signals it gets (as the reactor's own stops the reactor).  The
        previous handlers are restored after the test.

        @return: the service, its reactor, and the signals the wrapped
            SIGINT handler got.
        """
        reactor = ThreadCallReactor()
        for signum in signal.SIGTERM, signal.SIGINT:
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        got: list[int] = []
        signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
        service = ShutdownService(EchoFactory(reactor), reactor)
        service.startService()
        for function, args, kwargs in reactor.whenRunningHooks:
            function(*args, **kwargs)
        return service, reactor, got

    def send(self, signum: int) -> None:
        """
        Call the handler now installed for C{signum}, as the signal would.
        """
        handler = signal.getsignal(signum)
        assert callable(handler)
        handler(signum, None)

    def test_secondSigtermSilent(self) -> None:
        """
        A SIGTERM or SIGINT after the first SIGTERM does nothing: no second
        stop of the reactor (which would raise C{ReactorNotRunning}), no
        log line.  The stop itself tolerates a reactor already stopped.
        """
        _, reactor, got = self.running_service()
        self.send(signal.SIGTERM)
        self.assertEqual(len(reactor.from_thread), 1)
        del self.events[:]
        self.send(signal.SIGTERM)
        self.send(signal.SIGINT)
        self.assertEqual((len(reactor.from_thread), got, self.events), (1, [], []))
        [stop] = reactor.from_thread
        reactor.stop()
        stop()

    def test_secondSigintSilent(self) -> None:
        """
        The first SIGINT goes to the reactor's own handler (twistd's
        behaviour); any signal after it does nothing.
        """
        _, reactor, got = self.running_service()
        self.send(signal.SIGINT)
        self.assertEqual(got, [signal.SIGINT])
        self.send(signal.SIGINT)
        self.send(signal.SIGTERM)
        self.assertEqual((got, reactor.from_thread), ([signal.SIGINT], []))

    def test_stopThenSignalSilent(self) -> None:
        """
        Once the service is stopping for another reason (a worker whose
        parent has gone), a signal does nothing; a stop of the reactor that
        finds it stopped already is harmless too.
        """
        service, reactor, got = self.running_service()
        self.successResultOf(service.stopService())
        self.send(signal.SIGTERM)
        self.send(signal.SIGINT)
        self.assertEqual((got, reactor.from_thread), ([], []))


class ThreadCallReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that records C{callFromThread} calls, and
    whose C{stop} raises once stopped, as a real reactor's does.
    """

    def __init__(self) -> None:
        super().__init__()
        # Twisted 24.7's MemoryReactor starts out "stopped"; later ones don't.
        self.hasStopped = False
        self.from_thread: list[Callable[[], object]] = []

    def callFromThread(self, function: Callable[[], object]) -> None:
        """
        Record C{function} instead of calling it.
        """
        self.from_thread.append(function)

    def stop(self) -> None:
        """
        Stop, or raise L{ReactorNotRunning} if stopped already.
        """
        if self.hasStopped:
            raise ReactorNotRunning("Can't stop reactor that isn't running.")
        super().stop()


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
