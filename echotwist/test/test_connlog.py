"""
Tests for L{echotwist.server.connlog}, alone and as L{EchoFactory} uses it.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.connlog import ConnectionLog
from echotwist.server.protocol import EchoFactory
from echotwist.test.support import connect


class ConnectionLogTests(SynchronousTestCase):
    """
    Tests for L{ConnectionLog}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.log = ConnectionLog(self.clock, lines_per_second=2)

    def test_underTheLimitEachLogged(self) -> None:
        """
        Up to C{lines_per_second} connections made a second, and separately
        ended, are each logged; nothing is summed up.
        """
        for _ in range(3):
            self.assertEqual([self.log.made("h"), self.log.made("h")], [True, True])
            self.assertTrue(self.log.ended("h", 1, 1, 0.5, "done"))
            self.clock.advance(1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stormSummedUp(self) -> None:
        """
        Past the limit, connections are counted, and one line per kind at
        the end of the second sums them up: how many, from which hosts, the
        bytes, the longest, and why they ended.
        """
        made = [self.log.made(h) for h in ["a", "a", "a", "b", "a"]]
        self.assertEqual(made, [True, True, False, False, False])
        ended = [
            self.log.ended("a", 3, 3, 0.25, "done"),
            self.log.ended("a", 3, 3, 0.25, "done"),
            self.log.ended("a", 5, 4, 0.5, "done"),
            self.log.ended("b", 7, 7, 1.5, "reset"),
        ]
        self.assertEqual(ended, [True, True, False, False])
        with capturedLogs() as events:
            self.clock.advance(1)
        lines = [formatEvent(e) for e in events]
        self.assertEqual(
            lines,
            [
                "Storm: 3 connections made in the last second past the first "
                "2, counted rather than logged one by one, from a (2), b (1)",
                "Storm: 2 connections ended in the last second past the first "
                "2, counted rather than logged one by one, from a (1), b (1): "
                "12 bytes in, 11 bytes out, the longest 1.500 s (1: done; 1: "
                "reset)",
            ],
        )
        self.assertEqual(events[1]["bytes_in"], 12)
        self.assertEqual(events[1]["count"], 2)
        self.assertTrue(self.log.made("a"))

    def test_manyHosts(self) -> None:
        """
        A summary names the three busiest hosts and counts the rest.
        """
        self.log.lines_per_second = 0
        for host in ["a", "a", "b", "c", "d", "e"]:
            self.log.made(host)
        with capturedLogs() as events:
            self.clock.advance(1)
        self.assertIn(
            "from a (2), b (1), c (1) and 2 other hosts", formatEvent(events[0])
        )

    def test_lateTurnSummedUpFirst(self) -> None:
        """
        A connection in a new second, before the last second's summary was
        called, has that summary logged first, once.
        """
        self.log.lines_per_second = 0
        self.log.made("a")
        self.clock.rightNow = 5.0
        with capturedLogs() as events:
            self.log.made("b")
            self.clock.advance(1)
        self.assertEqual(len(events), 2)
        self.assertIn("from a (1)", formatEvent(events[0]))
        self.assertIn("from b (1)", formatEvent(events[1]))


class FactoryStormTests(SynchronousTestCase):
    """
    L{EchoFactory}'s connections log through its L{ConnectionLog}.
    """

    def test_linesThenSummary(self) -> None:
        """
        The first connections of a second have their C{Connected by} and
        C{Disconnected} lines; the rest are summed up at the end of it.
        """
        clock = Clock()
        factory = EchoFactory(clock)
        factory.connection_log.lines_per_second = 1
        with capturedLogs() as events:
            for port in [1000, 1001]:
                protocol, _ = connect(factory, IPv4Address("TCP", "127.0.0.1", port))
                protocol.dataReceived(b"ab")
                protocol.connectionLost(Failure(ConnectionDone()))
            clock.advance(1)
        lines = [formatEvent(e) for e in events]
        self.assertEqual(lines[0], "Connected by ('127.0.0.1', 1000)")
        self.assertTrue(lines[1].startswith("Disconnected ('127.0.0.1', 1000)"))
        self.assertEqual(len(lines), 4)
        self.assertIn("Storm: 1 connection made", lines[2])
        self.assertIn("from 127.0.0.1 (1): 2 bytes in, 2 bytes out", lines[3])
