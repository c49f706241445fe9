"""
The counts one echotwist process reports, as plain data.

A snapshot is what a worker sends its parent and what the metrics endpoint
turns into Prometheus samples, so it must survive a trip through JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Protocol

from echotwist.server.protocol import EchoFactory


class DatagramCounts(Protocol):
    """
    What a UDP echo protocol exposes to be counted.
    """

    datagrams_echoed: int
    datagrams_dropped: int


@dataclass(frozen=True)
class Snapshot:
    """
    The counters of one process at one moment.

    @ivar open_connections: TCP connections open now.
    @ivar connections_total: TCP connections accepted since start.
    @ivar refused_total: TCP connections refused over the limit.
    @ivar bytes_echoed: bytes echoed on TCP.
    @ivar datagrams_echoed: UDP datagrams echoed.
    @ivar datagrams_dropped: UDP datagrams not echoed.
    @ivar closed_at_shutdown: TCP connections aborted at the shutdown
        timeout (a worker's final report says; 0 until then).
    @ivar proxy_rejected_total: connections to PROXY echo ports
        (C{haproxy:}) closed for their header or their peer.
    """

    open_connections: int = 0
    connections_total: int = 0
    refused_total: int = 0
    bytes_echoed: int = 0
    datagrams_echoed: int = 0
    datagrams_dropped: int = 0
    closed_at_shutdown: int = 0
    proxy_rejected_total: int = 0

    def __add__(self, other: Snapshot) -> Snapshot:
        """
        @param other: another process's counts.
        @return: the sum of both, field by field.
        """
        return Snapshot(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in fields(self)
            }
        )

    def to_json(self) -> str:
        """
        @return: the snapshot as one line of JSON (no newline).
        """
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes) -> Snapshot:
        """
        @param line: what L{to_json} wrote.
        @return: the snapshot it describes.
        @raise ValueError: if C{line} is not such a snapshot.
        """
        data = json.loads(line)
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            raise ValueError(f"not a snapshot: {line!r}")
        if not all(type(v) is int for v in data.values()):
            raise ValueError(f"not a snapshot: {line!r}")
        return cls(**data)


def take_snapshot(
    factory: EchoFactory, udp_protocols: Iterable[DatagramCounts] = ()
) -> Snapshot:
    """
    Read this process's counters.

    @param factory: the process's TCP L{EchoFactory}.
    @param udp_protocols: its UDP echo protocols, if any.
    @return: their counts now.
    """
    udp = list(udp_protocols)
    return Snapshot(
        open_connections=len(factory.open_connections),
        connections_total=factory.connections_total,
        refused_total=factory.refused_total,
        bytes_echoed=factory.bytes_echoed,
        datagrams_echoed=sum(p.datagrams_echoed for p in udp),
        datagrams_dropped=sum(p.datagrams_dropped for p in udp),
        proxy_rejected_total=factory.proxy_rejected_total,
    )


def local_snapshots(
    factory: EchoFactory, udp_protocols: Iterable[DatagramCounts] = ()
) -> dict[str, Snapshot]:
    """
    The snapshots of a single process, for L{echotwist.server.metrics}.

    @param factory: as for L{take_snapshot}.
    @param udp_protocols: as for L{take_snapshot}.
    @return: this process's snapshot, as worker C{0}.
    """
    return {"0": take_snapshot(factory, udp_protocols)}


def merged_snapshots(
    *sources: Callable[[], Mapping[str, Snapshot]],
) -> dict[str, Snapshot]:
    """
    The snapshots of several sources, e.g. the parent (worker C{0}, which
    serves UDP but accepts no TCP connection) and its workers.

    @param sources: each returns snapshots by worker label.
    @return: all of them, by worker label.
    """
    merged: dict[str, Snapshot] = {}
    for source in sources:
        merged.update(source())
    return merged
