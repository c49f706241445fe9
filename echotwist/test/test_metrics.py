"""
Tests for L{echotwist.server.counts} and L{echotwist.server.metrics}.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import (
    Snapshot,
    local_snapshots,
    merged_snapshots,
    take_snapshot,
)
from echotwist.server.metrics import Sources, metrics_registry, metrics_site
from echotwist.server.protocol import Echo, EchoFactory, RefusedEcho


@dataclass
class FakeDatagramEcho:
    """
    A stand-in for a UDP echo protocol: just its two counters.
    """

    datagrams_echoed: int
    datagrams_dropped: int


def connect(factory: EchoFactory) -> Echo:
    """
    @return: a protocol from C{factory}, connected to a L{StringTransport}.
    """
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    protocol.makeConnection(StringTransport())
    return protocol


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
        first = connect(factory)
        first.dataReceived(b"hello")
        connect(factory).dataReceived(b"abc")
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
        connect(factory)
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


class EchoCollectorTests(SynchronousTestCase):
    """
    Tests for L{echotwist.server.metrics.EchoCollector}, read back as Prometheus
    text.
    """

    def scrape(self, snapshots: dict[str, Snapshot]) -> dict[str, object]:
        """
        @return: metric family name -> (type, {worker label: value}).
        """
        text = generate_latest(metrics_registry(lambda: snapshots)).decode()
        return {
            family.name: (
                family.type,
                {s.labels["worker"]: s.value for s in family.samples},
            )
            for family in text_string_to_metric_families(text)
        }

    def test_per_worker(self) -> None:
        """
        Each metric has one sample per worker, labelled with its number;
        open connections is a gauge and the rest are counters.
        """
        scraped = self.scrape(
            {"1": Snapshot(1, 2, 3, 4, 5, 6), "2": Snapshot(10, 20, 30, 40, 50, 60)}
        )
        self.assertEqual(
            scraped,
            {
                "echotwist_open_connections": ("gauge", {"1": 1.0, "2": 10.0}),
                "echotwist_connections": ("counter", {"1": 2.0, "2": 20.0}),
                "echotwist_refused_connections": ("counter", {"1": 3.0, "2": 30.0}),
                "echotwist_bytes_echoed": ("counter", {"1": 4.0, "2": 40.0}),
                "echotwist_datagrams_echoed": ("counter", {"1": 5.0, "2": 50.0}),
                "echotwist_datagrams_dropped": ("counter", {"1": 6.0, "2": 60.0}),
            },
        )

    def test_read_at_scrape(self) -> None:
        """
        The snapshots are asked for at each scrape, not when the registry is
        made.
        """
        calls: list[int] = []

        def sources() -> dict[str, Snapshot]:
            calls.append(1)
            return {"0": Snapshot(bytes_echoed=len(calls))}

        registry = metrics_registry(sources)
        self.assertEqual(calls, [])
        generate_latest(registry)
        text = generate_latest(registry).decode()
        self.assertIn('echotwist_bytes_echoed_total{worker="0"} 2.0', text)


class MetricsSiteTests(SynchronousTestCase):
    """
    Tests for L{metrics_site}: C{/metrics} over HTTP.
    """

    def get(self, path: bytes, sources: Sources) -> bytes:
        """
        @return: the whole HTTP response to C{GET path}, as written before
            the request returns: rendered in this thread, no thread pool.
        """
        channel = metrics_site(sources).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 1)
        )
        assert channel is not None
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        response: bytes = transport.value()
        return response

    def test_metrics(self) -> None:
        """
        C{/metrics} answers at once with Prometheus text, of
        C{CONTENT_TYPE_LATEST}, from snapshots taken in the calling thread.
        """
        threads: list[threading.Thread] = []

        def sources() -> dict[str, Snapshot]:
            threads.append(threading.current_thread())
            return {"0": Snapshot(bytes_echoed=7)}

        response = self.get(b"/metrics", sources)
        head, _, body = response.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "))
        self.assertIn(b"Content-Type: " + CONTENT_TYPE_LATEST.encode(), head)
        self.assertIn(b'echotwist_bytes_echoed_total{worker="0"} 7.0', body)
        self.assertEqual(threads, [threading.current_thread()])

    def test_elsewhere(self) -> None:
        """
        Nothing but C{/metrics} is served.
        """
        response = self.get(b"/", lambda: {})
        self.assertTrue(response.startswith(b"HTTP/1.1 404 "))
