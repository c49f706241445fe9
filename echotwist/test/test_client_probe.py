"""
Tests for the prober: L{echotwist.client.probe}, L{echotwist.client.stats},
L{echotwist.client.udp_probe}, L{echotwist.client.stream_probe},
L{echotwist.client.output}, L{echotwist.client.session}, with L{Clock},
L{MemoryReactorClock} and fake transports.
"""

from __future__ import annotations

import errno
import io
import json
import socket
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides

from echotwist.client.endpoints import tcp_to
from echotwist.client.exits import (
    EXIT_ALL_LOST,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_SOME_LOST,
)
from echotwist.client.marking import mark_socket, socket_of, tos_marker
from echotwist.client.output.format import format_result, format_summary
from echotwist.client.output.jsonl import result_json, summary_json
from echotwist.client.payload import PatternError, payloads
from echotwist.client.probe import Prober, Report
from echotwist.client.result import ProbeResult
from echotwist.client.session import OutputClosed, Session, combine
from echotwist.client.stats import percentile, spread, summarize
from echotwist.client.stream_probe import StreamPath
from echotwist.client.udp_probe import HEADER, UDPPath
from echotwist.test.support import (
    HalfClosingTransport,
    LoopbackResolver,
)

ADDRESS = "127.0.0.1:9000"


def result(
    seq: int, status: Any = "ok", rtt: float | None = 0.001, **kw: Any
) -> ProbeResult:
    """
    @return: a result for the statistics.
    """
    return ProbeResult(seq, status, 64, ADDRESS, 0.0, rtt, **kw)


class StatsTests(SynchronousTestCase):
    """
    Tests for the statistics.
    """

    def test_percentile(self) -> None:
        """
        Percentiles interpolate between the closest ranks.
        """
        values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
        self.assertAlmostEqual(percentile(values, 90), 9.1)
        self.assertAlmostEqual(percentile(values, 99), 9.91)
        self.assertEqual(percentile([3.0], 99), 3.0)

    def test_spread(self) -> None:
        """
        min, avg, median, max, population stddev, and jitter as the mean
        absolute difference of consecutive values in probe order.
        """
        s = spread([1.0, 3.0, 2.0, 6.0])
        assert s is not None
        self.assertEqual((s.min, s.avg, s.median, s.max), (1.0, 3.0, 2.5, 6.0))
        self.assertAlmostEqual(s.stddev, (14 / 4) ** 0.5)
        self.assertAlmostEqual(s.jitter, (2 + 1 + 4) / 3)
        self.assertIsNone(spread([]))

    def test_summarize(self) -> None:
        """
        Counts by kind; late and duplicate replies do not settle probes;
        only exact echoes give round trips.
        """
        results = [
            result(1, rtt=0.001),
            result(2, "lost", None),
            result(2, "late", 3.0),
            result(3, "corrupt", None),
            result(4, rtt=0.003, reordered=True),
            result(4, "duplicate", 0.004),
            result(5, "refused", None),
            result(0, "corrupt", None),
        ]
        summary = summarize(results, in_flight=1)
        self.assertEqual(
            (
                summary.sent,
                summary.received,
                summary.lost,
                summary.corrupted,
                summary.duplicates,
                summary.late,
                summary.reordered,
                summary.in_flight,
            ),
            (5, 2, 2, 2, 1, 1, 1, 1),
        )
        self.assertEqual(summary.loss_pct, 40.0)
        assert summary.rtt is not None
        self.assertEqual((summary.rtt.min, summary.rtt.max), (0.001, 0.003))

    def test_exitStatus(self) -> None:
        """
        0 all exact; corrupted above all; all lost; some lost.
        """
        self.assertEqual(summarize([result(1), result(2)]).exit_status, EXIT_OK)
        self.assertEqual(
            summarize([result(1), result(2, "lost")]).exit_status, EXIT_SOME_LOST
        )
        self.assertEqual(
            summarize([result(1, "lost"), result(2, "error")]).exit_status,
            EXIT_ALL_LOST,
        )
        self.assertEqual(
            summarize([result(1, "corrupt"), result(2, "lost")]).exit_status,
            EXIT_MISMATCH,
        )
        self.assertEqual(summarize([]).exit_status, EXIT_ALL_LOST)

    def test_combine(self) -> None:
        """
        Over several addresses: corrupted if any, all lost only if all.
        """
        self.assertEqual(combine([EXIT_OK, EXIT_OK]), EXIT_OK)
        self.assertEqual(combine([EXIT_OK, EXIT_ALL_LOST]), EXIT_SOME_LOST)
        self.assertEqual(combine([EXIT_ALL_LOST, EXIT_ALL_LOST]), EXIT_ALL_LOST)
        self.assertEqual(combine([EXIT_MISMATCH, EXIT_OK]), EXIT_MISMATCH)


