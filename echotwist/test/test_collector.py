"""
Tests for L{echotwist.server.collector}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.collector import YOUNG_THRESHOLD, CollectorTuning


class FakeCollector:
    """
    Record what is asked of the C{gc} module.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.threshold = (700, 10, 10)

    def collect(self) -> int:
        self.calls.append(("collect",))
        return 0

    def freeze(self) -> None:
        self.calls.append(("freeze",))

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, young: int, middle: int, old: int) -> None:
        self.calls.append(("set_threshold", young, middle, old))
        self.threshold = (young, middle, old)


class CollectorTuningTests(SynchronousTestCase):
    """
    Tests for L{CollectorTuning}.
    """

    def test_nothingUntilStarted(self) -> None:
        """
        Building the service changes nothing.
        """
        fake = FakeCollector()
        clock = Clock()
        CollectorTuning(clock, fake)
        clock.advance(1)
        self.assertEqual(fake.calls, [])

    def test_started(self) -> None:
        """
        Once started, on the reactor's first pass (not before: the reactor
        has not set its signal handlers yet), what start-up left behind is
        collected, the rest frozen, and the youngest generation's threshold
        raised, the older two kept.
        """
        fake = FakeCollector()
        fake.threshold = (700, 11, 12)
        clock = Clock()
        service = CollectorTuning(clock, fake)
        service.startService()
        self.assertTrue(service.running)
        self.assertEqual(fake.calls, [])
        clock.advance(0)
        self.assertEqual(
            fake.calls,
            [("collect",), ("freeze",), ("set_threshold", YOUNG_THRESHOLD, 11, 12)],
        )
        self.assertGreater(YOUNG_THRESHOLD, 700)
