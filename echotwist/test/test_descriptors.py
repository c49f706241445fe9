"""
Tests for L{echotwist.server.accept_errors}.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import cast

from twisted.internet import unix
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import ILogObserver, LogEvent, Logger, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.accept_errors import AcceptErrorSummary, SummarizedAcceptErrors
from echotwist.server.endpoints import endpoint_kind
from echotwist.server.listeners import listeners
from echotwist.server.shared_socket import SharedSocketEndpoint

CLOSED = "EMFILE recovery: Closed socket from {address}"
RELEASE = "EMFILE encountered; releasing reserved file descriptor."
RESERVE = "Re-reserving EMFILE recovery file descriptor."


class AcceptErrorSummaryTests(SynchronousTestCase):
    """
    Tests for L{AcceptErrorSummary}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.passed: list[LogEvent] = []
        self.summary = AcceptErrorSummary(
            self.clock, interval=10, observer=cast(ILogObserver, self.passed.append)
        )
        self.logged: list[LogEvent] = []
        observer = cast(ILogObserver, self.logged.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def emfile(self, count: int) -> None:
        """
        Feed the events Twisted's port logs for C{count} closed connections.
        """
        for i in range(count):
            self.summary({"log_format": RELEASE})
            self.summary({"log_format": CLOSED, "address": ("127.0.0.1", i)})
            self.summary({"log_format": RESERVE})

    def formats(self) -> list[str]:
        """
        @return: the formats of the summary's own log events.
        """
        return [
            e["log_format"]
            for e in self.logged
            if e.get("log_namespace", "").startswith("echotwist.server.accept_errors")
        ]

    def test_otherEventsPass(self) -> None:
        """
        Events other than accept errors go on to the observer unchanged.
        """
        event = {"log_format": "TCP Port {port} Closed", "port": 1}
        self.summary(event)
        self.assertEqual(self.passed, [event])

    def test_floodSummarized(self) -> None:
        """
        A thousand closed connections log one line at once, one count per
        interval while they go on, and one line once an interval passes
        without any; none of Twisted's per-connection lines get through.
        """
        self.emfile(1000)
        self.assertEqual(self.passed, [])
        self.assertEqual(len(self.formats()), 1)
        self.assertIn("Out of file descriptors", self.formats()[0])
        self.clock.advance(10)
        self.assertEqual(self.logged[-1]["count"], 1000)
        self.emfile(5)
        self.clock.advance(10)
        self.assertEqual(self.logged[-1]["count"], 5)
        self.clock.advance(10)
        self.assertIn("available again", self.formats()[-1])
        self.assertEqual(self.logged[-1]["total"], 1005)
        self.assertEqual(len(self.formats()), 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_otherAcceptErrors(self) -> None:
        """
        C{ENFILE} and the like are counted too, and named in the first line.
        """
        for _ in range(3):
            self.summary(
                {
                    "log_format": "Could not accept new connection ({acceptError})",
                    "acceptError": "ENFILE",
                }
            )
        self.assertEqual(self.summary.refused_total, 3)
        [first] = [e for e in self.logged if "error" in e]
        self.assertEqual(first["error"], "ENFILE")


class FakePort:
    """
    A listening port with Twisted's private logger.
    """

    _logger = Logger()


class SummarizedAcceptErrorsTests(SynchronousTestCase):
    """
    Tests for L{SummarizedAcceptErrors}.
    """

    def test_routesPortLogger(self) -> None:
        """
        The port listened on logs through the summary, in its own namespace.
        """
        summary = AcceptErrorSummary(Clock())
        port = FakePort()
        namespace = port._logger.namespace

        class Endpoint:
            def listen(self, factory: object) -> object:
                return succeed(port)

        endpoint = SummarizedAcceptErrors(Endpoint(), summary)  # type: ignore[arg-type]
        result = self.successResultOf(endpoint.listen(Factory()))
        self.assertIs(result, port)
        self.assertIs(port._logger.observer, summary)
        self.assertEqual(port._logger.namespace, namespace)

    def test_portWithoutLogger(self) -> None:
        """
        A port without Twisted's logger is handed back untouched.
        """
        reactor = MemoryReactor()
        endpoint = SummarizedAcceptErrors(
            TCP4ServerEndpoint(reactor, 0), AcceptErrorSummary(Clock())
        )
        port = self.successResultOf(endpoint.listen(Factory()))
        self.assertFalse(hasattr(port, "_logger"))


class _Listening:
    """
    An endpoint that has already listened: it hands back its port.
    """

    def __init__(self, port: object) -> None:
        self.port = port

    def listen(self, factory: object) -> object:
        return succeed(self.port)


class SharedSocketEndpointTests(SynchronousTestCase):
    """
    Tests for L{SharedSocketEndpoint}.
    """

    def setUp(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.path = os.path.join(directory, "echo.sock")
        self.reactor = MemoryReactor()
        self.port = unix.Port(os.fsencode(self.path), Factory(), reactor=self.reactor)
        self.port.startListening()
        self.addCleanup(self.port.socket.close)

    def test_stopOnlyStopsAccepting(self) -> None:
        """
        Stopping a shared UNIX port stops accepting on it, but leaves the
        socket open and its path in place for the other processes (the port
        itself would remove the path as it closed).
        """
        endpoint = SharedSocketEndpoint(_Listening(self.port))  # type: ignore[arg-type]
        shared = self.successResultOf(endpoint.listen(Factory()))
        self.assertEqual(shared.getHost(), self.port.getHost())
        self.assertIn(self.port, self.reactor.getReaders())
        shared.stopListening()
        self.assertNotIn(self.port, self.reactor.getReaders())
        self.assertTrue(self.port.connected)
        self.assertTrue(os.path.exists(self.path))
        shared.startListening()
        self.assertIn(self.port, self.reactor.getReaders())


class ListenersTests(SynchronousTestCase):
    """
    Tests for L{listeners}.
    """

    def test_summarized(self) -> None:
        """
        Each endpoint gets a service serving the factory, its accept errors
        going to one summary shared by all.
        """
        factory = Factory()
        reactor = MemoryReactor()
        services = listeners(
            [TCP4ServerEndpoint(reactor, 0), TCP4ServerEndpoint(reactor, 1)],
            factory,
            Clock(),
        )
        endpoints = [cast(SummarizedAcceptErrors, s.endpoint) for s in services]
        self.assertEqual([type(e) for e in endpoints], [SummarizedAcceptErrors] * 2)
        self.assertIs(endpoints[0].summary, endpoints[1].summary)
        self.assertEqual([s.factory for s in services], [factory] * 2)

    def test_shared(self) -> None:
        """
        Shared sockets only ever stop accepting, their accept errors summed
        up all the same.
        """
        [service] = listeners(
            [TCP4ServerEndpoint(MemoryReactor(), 0)], Factory(), Clock(), shared=True
        )
        endpoint = service.endpoint
        assert isinstance(endpoint, SharedSocketEndpoint)
        self.assertIsInstance(endpoint.endpoint, SummarizedAcceptErrors)

    def test_failureRaised(self) -> None:
        """
        A service whose endpoint can't listen raises as it starts, so that
        the process can say so and exit, rather than only logging it.
        """

        class Taken:
            def listen(self, factory: object) -> object:
                return fail(CannotListenError("", 9000, OSError("in use")))

        [service] = listeners([Taken()], Factory(), Clock())  # type: ignore[list-item]
        self.assertRaises(CannotListenError, service.privilegedStartService)


class EndpointKindTests(SynchronousTestCase):
    """
    Tests for L{endpoint_kind}.
    """

    def test_kinds(self) -> None:
        """
        The type is what comes before the first colon, in lower case.
        """
        cases = {
            "tcp:0": "tcp",
            "TCP6:9000:interface=\\:\\:1": "tcp6",
            "unix:/run/echo:backlog=5": "unix",
            "systemd:domain=INET:index=0": "systemd",
            "nosuch": "nosuch",
        }
        self.assertEqual({d: endpoint_kind(d) for d in cases}, cases)
