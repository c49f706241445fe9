"""
Showing results: a text table for people, JSON for machines, a plot.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from echotwist.bench.stats import SATURATED_SHARE, SERVER_SATURATED_SHARE, RunResult
from echotwist.bench.storm import ConnResult


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


@dataclass(frozen=True)
class StormRow:
    """
    One line of a storm report: a server under one storm.

    @ivar workload: e.g. C{storm:10000}.
    @ivar server: the server's name.
    @ivar result: the median round's figures (by total time).
    @ivar rounds: each round's figures, in the order they were run.
    """

    workload: str
    server: str
    result: ConnResult
    rounds: tuple[ConnResult, ...]


def per_echo(result: object) -> float | None:
    """
    @return: a load run's server CPU per echo, for L{ratios}.
    """
    assert isinstance(result, RunResult)
    return result.server_us_per_echo


def per_connection(result: object) -> float | None:
    """
    @return: a storm's server CPU per connection, for L{ratios}.
    """
    assert isinstance(result, ConnResult)
    return result.server_us_per_connection


def ratios(
    rows: Sequence[Row] | Sequence[StormRow],
    baseline: str | None,
    figure: Callable[[object], float | None] | None = None,
) -> list[float | None]:
    """
    Server CPU per echo against the baseline server's, for each row.

    Each round's figure is divided by the baseline's in the same round and
    workload (run minutes apart at most, on the same noisy machine), and the
    median of those ratios is reported: drift in the machine's load between
    rounds cancels, as it would not in a ratio of medians.

    @param rows: the rows, each with its rounds.
    @param baseline: the server to divide by, or L{None}.
    @param figure: picks the figure to divide from a round's result (server
        CPU per echo by default).
    @return: one ratio per row, L{None} where there is nothing to divide.
    """
    figure = figure or per_echo
    base: dict[str, tuple[object, ...]] = {
        r.workload: r.rounds for r in rows if r.server == baseline
    }
    found: list[float | None] = []
    for row in rows:
        pairs = zip(row.rounds, base.get(row.workload, ()), strict=False)
        each = [
            mine / theirs
            for mine, theirs in ((figure(a), figure(b)) for a, b in pairs)
            if mine and theirs and not math.isnan(mine) and not math.isnan(theirs)
        ]
        found.append(statistics.median(each) if each else None)
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def error_notes(label: str, lines: Sequence[str], count: int) -> list[str]:
    """
    @param label: what the errors are of (workload and server).
    @param lines: the first few error lines.
    @param count: how many errors there were in all.
    @return: one note per distinct line, with how often it was among the
        first few, and the total where more were left out.
    """
    notes = [
        f"{label}: {line}" + (f" (x{n})" if n > 1 else "")
        for line, n in Counter(lines).items()
    ]
    if count > len(lines):
        notes.append(f"{label}: {count:,} errors in all")
    return notes


def _layout(lines: list[list[str]]) -> list[str]:
    """
    @return: C{lines} (a head, then rows) as fixed-width text, the first two
        columns left-aligned, with a rule under the head.
    """
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return text


def _share(share: float | None, saturated: bool | None) -> str:
    """
    @return: a CPU share as a percentage, C{*} marking saturation.
    """
    if share is None or math.isnan(share):
        return "-"
    return f"{share * 100:.0f}" + ("*" if saturated else "")


def saturation(rows: Sequence[Row]) -> list[str]:
    """
    Say whether the server was driven to saturation, from its CPU share
    during each run.

    @return: one line for a single run, else a summary naming the runs in
        which the server was not saturated; nothing without server CPU.
    """
    known = [r for r in rows if r.result.server_share is not None]
    if not known:
        return []
    limit = f"{SERVER_SATURATED_SHARE:.0%}"
    if len(rows) == 1:
        r = known[0].result
        share = r.server_share or 0.0
        if r.server_saturated:
            return [
                f"server saturated: {share:.0%} of a core over the run "
                f"(at least {limit}): the figures are the server's limit"
            ]
        return [
            f"server not saturated: {share:.0%} of a core over the run (under "
            f"{limit}): the load generator ({r.loadgen_share:.0%} of a core) or "
            "the connections' round trips set the pace, not the server"
        ]
    idle = [r for r in known if not r.result.server_saturated]
    line = (
        f"server saturated (at least {limit} of a core, srv % column) in "
        f"{len(known) - len(idle)} of {len(known)} runs"
    )
    if idle:
        line += "; not in: " + ", ".join(
            f"{r.workload} {r.server} ({(r.result.server_share or 0):.0%})"
            for r in idle
        )
    return textwrap.wrap(line, 100, subsequent_indent="  ")


def table(rows: Sequence[Row], baseline: str | None, stream: bool = False) -> str:
    """
    Lay the rows out as a fixed-width table.

    @param rows: what to show, in order.
    @param baseline: the server the C{ratio} column divides by (server CPU
        per echo, same workload, see L{ratios}), or L{None} for no such
        column.
    @param stream: the runs streamed: server CPU is per KiB, not per echo.
    @return: the table, with a note under it for each saturated load
        generator and whether the server was saturated.
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
        "srv us/KiB" if stream else "srv us/echo",
        "srv %",
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
            _share(r.server_share, r.server_saturated),
            _fmt(r.loadgen_share * 100, 0) + ("*" if r.loadgen_saturated else ""),
        ]
        if baseline:
            line.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append(line)
        notes += error_notes(f"{row.workload} {row.server}", r.error_lines, r.errors)
        if r.loadgen_saturated and not r.server_saturated:
            notes.append(
                f"{row.workload} {row.server}: load generator saturated "
                f"(over {SATURATED_SHARE:.0%} of a core in a round; median "
                f"{r.loadgen_share:.0%}): figures may be its limit"
            )
    return "\n".join(_layout(lines) + notes + saturation(rows))


