"""
Python's cyclic garbage collector, set for a server that holds many
connections.

The collector passes over its youngest objects every 700 allocations of
container objects, and over all of them now and then.  A connection's
set-up allocates dozens (the transport, the protocol, their dictionaries,
the idle timer), so under a storm of 10,000 connections those passes, each
walking the connections still open, cost about a seventh of the server's
CPU per connection.  Once the server runs, L{CollectorTuning} moves
everything built until then (Twisted, echotwist, the listening ports:
objects that live as long as the process) out of the collector's sight
(C{gc.freeze}), and raises the youngest generation's threshold tenfold.
Nothing stops being collected: what is built afterwards is collected as
before, the young passes are fewer.
"""

from __future__ import annotations

import gc
from typing import Protocol

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime

__all__ = ["YOUNG_THRESHOLD", "CollectorTuning"]

#: Allocations between passes over the youngest generation (Python's
#: default: 700).
YOUNG_THRESHOLD = 7000


class Collector(Protocol):
    """
    What L{CollectorTuning} uses of the C{gc} module.
    """

    def collect(self) -> int:
        """
        Collect every generation now.
        """

    def freeze(self) -> None:
        """
        Move every object tracked now to the permanent generation.
        """

    def get_threshold(self) -> tuple[int, int, int]:
        """
        The three generations' thresholds.
        """

    def set_threshold(self, young: int, middle: int, old: int) -> None:
        """
        Set them.
        """


class CollectorTuning(Service):
    """
    Once the reactor runs, freeze what the server has built so far and make
    the collector's young passes rarer (see the module's docstring).

    (Not in C{startService}, which twistd calls before the reactor has set
    its signal handlers: a SIGTERM during the collection would kill the
    server instead of stopping it.)

    @ivar collector: the C{gc} module, or a fake in tests.
    """

    def __init__(self, clock: IReactorTime, collector: Collector = gc) -> None:
        self.clock = clock
        self.collector = collector

    def startService(self) -> None:
        """
        Tune the collector on the reactor's first pass.
        """
        super().startService()
        self.clock.callLater(0, self.tune)

    def tune(self) -> None:
        """
        Collect what start-up left behind, freeze the rest, raise the young
        threshold.
        """
        self.collector.collect()
        self.collector.freeze()
        _, middle, old = self.collector.get_threshold()
        self.collector.set_threshold(YOUNG_THRESHOLD, middle, old)
