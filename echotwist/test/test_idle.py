"""
Tests for L{echotwist.server.idle}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.idle import IDLE_CHECKS, IdleSweep


class Recorded:
    """
    A connection that records when it is checked.
    """

    def __init__(self, fails: bool = False) -> None:
        self.checked: list[float] = []
        self.fails = fails

    def check_idle(self, now: float) -> None:
        self.checked.append(now)
        if self.fails:
            raise RuntimeError("broken check")


class IdleSweepTests(SynchronousTestCase):
    """
    Tests for L{IdleSweep}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.connections: set[Recorded] = set()
        self.sweep = IdleSweep(self.clock, 10.0, self.connections)

    def test_checksEveryTenth(self) -> None:
        """
        Once watching, every open connection is checked L{IDLE_CHECKS} times
        per timeout, with the clock's time.
        """
        connection = Recorded()
        self.connections.add(connection)
        self.sweep.watch()
        self.sweep.watch()  # a second connection: still one timer
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.pump([1.0] * 10)
        self.assertEqual(connection.checked, [float(n) for n in range(1, 11)])
        self.assertEqual(self.sweep.interval, 10.0 / IDLE_CHECKS)

    def test_runsOnlyWhileWatching(self) -> None:
        """
        Nothing is scheduled before the first connection, nor once stopped;
        it starts again with the next one.
        """
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(self.sweep.running)
        self.sweep.watch()
        self.assertTrue(self.sweep.running)
        self.sweep.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(self.sweep.running)
        connection = Recorded()
        self.connections.add(connection)
        self.sweep.watch()
        self.clock.advance(1.0)
        self.assertEqual(connection.checked, [1.0])

    def test_failingCheckLogged(self) -> None:
        """
        A check that raises is logged; the other connections are still
        checked, and the checks go on.
        """
        broken, sound = Recorded(fails=True), Recorded()
        self.connections.update({broken, sound})
        self.sweep.watch()
        self.clock.pump([1.0, 1.0])
        self.assertEqual(sound.checked, [1.0, 2.0])
        self.assertEqual(broken.checked, [1.0, 2.0])
        logged = self.flushLoggedErrors(RuntimeError)
        self.assertEqual([f.value.args for f in logged], [("broken check",)] * 2)
