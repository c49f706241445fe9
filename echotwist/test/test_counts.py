"""
Tests for L{echotwist.server.counts}.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import (
    Snapshot,
    local_snapshots,
    merged_snapshots,
    take_snapshot,
)
from echotwist.server.protocol import EchoFactory, RefusedEcho
from echotwist.test.support import connect


@dataclass
class FakeDatagramEcho:
    """
    A stand-in for a UDP echo protocol: just its two counters.
    """

    datagrams_echoed: int
    datagrams_dropped: int


class SnapshotTests(SynchronousTestCase):
    """
    Tests for L{Snapshot} and L{take_snapshot}.
    """

    def test_counts(self) -> None:
        """
        A snapshot has the factory's TCP counts and the sum of the UDP
        protocols' counts.
        """
        factory = EchoFactory(Clock(), max_connections=2)
        first = connect(factory)[0]
        first.dataReceived(b"hello")
        connect(factory)[0].dataReceived(b"abc")
        refused = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2))
        self.assertIsInstance(refused, RefusedEcho)
        first.connectionLost()
        udp = [FakeDatagramEcho(3, 1), FakeDatagramEcho(4, 2)]
        self.assertEqual(
            take_snapshot(factory, udp),
            Snapshot(
                open_connections=1,
                connections_total=2,
                refused_total=1,
                bytes_echoed=8,
                datagrams_echoed=7,
                datagrams_dropped=3,
            ),
        )

    def test_no_udp(self) -> None:
        """
        Without UDP protocols the datagram counts are zero.
        """
        snapshot = take_snapshot(EchoFactory(Clock()))
        self.assertEqual(
            (snapshot.datagrams_echoed, snapshot.datagrams_dropped), (0, 0)
        )

    def test_local(self) -> None:
        """
        L{local_snapshots} labels a single process's snapshot worker C{0}.
        """
        factory = EchoFactory(Clock())
        connect(factory)[0]
        self.assertEqual(local_snapshots(factory), {"0": Snapshot(1, 1, 0, 0, 0, 0)})

    def test_merged(self) -> None:
        """
        L{merged_snapshots} gathers the snapshots of several sources.
        """
        self.assertEqual(
            merged_snapshots(
                lambda: {"0": Snapshot(datagrams_echoed=1)},
                lambda: {"1": Snapshot(1), "2": Snapshot(2)},
            ),
            {"0": Snapshot(datagrams_echoed=1), "1": Snapshot(1), "2": Snapshot(2)},
        )

    def test_json_round_trip(self) -> None:
        """
        L{Snapshot.from_json} reads back what L{Snapshot.to_json} wrote, from
        text or bytes.
        """
        snapshot = Snapshot(1, 2, 3, 4, 5, 6)
        self.assertEqual(Snapshot.from_json(snapshot.to_json()), snapshot)
        self.assertEqual(Snapshot.from_json(snapshot.to_json().encode()), snapshot)

    def test_json_rejects(self) -> None:
        """
        Anything but a complete snapshot of integers is a L{ValueError}.
        """
        for line in [
            b"",
            b"[]",
            b'{"open_connections": 1}',
            Snapshot().to_json().replace("0", '"0"', 1).encode(),
            Snapshot().to_json().replace("}", ',"extra":1}').encode(),
        ]:
            self.assertRaises(ValueError, Snapshot.from_json, line)