class PayloadTests(SynchronousTestCase):
    """
    Tests for the patterns.
    """

    def test_patterns(self) -> None:
        """
        zeros, ascii and hex repeat to the size; random differs per probe.
        """
        self.assertEqual(payloads("zeros", 3)(1), b"\0\0\0")
        self.assertEqual(payloads("deadbeef", 6)(1), bytes.fromhex("deadbeefdead"))
        self.assertEqual(payloads("ascii", 4)(1), b"abcd")
        random = payloads("random", 32)
        self.assertEqual(len(random(1)), 32)
        self.assertNotEqual(random(1), random(2))
        self.assertRaises(PatternError, payloads, "xyz", 1)


class FakePath:
    """
    A path that records what was sent; the test reports results.
    """

    address = ADDRESS

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.report: Report | None = None
        self.stopped = False

    def send(self, seq: int, payload: bytes, report: Report) -> None:
        self.sent.append((seq, payload))
        self.report = report

    def stop(self) -> Deferred[None]:
        self.stopped = True
        return succeed(None)

    def answer(self, seq: int, status: Any = "ok") -> None:
        assert self.report is not None
        self.report(result(seq, status))


class ProberTests(SynchronousTestCase):
    """
    Tests for L{Prober}'s schedule: count, interval, deadline, Ctrl-C.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = FakePath()

    def prober(self, **kw: Any) -> Prober:
        return Prober(self.clock, self.path, lambda seq: bytes([seq]), **kw)

    def test_countAndInterval(self) -> None:
        """
        C{count} probes, C{interval} apart; the run ends once the last is
        settled.
        """
        d = self.prober(count=3, interval=0.5).run()
        self.assertEqual(self.path.sent, [(1, b"\x01")])
        self.path.answer(1)
        self.clock.advance(0.5)
        self.clock.advance(0.5)
        self.assertEqual([seq for seq, _ in self.path.sent], [1, 2, 3])
        self.path.answer(3)
        self.assertNoResult(d)
        self.path.answer(2)
        summary = self.successResultOf(d)
        self.assertEqual((summary.sent, summary.received), (3, 3))
        self.assertTrue(self.path.stopped)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_interruptLeavesInFlightOut(self) -> None:
        """
        L{Prober.stop} (Ctrl-C) ends an endless run at once with the
        summary; the probe still awaited is not counted.
        """
        seen: list[ProbeResult] = []
        prober = self.prober(count=0, interval=1.0, on_result=seen.append)
        d = prober.run()
        self.path.answer(1)
        self.clock.advance(1)
        prober.stop()
        summary = self.successResultOf(d)
        self.assertEqual((summary.sent, summary.in_flight), (1, 1))
        self.assertEqual(summary.exit_status, EXIT_OK)
        self.assertEqual([r.seq for r in seen], [1])
        self.clock.advance(10)
        self.assertEqual(len(self.path.sent), 2)

    def test_deadline(self) -> None:
        """
        The deadline ends the run however many probes are left.
        """
        d = self.prober(count=10, interval=1.0, deadline=2.5).run()
        for seq in (1, 2, 3):
            self.path.answer(seq)
            self.clock.advance(1) if seq < 3 else None
        self.clock.advance(0.5)
        summary = self.successResultOf(d)
        self.assertEqual(summary.sent, 3)

    def test_duplicateFinalIgnored(self) -> None:
        """
        A second final result for one probe is not counted twice.
        """
        d = self.prober(count=1).run()
        self.path.answer(1)
        self.path.answer(1)
        self.assertEqual(self.successResultOf(d).sent, 1)

    def test_results(self) -> None:
        """
        L{Prober.results} yields each result, then L{Prober.summary} is set.
        """
        prober = self.prober(count=2, interval=1.0)
        got: list[int] = []

        async def iterate() -> None:
            async for r in prober.results():
                got.append(r.seq)

        d = Deferred.fromCoroutine(iterate())
        self.path.answer(1)
        self.clock.advance(1)
        self.path.answer(2)
        self.successResultOf(d)
        self.assertEqual(got, [1, 2])
        assert prober.summary is not None
        self.assertEqual(prober.summary.received, 2)


class FakeUDPPort:
    """
    A connected UDP port: records what is written.
    """

    def __init__(self, protocol: Any, reactor: UDPReactor) -> None:
        self.protocol = protocol
        self.reactor = reactor
        self.written: list[bytes] = []
        self.connected: tuple[str, int] | None = None
        self.listening = True
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def connect(self, host: str, port: int) -> None:
        self.connected = (host, port)

    def write(self, datagram: bytes) -> None:
        if self.reactor.write_error is not None:
            raise self.reactor.write_error
        self.written.append(datagram)

    def getHandle(self) -> socket.socket:
        return self.sock

    def stopListening(self) -> None:
        self.listening = False
        self.sock.close()


class UDPReactor(Clock):
    """
    A clock that opens fake connected UDP ports.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakeUDPPort] = []
        self.write_error: OSError | None = None
        self.nameResolver = LoopbackResolver()

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUDPPort:
        fake = FakeUDPPort(protocol, self)
        self.ports.append(fake)
        protocol.makeConnection(fake)
        return fake