def describe_conns(result: ConnResult, target: str) -> str:
    """
    @return: a storm's or connect rate's figures, as lines for people.
    """
    r = result
    if r.mode == "storm":
        how = {None: "", 0: ", all at once", 1: ", one handshake at a time"}.get(
            r.in_flight, f", {r.in_flight} handshakes at a time"
        )
        first = (
            f"storm: {r.connections:,} connections to {target} back to back"
            f"{how} ({r.driver} driver)"
        )
    else:
        first = (
            f"connect rate: {r.rate or 0:,.0f}/s to {target} for "
            f"{r.connections:,} connections ({r.driver} driver)"
        )
    lines = [
        first,
        f"  connected {r.connected:,}, echoed {r.echoed:,}, errors {r.errors:,}, "
        f"in {r.seconds:.3f} s",
        f"  connect latency: p50 {_fmt(r.connect_p50_ms, 3)} ms, p99 "
        f"{_fmt(r.connect_p99_ms, 3)} ms, max {_fmt(r.connect_max_ms, 3)} ms; "
        f"{r.slow_connects:,} took >= 1 s (SYN retransmissions)",
        f"  connect to echo: p50 {_fmt(r.latency_p50_ms, 3)} ms, p99 "
        f"{_fmt(r.latency_p99_ms, 3)} ms, max {_fmt(r.latency_max_ms, 3)} ms",
    ]
    if r.mode != "storm":
        lines.append(f"  accepted and echoed: {r.accepted_per_s:,.0f} connections/s")
    if target.startswith("unix:"):
        lines.append(
            f"  listen-queue overflows during the run: {r.listen_overflows or 0:,} "
            "(connects a full UNIX socket queue refused at once, EAGAIN)"
        )
    elif r.listen_overflows is None:
        lines.append("  listen-queue overflows: not counted (no TCP counters here)")
    else:
        lines.append(
            f"  listen-queue overflows during the run: {r.listen_overflows:,} "
            f"(TcpExtListenOverflows, every listener on this host; drops "
            f"{r.listen_drops if r.listen_drops is not None else '-'})"
        )
    if r.server_us_per_connection is not None:
        lines.append(
            f"  server CPU per connection: {r.server_us_per_connection:,.1f} us "
            f"until all echoed, {_fmt(r.server_us_per_lifetime)} us including "
            f"the close; server at {_fmt((r.server_share or 0) * 100, 0)}% of a "
            "core over the run" + (" (saturated)" if r.server_saturated else "")
        )
    lines.append(f"  driver at {r.driver_share:.0%} of a core")
    lines += [f"  {e}" for e in r.error_lines]
    return "\n".join(lines)


