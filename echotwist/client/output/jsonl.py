"""
The prober's results as JSON lines (C{--json}): one object per probe, then
a last line C{{"summary": {...}}}, ready for a monitoring system to scrape.
Times are in milliseconds; a time not measured is C{null}.
"""

from __future__ import annotations

import json
from typing import Any

from echotwist.client.result import ProbeResult
from echotwist.client.stats import Spread, Summary

__all__ = ["result_json", "summary_json"]


def _ms(seconds: float | None) -> float | None:
    """
    @return: C{seconds} in milliseconds (microsecond precision), or L{None}.
    """
    return None if seconds is None else round(seconds * 1000, 3)


def result_json(result: ProbeResult) -> str:
    """
    @return: one probe's JSON line: C{seq}, C{bytes}, C{rtt_ms},
        C{connect_ms}, C{status} and more (C{handshake_ms}, C{reordered},
        C{address}, C{time}, C{detail}).
    """
    return json.dumps(
        {
            "seq": result.seq,
            "bytes": result.size,
            "rtt_ms": _ms(result.rtt),
            "connect_ms": _ms(result.connect),
            "status": result.status,
            "handshake_ms": _ms(result.handshake),
            "reordered": result.reordered,
            "address": result.address,
            "time": round(result.time, 6),
            "detail": result.detail,
        }
    )


def _spread(prefix: str, spread: Spread | None) -> dict[str, Any]:
    """
    @return: a L{Spread}'s fields in milliseconds, names prefixed.
    """
    names = ("min", "avg", "median", "max", "stddev", "p90", "p99", "jitter")
    return {
        f"{prefix}{name}_ms": None if spread is None else _ms(getattr(spread, name))
        for name in names
    }


def summary_json(summary: Summary, address: str = "") -> str:
    """
    @return: the last line: C{{"summary": {"sent", "received", "loss_pct",
        "min_ms", "avg_ms", "median_ms", "max_ms", "stddev_ms", "p90_ms",
        "p99_ms", "jitter_ms", ...}}}, with the counts of each kind and,
        where measured, C{connect_*_ms}.
    """
    fields: dict[str, Any] = {
        "address": address,
        "sent": summary.sent,
        "received": summary.received,
        "lost": summary.lost,
        "loss_pct": round(summary.loss_pct, 3),
        "corrupted": summary.corrupted,
        "duplicates": summary.duplicates,
        "late": summary.late,
        "reordered": summary.reordered,
        "in_flight": summary.in_flight,
        "exit_status": summary.exit_status,
        **_spread("", summary.rtt),
    }
    if summary.connect is not None:
        fields.update(_spread("connect_", summary.connect))
    if summary.handshake is not None:
        fields.update(_spread("handshake_", summary.handshake))
    return json.dumps({"summary": fields})