class UDPPathTests(SynchronousTestCase):
    """
    Tests for L{UDPPath}: every reply is matched to its probe by its header.
    """

    def setUp(self) -> None:
        self.reactor = UDPReactor()
        self.results: list[ProbeResult] = []
        self.path = UDPPath(self.reactor, "127.0.0.1", 9007, timeout=2.0)

    def send(self, seq: int, size: int = 32) -> bytes:
        self.path.send(seq, bytes(size), self.results.append)
        return self.reactor.ports[-1].written[-1]

    def reply(self, datagram: bytes) -> None:
        self.reactor.ports[-1].protocol.datagramReceived(datagram, ("127.0.0.1", 9007))

    def statuses(self) -> list[tuple[int, str]]:
        return [(r.seq, r.status) for r in self.results]

    def test_headerAndOk(self) -> None:
        """
        A probe carries its sequence number in its header, over a socket
        connected to the server; its exact echo is ok, with its round trip.
        """
        datagram = self.send(1)
        self.assertEqual(len(datagram), 32)
        self.assertEqual(HEADER.unpack_from(datagram)[1], 1)
        self.assertEqual(self.reactor.ports[0].connected, ("127.0.0.1", 9007))
        self.reactor.advance(0.25)
        self.reply(datagram)
        [ok] = self.results
        self.assertEqual((ok.seq, ok.status, ok.rtt), (1, "ok", 0.25))

    def test_lostThenLate(self) -> None:
        """
        No reply within the timeout: lost; the reply after it: late.
        """
        datagram = self.send(1)
        self.reactor.advance(2)
        self.reply(datagram)
        self.assertEqual(self.statuses(), [(1, "lost"), (1, "late")])
        self.assertEqual(self.results[1].rtt, 2.0)

    def test_duplicate(self) -> None:
        """
        A second copy of a reply is a duplicate.
        """
        datagram = self.send(1)
        self.reply(datagram)
        self.reply(datagram)
        self.assertEqual(self.statuses(), [(1, "ok"), (1, "duplicate")])

    def test_reordered(self) -> None:
        """
        Several probes in flight; a reply after a later probe's is flagged
        reordered.
        """
        first = self.send(1)
        self.reactor.advance(0.1)
        second = self.send(2)
        self.reply(second)
        self.reply(first)
        self.assertEqual(self.statuses(), [(2, "ok"), (1, "ok")])
        self.assertEqual([r.reordered for r in self.results], [False, True])

    def test_corrupt(self) -> None:
        """
        A reply that differs from its probe is corrupt; one whose header
        matches no probe is corrupt for seq 0; a truncated one is corrupt.
        """
        datagram = self.send(1)
        self.reply(datagram[:-1] + b"\x01")
        other = self.send(2)
        self.reply(b"\xff" * len(other))
        third = self.send(3)
        self.reply(third[:-4])
        self.assertEqual(
            self.statuses(), [(1, "corrupt"), (0, "corrupt"), (3, "corrupt")]
        )
        self.assertEqual(self.results[0].detail, "differs at byte 31")
        self.assertEqual(self.results[2].detail, "28 bytes back of 32 sent")

    def test_refusedAtOnce(self) -> None:
        """
        An ICMP port unreachable (C{connectionRefused}) settles the latest
        probe at once, not after the timeout.
        """
        self.send(1)
        self.reactor.ports[0].protocol.connectionRefused()
        self.assertEqual(self.statuses(), [(1, "refused")])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_refusedPortLost(self) -> None:
        """
        A port the reactor stops for its pending C{ECONNREFUSED} reports
        the refusal too, and the next probe opens a new port.
        """
        self.send(1)
        protocol = self.reactor.ports[0].protocol
        self.path.port_lost(protocol, errno.ECONNREFUSED)
        self.assertEqual(self.statuses(), [(1, "refused")])
        self.send(2)
        self.assertEqual(len(self.reactor.ports), 2)

    def test_spread(self) -> None:
        """
        With spread, each probe has its own port, closed once settled.
        """
        path = UDPPath(self.reactor, "127.0.0.1", 9007, timeout=2.0, spread=True)
        path.send(1, bytes(32), self.results.append)
        path.send(2, bytes(32), self.results.append)
        first, second = self.reactor.ports
        first.protocol.datagramReceived(first.written[0], ("127.0.0.1", 9007))
        self.assertFalse(first.listening)
        self.assertTrue(second.listening)
        second.protocol.connectionRefused()
        self.assertEqual(self.statuses(), [(1, "ok"), (2, "refused")])

    def test_sendError(self) -> None:
        """
        A datagram the OS won't send is an error for that probe.
        """
        self.reactor.write_error = OSError(errno.EACCES, "Permission denied")
        self.path.send(1, bytes(32), self.results.append)
        self.assertEqual(self.statuses(), [(1, "error")])
        self.assertIn("Permission denied", self.results[0].detail)

    def test_stop(self) -> None:
        """
        Stopping closes the port and cancels the timers; nothing more is
        reported.
        """
        datagram = self.send(1)
        self.successResultOf(self.path.stop())
        self.assertFalse(self.reactor.ports[0].listening)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reply(datagram)
        self.assertEqual(self.results, [])


