"""
The statistics of a probing run: counts, loss, and round-trip time
percentiles, as ping, echoping and fortio report them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from echotwist.client.exits import (
    EXIT_ALL_LOST,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_SOME_LOST,
)
from echotwist.client.result import FINAL, ProbeResult

__all__ = ["Spread", "Summary", "percentile", "spread", "summarize"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """
    @param ordered: values, sorted, at least one.
    @param q: the percentile, 0 to 100.
    @return: the value below which C{q}% lie, interpolated linearly between
        the closest ranks (as numpy's default).
    """
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """
    The spread of some times, in seconds.

    @ivar stddev: the population standard deviation (ping's mdev).
    @ivar jitter: the mean absolute difference of consecutive values, in the
        order given.
    """

    min: float
    avg: float
    median: float
    max: float
    stddev: float
    p90: float
    p99: float
    jitter: float


def spread(values: Sequence[float]) -> Spread | None:
    """
    @param values: times in seconds, in probe order.
    @return: their L{Spread}, or L{None} if there are none.
    """
    if not values:
        return None
    ordered = sorted(values)
    steps = [abs(b - a) for a, b in itertools.pairwise(values)]
    return Spread(
        min=ordered[0],
        avg=statistics.fmean(values),
        median=statistics.median(ordered),
        max=ordered[-1],
        stddev=statistics.pstdev(values),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        jitter=statistics.fmean(steps) if steps else 0.0,
    )


@dataclass(frozen=True)
class Summary:
    """
    What a run came to.

    @ivar sent: probes whose fate is known (each has one final result).
    @ivar received: of those, echoed exactly.
    @ivar lost: not echoed: no reply in time, refused, or an error.
    @ivar corrupted: echoed, but not as sent (or cut short), and replies
        that match no probe sent.
    @ivar duplicates: replies to probes already answered.
    @ivar late: replies after their probe's timeout (the probe stays lost).
    @ivar reordered: exact replies that came after a later probe's.
    @ivar in_flight: probes still awaited when the run was stopped (Ctrl-C
        or C{--deadline}); not counted in L{sent}.
    @ivar rtt: the round trips of the exact echoes.
    @ivar connect: connect times, where measured.
    @ivar handshake: TLS handshake times, where measured.
    """

    sent: int = 0
    received: int = 0
    lost: int = 0
    corrupted: int = 0
    duplicates: int = 0
    late: int = 0
    reordered: int = 0
    in_flight: int = 0
    rtt: Spread | None = None
    connect: Spread | None = None
    handshake: Spread | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def loss_pct(self) -> float:
        """
        Lost probes, in percent of L{sent} (0 when none was sent).
        """
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    @property
    def exit_status(self) -> int:
        """
        The exit status, as ping's: 0 every probe came back exact;
        L{EXIT_MISMATCH} some came back corrupted; L{EXIT_ALL_LOST} none
        came back; L{EXIT_SOME_LOST} some were lost.
        """
        if self.corrupted:
            return EXIT_MISMATCH
        if not self.received:
            return EXIT_ALL_LOST
        if self.lost:
            return EXIT_SOME_LOST
        return EXIT_OK


def summarize(results: Iterable[ProbeResult], in_flight: int = 0) -> Summary:
    """
    @param results: every result of a run, in the order reported.
    @param in_flight: probes still awaited when it stopped.
    @return: the run's L{Summary}.
    """
    results = list(results)
    finals = sorted(
        (r for r in results if r.status in FINAL and r.seq), key=lambda r: r.seq
    )
    unmatched = sum(1 for r in results if r.status == "corrupt" and not r.seq)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    ok = [r for r in finals if r.status == "ok"]
    return Summary(
        sent=len(finals),
        received=len(ok),
        lost=sum(1 for r in finals if r.status in ("lost", "refused", "error")),
        corrupted=sum(1 for r in finals if r.status == "corrupt") + unmatched,
        duplicates=counts.get("duplicate", 0),
        late=counts.get("late", 0),
        reordered=sum(1 for r in ok if r.reordered),
        in_flight=in_flight,
        rtt=spread([r.rtt for r in ok if r.rtt is not None]),
        connect=spread([r.connect for r in finals if r.connect is not None]),
        handshake=spread([r.handshake for r in finals if r.handshake is not None]),
        statuses=counts,
    )
