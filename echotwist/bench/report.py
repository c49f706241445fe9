"""
Showing results: a text table for people, JSON for machines, a plot.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from echotwist.bench.stats import SATURATED_SHARE, RunResult


@dataclass(frozen=True)
class Row:
    """
    One line of a report: a server under one workload.

    @ivar workload: e.g. C{100x1K}.
    @ivar server: the server's name (or the endpoint for C{--connect}).
    @ivar result: the (median) figures.
    @ivar rounds: each round's figures, in the order they were run.
    """

    workload: str
    server: str
    result: RunResult
    rounds: tuple[RunResult, ...]


def ratios(rows: Sequence[Row], baseline: str | None) -> list[float | None]:
    """
    Server CPU per echo against the baseline server's, for each row.

    Each round's figure is divided by the baseline's in the same round and
    workload (run minutes apart at most, on the same noisy machine), and the
    median of those ratios is reported: drift in the machine's load between
    rounds cancels, as it would not in a ratio of medians.

    @param rows: the rows, each with its rounds.
    @param baseline: the server to divide by, or L{None}.
    @return: one ratio per row, L{None} where there is nothing to divide.
    """
    base = {r.workload: r.rounds for r in rows if r.server == baseline}
    found: list[float | None] = []
    for row in rows:
        pairs = zip(row.rounds, base.get(row.workload, ()), strict=False)
        each = [
            mine.server_us_per_echo / theirs.server_us_per_echo
            for mine, theirs in pairs
            if mine.server_us_per_echo and theirs.server_us_per_echo
        ]
        found.append(statistics.median(each) if each else None)
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def table(rows: Sequence[Row], baseline: str | None) -> str:
    """
    Lay the rows out as a fixed-width table.

    @param rows: what to show, in order.
    @param baseline: the server the C{ratio} column divides by (server CPU
        per echo, same workload, see L{ratios}), or L{None} for no such
        column.
    @return: the table, with a note under it for each saturated run.
    """
    head = [
        "workload",
        "server",
        "echoes/s",
        "MiB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "srv us/echo",
        "loadgen %",
    ]
    if baseline:
        head.append(f"vs {baseline}")
    lines = [head]
    notes = []
    for row, ratio in zip(rows, ratios(rows, baseline), strict=True):
        r = row.result
        line = [
            row.workload,
            row.server,
            _fmt(r.echoes_per_s, 0),
            _fmt(r.mib_per_s),
            _fmt(r.p50_ms, 3),
            _fmt(r.p90_ms, 3),
            _fmt(r.p99_ms, 3),
            _fmt(r.max_ms, 2),
            str(r.errors),
            _fmt(r.server_us_per_echo, 2),
            _fmt(r.loadgen_share * 100, 0) + ("*" if r.loadgen_saturated else ""),
        ]
        if baseline:
            line.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append(line)
        notes += [f"{row.workload} {row.server}: {e}" for e in r.error_lines]
        if r.loadgen_saturated:
            notes.append(
                f"{row.workload} {row.server}: load generator saturated "
                f"(over {SATURATED_SHARE:.0%} of a core in a round; median "
                f"{r.loadgen_share:.0%}): figures may be its limit"
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text + notes)


def plot(rows: Sequence[Row], path: str, title: str) -> None:
    """
    Draw server CPU per echo and echoes/s per workload, one bar per server.

    @param rows: the results.
    @param path: the PNG to write.
    @param title: the figure's title (the machine and command).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in rows))
    servers = list(dict.fromkeys(r.server for r in rows))
    by = {(r.workload, r.server): r.result for r in rows}
    fig, axes = plt.subplots(2, 1, figsize=(max(8, len(workloads) * 1.1), 8))
    width = 0.8 / len(servers)
    panels = [
        ("server CPU per echo (us), lower is better", lambda r: r.server_us_per_echo),
        ("echoes/s (log), higher is better", lambda r: r.echoes_per_s),
    ]
    for ax, (label, pick) in zip(axes, panels, strict=True):
        for i, server in enumerate(servers):
            values = []
            for w in workloads:
                result = by.get((w, server))
                value = pick(result) if result else None
                values.append(math.nan if value is None else value)
            xs = [x + i * width for x in range(len(workloads))]
            ax.bar(xs, values, width, label=server)
        ax.set_xticks(
            [x + width * (len(servers) - 1) / 2 for x in range(len(workloads))]
        )
        ax.set_xticklabels(workloads)
        ax.set_ylabel(label)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize="small", ncol=len(servers))
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
