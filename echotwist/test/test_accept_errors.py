"""
Tests for L{echotwist.server.accept_errors}.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from echotwist._twisted_private import ACCEPT_CLOSED, ACCEPT_FAILED, ACCEPT_QUIET
from echotwist.server.accept_errors import AcceptErrorSummary, SummarizedAcceptErrors
from echotwist.test.support import FakePort

RELEASE, RESERVE = sorted(ACCEPT_QUIET)


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
            self.summary({"log_format": ACCEPT_CLOSED, "address": ("127.0.0.1", i)})
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
                    "log_format": ACCEPT_FAILED,
                    "acceptError": "ENFILE",
                }
            )
        self.assertEqual(self.summary.refused_total, 3)
        [first] = [e for e in self.logged if "error" in e]
        self.assertEqual(first["error"], "ENFILE")


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
        self.addCleanup(port.stopListening)
        namespace = port.log_namespace

        class Endpoint:
            def listen(self, factory: object) -> object:
                return succeed(port)

        endpoint = SummarizedAcceptErrors(Endpoint(), summary)  # type: ignore[arg-type]
        result = self.successResultOf(endpoint.listen(Factory()))
        self.assertIs(result, port)
        self.assertIs(port.log_observer, summary)
        self.assertEqual(port.log_namespace, namespace)