def storm_table(rows: Sequence[StormRow], baseline: str | None) -> str:
    """
    Lay storm rows out as a fixed-width table; the ratio column divides
    server CPU per connection by the baseline's (see L{ratios}).
    """
    head = [
        "workload",
        "server",
        "total s",
        "conn p50 ms",
        "conn p99 ms",
        "conn max ms",
        ">=1s",
        "overflows",
        "errors",
        "srv us/conn",
        "srv %",
    ]
    if baseline:
        head.append(f"vs {baseline}")
    lines = [head]
    notes = []
    found = ratios(rows, baseline, per_connection)
    for row, ratio in zip(rows, found, strict=True):
        r = row.result
        line = [
            row.workload,
            row.server,
            _fmt(r.seconds, 3),
            _fmt(r.connect_p50_ms, 3),
            _fmt(r.connect_p99_ms, 3),
            _fmt(r.connect_max_ms, 1),
            str(r.slow_connects),
            "-" if r.listen_overflows is None else str(r.listen_overflows),
            str(r.errors),
            _fmt(r.server_us_per_connection, 1),
            _share(r.server_share, r.server_saturated),
        ]
        if baseline:
            line.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append(line)
        notes += error_notes(f"{row.workload} {row.server}", r.error_lines, r.errors)
    return "\n".join(_layout(lines) + notes)


def plot(rows: Sequence[Row], path: str, title: str, stream: bool = False) -> None:
    """
    Draw the figures that matter for the run, one panel each, a bar per
    server and workload with its value written on it: echoes/s (MiB/s when
    streaming), the server's CPU per echo (per KiB) when it was measured,
    and p99 latency for ping-pong.  An axis is logarithmic only where the
    values span more than a factor of 30.

    @param rows: the results.
    @param path: the PNG to write.
    @param title: the figure's title (the machine and command), wrapped.
    @param stream: whether the run streamed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    workloads = list(dict.fromkeys(r.workload for r in rows))
    servers = list(dict.fromkeys(r.server for r in rows))
    by = {(r.workload, r.server): r.result for r in rows}
    unit = "KiB" if stream else "echo"
    panels: list[tuple[str, Callable[[RunResult], float | None], str]] = []
    if stream:
        panels.append(
            ("MiB/s echoed (higher is better)", lambda r: r.mib_per_s, ",.1f")
        )
    else:
        panels.append(("echoes/s (higher is better)", lambda r: r.echoes_per_s, ",.0f"))
    if any(r.result.server_us_per_echo is not None for r in rows):
        panels.append(
            (
                f"server CPU per {unit}, us (lower is better)",
                lambda r: r.server_us_per_echo,
                ",.2f",
            )
        )
    if not stream:
        panels.append(("p99 latency, ms (lower is better)", lambda r: r.p99_ms, ",.3f"))
    bars = len(workloads) * len(servers)
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(min(24, max(6.4, 0.5 * bars + 2)), 2.8 * len(panels) + 1),
        squeeze=False,
    )
    width = 0.8 / len(servers)
    for ax, (label, pick, fmt) in zip(axes[:, 0], panels, strict=True):
        shown: list[float] = []
        for i, server in enumerate(servers):
            values = []
            for w in workloads:
                result = by.get((w, server))
                value = pick(result) if result else None
                values.append(math.nan if value is None else value)
            xs = [x + i * width for x in range(len(workloads))]
            drawn = ax.bar(xs, values, width, label=server)
            ax.bar_label(
                drawn,
                labels=["" if math.isnan(v) else format(v, fmt) for v in values],
                fontsize=7,
                rotation=90 if bars > 8 else 0,
                padding=2,
            )
            shown += [v for v in values if not math.isnan(v) and v > 0]
        if shown and max(shown) / min(shown) > 30:
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,g}"))
        ax.margins(y=0.25)
        ax.set_xticks(
            [x + width * (len(servers) - 1) / 2 for x in range(len(workloads))]
        )
        ax.set_xticklabels(workloads)
        if len(workloads) == 1 and len(servers) == 1:
            ax.set_xlim(-1.5, 1.5)
            ax.set_xticklabels([f"{workloads[0]} {servers[0]}"])
        ax.set_title(label, fontsize=9)
    if len(servers) > 1:
        axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    wrapped = [
        piece for line in title.splitlines() for piece in textwrap.wrap(line, 90)
    ]
    fig.suptitle("\n".join(wrapped), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