class StreamPathTests(SynchronousTestCase):
    """
    Tests for L{StreamPath} over a memory reactor.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.results: list[ProbeResult] = []

    def path(self, reconnect: bool = False) -> StreamPath:
        endpoint = tcp_to(self.reactor, "127.0.0.1", 9000, 2.0)
        return StreamPath(self.reactor, endpoint, ADDRESS, 2.0, reconnect)

    def accept(self, tls: bool = False) -> tuple[Any, HalfClosingTransport]:
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 9000))
        assert protocol is not None
        transport = HalfClosingTransport()
        if tls:
            alsoProvides(transport, ISSLTransport)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport

    def statuses(self) -> list[tuple[int, str]]:
        return [(r.seq, r.status) for r in self.results]

    def test_oneConnectionPipelined(self) -> None:
        """
        Probes share one connection, may be in flight together, and their
        echoes are matched in order however they are split; the first
        carries the connect time.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        self.reactor.advance(0.01)
        protocol, transport = self.accept()
        self.reactor.advance(0.5)
        path.send(2, b"xyz", self.results.append)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(transport.value(), b"abcxyz")
        self.reactor.advance(0.002)
        protocol.dataReceived(b"abcx")
        protocol.dataReceived(b"yz")
        self.assertEqual(self.statuses(), [(1, "ok"), (2, "ok")])
        self.assertAlmostEqual(self.results[0].connect or 0, 0.01)
        self.assertAlmostEqual(self.results[1].rtt or 0, 0.002)
        self.assertIsNone(self.results[1].connect)

    def test_corruptDropsConnection(self) -> None:
        """
        A differing echo is corrupt; the connection is aborted, the probe
        behind it is an error, and the next probe connects again.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        protocol, transport = self.accept()
        path.send(2, b"def", self.results.append)
        protocol.dataReceived(b"abX")
        self.assertEqual(self.statuses(), [(1, "corrupt"), (2, "error")])
        self.assertIn("differs at byte 2", self.results[0].detail)
        self.assertFalse(transport.connected)
        path.send(3, b"ghi", self.results.append)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_timeoutIsLost(self) -> None:
        """
        No whole echo within the timeout: lost (saying how much came back),
        and the connection is dropped.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        protocol, transport = self.accept()
        protocol.dataReceived(b"a")
        self.reactor.advance(2)
        self.assertEqual(self.statuses(), [(1, "lost")])
        self.assertEqual(self.results[0].detail, "1 of 3 bytes back within 2 s")
        self.assertFalse(transport.connected)

    def test_droppedMidRun(self) -> None:
        """
        The server closing mid-echo cuts the probe short (corrupt); the run
        goes on over a new connection.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        protocol, transport = self.accept()
        protocol.dataReceived(b"ab")
        transport.serverClosed()
        self.assertEqual(self.statuses(), [(1, "corrupt")])
        self.assertIn("cut short", self.results[0].detail)
        path.send(2, b"def", self.results.append)
        protocol, transport = self.accept()
        protocol.dataReceived(b"def")
        self.assertEqual(self.statuses(), [(1, "corrupt"), (2, "ok")])

    def test_closedBetweenProbes(self) -> None:
        """
        The server closing the connection between probes is said (an error
        for no probe, not counted), and the next probe connects again.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        protocol, transport = self.accept()
        protocol.dataReceived(b"abc")
        transport.serverClosed()
        self.assertEqual(self.statuses(), [(1, "ok"), (0, "error")])
        self.assertEqual(
            format_result(self.results[1]),
            "error with 127.0.0.1:9000: no probe: connection closed by the server "
            "between probes; reconnecting",
        )
        path.send(2, b"def", self.results.append)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.assertEqual(summarize(self.results).sent, 1)

    def test_refused(self) -> None:
        """
        A refused connection settles the probe as refused.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        self.reactor.tcpClients[-1][2].clientConnectionFailed(
            self.reactor.connectors[-1], Failure(ConnectionRefusedError())
        )
        self.assertEqual(self.statuses(), [(1, "refused")])

    def test_reconnectTLSTimes(self) -> None:
        """
        With reconnect, each probe connects; over TLS the probe waits for
        the handshake, and reports connect, handshake and echo times apart;
        the connection is then closed cleanly.
        """
        path = self.path(reconnect=True)
        path.send(1, b"abc", self.results.append)
        self.reactor.advance(0.003)
        protocol, transport = self.accept(tls=True)
        self.assertEqual(transport.value(), b"")
        self.reactor.advance(0.005)
        protocol.handshakeCompleted()
        self.assertEqual(transport.value(), b"abc")
        self.reactor.advance(0.001)
        protocol.dataReceived(b"abc")
        [ok] = self.results
        self.assertAlmostEqual(ok.connect or 0, 0.003)
        self.assertAlmostEqual(ok.handshake or 0, 0.005)
        self.assertAlmostEqual(ok.rtt or 0, 0.001)
        self.assertTrue(transport.disconnecting)
        path.send(2, b"def", self.results.append)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_stopClosesCleanly(self) -> None:
        """
        Stopping half-closes the connection and fires once the server has
        closed too.
        """
        path = self.path()
        path.send(1, b"abc", self.results.append)
        protocol, transport = self.accept()
        protocol.dataReceived(b"abc")
        d = path.stop()
        self.assertTrue(transport.half_closed)
        self.assertNoResult(d)
        transport.serverClosed()
        self.successResultOf(d)


class OutputTests(SynchronousTestCase):
    """
    Tests for the lines and the JSON.
    """

    def test_lines(self) -> None:
        """
        Each status has its own clear line; -D prefixes the time.
        """
        ok = ProbeResult(3, "ok", 1024, ADDRESS, 12.5, 0.00035, connect=0.001)
        self.assertEqual(
            format_result(ok),
            "1024 bytes from 127.0.0.1:9000: seq=3 time=0.350 ms connect=1.000 ms",
        )
        self.assertEqual(
            format_result(ok, timestamps=True),
            "[12.500000] 1024 bytes from 127.0.0.1:9000: seq=3 time=0.350 ms "
            "connect=1.000 ms",
        )
        lines = {
            "lost": "no reply from 127.0.0.1:9000: seq=3: why",
            "corrupt": "corrupt reply from 127.0.0.1:9000: seq=3: why",
            "late": "late reply from 127.0.0.1:9000: seq=3: why",
            "duplicate": "duplicate reply from 127.0.0.1:9000: seq=3",
            "refused": "refused by 127.0.0.1:9000: seq=3: why",
            "error": "error with 127.0.0.1:9000: seq=3: why",
        }
        for status, line in lines.items():
            r = ProbeResult(3, status, 64, ADDRESS, 0.0, detail="why")  # type: ignore[arg-type]
            self.assertEqual(format_result(r), line)

    def test_summaryLines(self) -> None:
        """
        The summary names counts, loss and the round-trip spread in ms.
        """
        summary = summarize(
            [result(1, rtt=0.001), result(2, rtt=0.003), result(3, "lost")]
        )
        lines = format_summary(ADDRESS, summary)
        self.assertEqual(lines[0], "--- 127.0.0.1:9000 echo statistics ---")
        self.assertEqual(
            lines[1],
            "3 probes sent, 2 received, 33.3% lost, 0 corrupted, 0 duplicates",
        )
        self.assertEqual(
            lines[2], "rtt min/avg/median/max/mdev = 1.000/2.000/2.000/3.000/1.000 ms"
        )
        self.assertEqual(lines[3], "rtt p90/p99 = 2.800/2.980 ms, jitter = 2.000 ms")

    def test_json(self) -> None:
        """
        A JSON line per probe with the documented keys, and the summary.
        """
        r = ProbeResult(2, "ok", 64, ADDRESS, 1.0, 0.0005, connect=0.002)
        line = json.loads(result_json(r))
        self.assertEqual(
            {k: line[k] for k in ("seq", "bytes", "rtt_ms", "connect_ms", "status")},
            {"seq": 2, "bytes": 64, "rtt_ms": 0.5, "connect_ms": 2.0, "status": "ok"},
        )
        summary = json.loads(summary_json(summarize([result(1, rtt=0.002)])))
        self.assertEqual(
            set(summary["summary"])
            >= {
                "sent",
                "received",
                "loss_pct",
                "min_ms",
                "avg_ms",
                "median_ms",
                "max_ms",
                "stddev_ms",
                "p90_ms",
                "p99_ms",
                "jitter_ms",
            },
            True,
        )
        self.assertEqual(summary["summary"]["min_ms"], 2.0)


class ClosedOutput(io.BytesIO):
    """
    Standard output after the reader went away (C{| head}).
    """

    def write(self, data: Any) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


class SessionTests(SynchronousTestCase):
    """
    Tests for L{Session}: Ctrl-C and a closed standard output.
    """

    def args(self, **kw: Any) -> Any:
        import argparse

        values = dict(
            message=None,
            size=8,
            pattern="zeros",
            udp=True,
            spread=False,
            connect=None,
            host="127.0.0.1",
            port=9007,
            ipv4=False,
            ipv6=False,
            all_addresses=False,
            bind=None,
            tos=None,
            timeout=2.0,
            count=0,
            interval=1.0,
            deadline=None,
            json=False,
            timestamps=False,
            reconnect=False,
        )
        values.update(kw)
        return argparse.Namespace(**values)

    def test_interruptWritesSummary(self) -> None:
        """
        Ctrl-C ends an endless run; the summary is still written and the
        status is that of the probes settled.
        """
        reactor = UDPReactor()
        out = io.BytesIO()
        session = Session(reactor, self.args(size=20), io.BytesIO(), out)
        d = Deferred.fromCoroutine(session.run())
        port = reactor.ports[0]
        port.protocol.datagramReceived(port.written[0], ("127.0.0.1", 9007))
        reactor.advance(1)
        session.interrupt()
        self.assertEqual(self.successResultOf(d), EXIT_OK)
        text = out.getvalue().decode()
        self.assertIn("20 bytes from 127.0.0.1:9007: seq=1", text)
        self.assertIn("1 probes sent, 1 received, 0% lost", text)
        self.assertIn("(1 in flight when stopped, not counted)", text)

    def test_outputClosed(self) -> None:
        """
        A closed standard output (EPIPE) stops the run at once, quietly: no
        more probes, no flood of errors.
        """
        reactor = UDPReactor()
        session = Session(reactor, self.args(size=20), io.BytesIO(), ClosedOutput())
        d = Deferred.fromCoroutine(session.run())
        self.failureResultOf(d, OutputClosed)
        reactor.advance(10)
        self.assertLessEqual(sum(len(p.written) for p in reactor.ports), 1)
        self.assertEqual(reactor.getDelayedCalls(), [])


class MarkingTests(SynchronousTestCase):
    """
    Tests for C{--tos}/C{--dscp}.
    """

    def test_markSocket(self) -> None:
        """
        The TOS byte is set on an IPv4 socket.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            mark_socket(sock, 0xB8)
            self.assertEqual(sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), 0xB8)

    def test_throughWrapper(self) -> None:
        """
        The socket is found under a wrapping transport (TLS over TCP), and
        marked.
        """

        class Inner:
            def __init__(self, sock: socket.socket) -> None:
                self.sock = sock

            def getHandle(self) -> socket.socket:
                return self.sock

        class Wrapper:
            def __init__(self, inner: Inner) -> None:
                self.transport = inner

            def getHandle(self) -> object:
                return object()

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            wrapper = Wrapper(Inner(sock))
            self.assertIs(socket_of(wrapper), sock)
            tos_marker(0x20)(wrapper)
            self.assertEqual(sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS), 0x20)
