"""
The prober's results as lines for people, as ping writes them.
"""

from __future__ import annotations

from echotwist.client.result import ProbeResult
from echotwist.client.stats import Spread, Summary

__all__ = ["format_result", "format_start", "format_summary", "ms"]


def ms(seconds: float) -> str:
    """
    @return: C{seconds} in milliseconds, three decimals.
    """
    return f"{seconds * 1000:.3f}"


def format_start(
    address: str, kind: str, size: int, pattern: str, interval: float
) -> str:
    """
    @return: the line that opens a run.
    """
    return f"PROBE {address} ({kind}): {size} bytes of {pattern} every {interval:g} s"


def format_result(result: ProbeResult, timestamps: bool = False) -> str:
    """
    @param result: one probe's result.
    @param timestamps: prefix the time (seconds since the epoch), as
        C{ping -D} does.
    @return: its line.
    """
    where = result.address
    seq = f"seq={result.seq}" if result.seq else "no probe"
    times = ""
    if result.rtt is not None:
        times += f" time={ms(result.rtt)} ms"
    if result.connect is not None:
        times += f" connect={ms(result.connect)} ms"
    if result.handshake is not None:
        times += f" handshake={ms(result.handshake)} ms"
    detail = f": {result.detail}" if result.detail else ""
    status = result.status
    if status == "ok":
        line = f"{result.size} bytes from {where}: {seq}{times}"
        if result.reordered:
            line += " (reordered)"
    elif status == "lost":
        line = f"no reply from {where}: {seq}{detail}"
    elif status == "corrupt":
        line = f"corrupt reply from {where}: {seq}{times}{detail}"
    elif status == "late":
        line = f"late reply from {where}: {seq}{times}{detail}"
    elif status == "duplicate":
        line = f"duplicate reply from {where}: {seq}{times}"
    elif status == "refused":
        line = f"refused by {where}: {seq}{detail}"
    else:
        line = f"error with {where}: {seq}{detail}"
    if timestamps:
        line = f"[{result.time:.6f}] {line}"
    return line


def _spread_lines(name: str, spread: Spread | None) -> list[str]:
    """
    @return: the lines for one L{Spread}.
    """
    if spread is None:
        return []
    main = "/".join(
        ms(v)
        for v in (spread.min, spread.avg, spread.median, spread.max, spread.stddev)
    )
    return [
        f"{name} min/avg/median/max/mdev = {main} ms",
        f"{name} p90/p99 = {ms(spread.p90)}/{ms(spread.p99)} ms, "
        f"jitter = {ms(spread.jitter)} ms",
    ]


def format_summary(address: str, summary: Summary) -> list[str]:
    """
    @return: the lines that close a run, as ping's statistics.
    """
    counts = (
        f"{summary.sent} probes sent, {summary.received} received, "
        f"{round(summary.loss_pct, 1):g}% lost, {summary.corrupted} corrupted, "
        f"{summary.duplicates} duplicates"
    )
    if summary.late:
        counts += f", {summary.late} late"
    if summary.reordered:
        counts += f", {summary.reordered} reordered"
    if summary.in_flight:
        counts += f" ({summary.in_flight} in flight when stopped, not counted)"
    return [
        f"--- {address} echo statistics ---",
        counts,
        *_spread_lines("rtt", summary.rtt),
        *_spread_lines("connect", summary.connect),
        *_spread_lines("handshake", summary.handshake),
    ]
