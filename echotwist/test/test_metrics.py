"""
Tests for L{echotwist.server.metrics}.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any, NoReturn

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import (
    Snapshot,
)
from echotwist.server.metrics import (
    DEADLINE,
    MAX_CONNECTIONS,
    MAX_REQUEST_HEAD,
    REFUSED_BODY_RESPONSE,
    Guard,
    Sources,
    metrics_registry,
    metrics_site,
)


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
                "echotwist_proxy_rejected_connections": (
                    "counter",
                    {"1": 0.0, "2": 0.0},
                ),
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


def _guarded(clock: Clock | None = None, **kwargs: Any) -> Guard:
    """
    @return: a L{Guard} round a metrics site with no samples.
    """
    return Guard(metrics_site(lambda: {}), clock or Clock(), **kwargs)


def _connect(guard: Guard) -> tuple[IProtocol, StringTransport]:
    """
    @return: a guarded metrics connection on a L{StringTransport}.
    """
    protocol = guard.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    assert protocol is not None
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class RequestLimitTests(SynchronousTestCase):
    """
    Tests for what a metrics request may make the server read and keep:
    L{MetricsRequest}, L{MetricsChannel}, L{MetricsSite}.
    """

    def setUp(self) -> None:
        """
        Fail any test in which twisted.web makes a temporary file.
        """

        def no_temporary_file(*args: object, **kwargs: object) -> NoReturn:
            raise AssertionError("a request body was spooled to a temporary file")

        self.patch(tempfile, "TemporaryFile", no_temporary_file)

    def post(self, head: bytes, body_chunk: bytes) -> tuple[int, bytes, bool]:
        """
        Send C{head}, then up to 200 MiB of C{body_chunk}s in 64 KiB reads,
        as long as the server keeps reading (a real transport stops
        reading once the server closes).

        @return: the body bytes the server was given, its response, and
            whether it closed the connection.
        """
        protocol, transport = _connect(_guarded())
        protocol.dataReceived(head)
        given = 0
        while not transport.disconnecting and given < 200 * 2**20:
            protocol.dataReceived(body_chunk)
            given += len(body_chunk)
        return given, transport.value(), transport.disconnecting

    def test_bigBodyRefused(self) -> None:
        """
        A C{POST} announcing a 200 MiB body is answered C{413} and closed
        as soon as its headers are read: the server is given at most the
        one read that came with them, and keeps none of it.
        """
        given, response, closed = self.post(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n",
            b"x" * 65536,
        )
        self.assertEqual(given, 0)
        self.assertTrue(closed)
        self.assertEqual(response, REFUSED_BODY_RESPONSE)

    def test_bodyInTheSameRead(self) -> None:
        """
        A body that came in the same read as the headers is dropped, and the
        request is never served.
        """
        protocol, transport = _connect(_guarded())
        with capturedLogs() as events:
            protocol.dataReceived(
                b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            )
        self.assertEqual(transport.value(), REFUSED_BODY_RESPONSE)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(events, [])

    def test_chunkedRefused(self) -> None:
        """
        A chunked body is refused the same way, even one that ends in the
        same read, and C{Expect: 100-continue} gets no C{100}.
        """
        given, response, closed = self.post(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            b"10000\r\n" + b"x" * 65536 + b"\r\n",
        )
        self.assertEqual((given, response, closed), (0, REFUSED_BODY_RESPONSE, True))
        protocol, transport = _connect(_guarded())
        protocol.dataReceived(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
        self.assertEqual(transport.value(), REFUSED_BODY_RESPONSE)

    def test_getOnly(self) -> None:
        """
        A C{POST} without a body is answered C{405}, a method twisted.web
        does not know C{501}, and the connection closed.
        """
        for method, status in [(b"POST", b"405"), (b"DELETE", b"501")]:
            protocol, transport = _connect(_guarded())
            protocol.dataReceived(
                method + b" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            )
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 " + status))
            self.assertTrue(transport.disconnecting)

    def test_oneRequestPerConnection(self) -> None:
        """
        A scrape is answered with C{Connection: close}, and closed: a second
        request on it is not read.
        """
        protocol, transport = _connect(_guarded())
        with capturedLogs() as events:
            protocol.dataReceived(
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            )
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "))
        self.assertIn(b"\r\nConnection: close\r\n", response)
        self.assertEqual(response.count(b"HTTP/1.1 "), 1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(events, [], "no log line per scrape")

    def test_headLimited(self) -> None:
        """
        A request line and headers over L{MAX_REQUEST_HEAD} bytes are
        refused and the connection closed, however the client goes on.
        """
        protocol, transport = _connect(_guarded())
        protocol.dataReceived(b"GET /metrics HTTP/1.1\r\n")
        given = 0
        while not transport.disconnecting and given < 2**20:
            protocol.dataReceived(b"X-Pad: " + b"y" * 100 + b"\r\n")
            given += 109
        self.assertLessEqual(given, MAX_REQUEST_HEAD + 109)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 4"))


class GuardTests(SynchronousTestCase):
    """
    Tests for L{Guard}: how many metrics connections, for how long, how
    much they may send.
    """

    def test_deadline(self) -> None:
        """
        A connection is aborted L{DEADLINE} seconds after it was made,
        however it trickles: bytes received do not restart the time.
        """
        clock = Clock()
        protocol, transport = _connect(_guarded(clock))
        for _ in range(int(DEADLINE) - 1):
            clock.advance(1)
            protocol.dataReceived(b"G")
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_maxRead(self) -> None:
        """
        A connection that sends more than C{max_read} bytes without being
        closed is aborted.
        """

        class Swallow(Protocol):
            pass

        guard = Guard(Factory.forProtocol(Swallow), Clock(), max_read=10)
        protocol, transport = _connect(guard)
        protocol.dataReceived(b"x" * 10)
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"x")
        self.assertTrue(transport.disconnected)

    def test_limit(self) -> None:
        """
        Past C{limit} open connections, new ones are closed at once; that is
        logged once, and counted once a connection ends.
        """
        guard = _guarded(limit=MAX_CONNECTIONS)
        self.assertEqual(MAX_CONNECTIONS, 16)
        address = IPv4Address("TCP", "127.0.0.1", 1)
        with capturedLogs() as events:
            held = [_connect(guard)[0] for _ in range(MAX_CONNECTIONS)]
            refused = [guard.buildProtocol(address) for _ in range(3)]
            self.assertEqual(refused, [None, None, None])
            self.assertEqual(len(events), 1)
            held[0].connectionLost(Failure(ConnectionDone()))
            self.assertIsNotNone(guard.buildProtocol(address))
        self.assertEqual(guard.refused_total, 3)
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "Metrics connection limit (16) reached: closing new metrics "
                "connections until one ends",
                "Below the metrics connection limit again; 3 metrics "
                "connections were closed while it was reached",
            ],
        )

    def test_logPrefix(self) -> None:
        """
        The port names the site, as before the guard.
        """
        self.assertEqual(_guarded().logPrefix(), "MetricsSite")
