"""
Figures from one load run: merging what the workers counted, percentiles,
and the medians a comparison reports.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Above this share of one core a load worker is taken to be the bottleneck.
SATURATED_SHARE = 0.9

#: At or above this share of one core the server is taken to be saturated:
#: running flat out, so that its figures are its own limit.
SERVER_SATURATED_SHARE = 0.9

MIB = 1024 * 1024


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """
    The nearest-rank percentile of already sorted values.

    @param sorted_values: the values, smallest first.
    @param fraction: which percentile, from 0 to 1 (0.99 for p99).
    @return: the value at that rank, or C{nan} when there are none.
    """
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class WorkerResult:
    """
    What one load worker measured over the timed window.

    @ivar echoes: complete echoes (ping-pong) received and checked.
    @ivar bytes_echoed: bytes received back and checked.
    @ivar latencies: seconds from send to full echo, one per echo.
    @ivar errors: one line per failed connection or wrong echo.
    @ivar cpu: the worker's own CPU seconds over the window.
    @ivar wall: the window's length in seconds.
    """

    echoes: int = 0
    bytes_echoed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0


@dataclass
class RunResult:
    """
    The figures for one run against one server.

    @ivar echoes_per_s: complete echoes per second (0 in stream mode).
    @ivar mib_per_s: MiB per second echoed back.
    @ivar p50_ms: median latency in milliseconds (ping-pong only).
    @ivar p90_ms: 90th percentile latency in milliseconds.
    @ivar p99_ms: 99th percentile latency in milliseconds.
    @ivar max_ms: the slowest echo in milliseconds.
    @ivar errors: how many errors the workers reported.
    @ivar error_lines: the first few of them.
    @ivar server_us_per_echo: server CPU microseconds per echo (per 1 KiB
        echoed in stream mode), or L{None} without a server process.
    @ivar loadgen_share: the busiest worker's CPU as a share of one core.
    @ivar loadgen_saturated: whether that share is over L{SATURATED_SHARE},
        so the figures may be the load generator's limit, not the server's.
    @ivar server_share: the server's CPU over the window as a share of one
        core, or L{None} without a server process.
    @ivar server_saturated: whether that share is at least
        L{SERVER_SATURATED_SHARE} (L{None} when unknown).
    """

    echoes_per_s: float
    mib_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_lines: list[str]
    server_us_per_echo: float | None
    loadgen_share: float
    loadgen_saturated: bool
    server_share: float | None = None
    server_saturated: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """
        @return: the fields, for C{--json} (C{nan} becomes C{None}).
        """
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def combine(
    results: Sequence[WorkerResult], server_cpu: float | None, stream: bool
) -> RunResult:
    """
    Merge the workers' counts into one L{RunResult}.

    @param results: one per worker.
    @param server_cpu: the server's CPU seconds over the window, if known.
    @param stream: whether this was a stream run (server CPU is then given
        per KiB echoed rather than per echo).
    @return: the figures.
    """
    wall = max((r.wall for r in results), default=0.0) or math.nan
    echoes = sum(r.echoes for r in results)
    echoed = sum(r.bytes_echoed for r in results)
    latencies = sorted(x for r in results for x in r.latencies)
    errors = [line for r in results for line in r.errors]
    units = echoed / 1024 if stream else echoes
    share = max((r.cpu / r.wall for r in results if r.wall > 0), default=0.0)
    server = server_share = None
    if server_cpu is not None:
        server = server_cpu * 1e6 / units if units else math.nan
        server_share = server_cpu / wall
    return RunResult(
        echoes_per_s=echoes / wall,
        mib_per_s=echoed / MIB / wall,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p90_ms=percentile(latencies, 0.90) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        max_ms=latencies[-1] * 1e3 if latencies else math.nan,
        errors=len(errors),
        error_lines=errors[:5],
        server_us_per_echo=server,
        loadgen_share=share,
        loadgen_saturated=share > SATURATED_SHARE,
        server_share=server_share,
        server_saturated=saturated(server_share),
    )


def saturated(server_share: float | None) -> bool | None:
    """
    @return: whether a server that used C{server_share} of a core ran flat
        out, or L{None} when its share is unknown.
    """
    if server_share is None or math.isnan(server_share):
        return None
    return server_share >= SERVER_SATURATED_SHARE


def median_result(runs: Sequence[RunResult]) -> RunResult:
    """
    The median of each figure over several rounds.

    @param runs: at least one run of the same workload on the same server.
    @return: a run whose every figure is the median of the rounds' (errors
        are summed, and saturation is reported if any round saturated).
    """

    def med(values: Sequence[float | None]) -> float:
        known = [v for v in values if v is not None and not math.isnan(v)]
        return statistics.median(known) if known else math.nan

    server_values = [r.server_us_per_echo for r in runs]
    server = None if all(v is None for v in server_values) else med(server_values)
    share_values = [r.server_share for r in runs]
    share = None if all(v is None for v in share_values) else med(share_values)
    return RunResult(
        echoes_per_s=med([r.echoes_per_s for r in runs]),
        mib_per_s=med([r.mib_per_s for r in runs]),
        p50_ms=med([r.p50_ms for r in runs]),
        p90_ms=med([r.p90_ms for r in runs]),
        p99_ms=med([r.p99_ms for r in runs]),
        max_ms=med([r.max_ms for r in runs]),
        errors=sum(r.errors for r in runs),
        error_lines=[line for r in runs for line in r.error_lines][:5],
        server_us_per_echo=server,
        loadgen_share=med([r.loadgen_share for r in runs]),
        loadgen_saturated=any(r.loadgen_saturated for r in runs),
        server_share=share,
        server_saturated=saturated(share),
    )
