"""
Tests for L{echotwist.server.metrics}.
"""

from __future__ import annotations

import threading

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import (
    Snapshot,
)
from echotwist.server.metrics import Sources, metrics_registry, metrics_site


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
