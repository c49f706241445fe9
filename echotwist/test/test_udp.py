"""
Tests for L{echotwist.server.udp}.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.udp import (
    DEFAULT_REPORT_INTERVAL,
    REFLECTOR_PORTS,
    REPEAT_LIMIT,
    REPEAT_MEMORY,
    REPEAT_WINDOW,
    EchoDatagramProtocol,
    RepeatFilter,
    TokenBucket,
    refused_source_port,
)

CLIENT = ("127.0.0.1", 40000)


class FakeDatagramTransport:
    """
    Record what a datagram protocol writes, or fail like a full socket.

    @ivar written: C{(datagram, addr)} pairs written.
    @ivar error: raised by L{write} if set.
    """

    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.error: OSError | None = None

    def write(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """
        Record C{datagram} for C{addr}, or raise L{error}.
        """
        if self.error is not None:
            raise self.error
        self.written.append((datagram, addr))


def make_protocol(
    clock: Clock, rate: float = 10.0, burst: int = 3, max_sources: int = 100
) -> tuple[EchoDatagramProtocol, FakeDatagramTransport]:
    """
    @return: a started L{EchoDatagramProtocol} on a fake transport.
    """
    protocol = EchoDatagramProtocol(
        clock, rate=rate, burst=burst, max_sources=max_sources, report_interval=10.0
    )
    transport = FakeDatagramTransport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.startProtocol()
    return protocol, transport


class TokenBucketTests(SynchronousTestCase):
    """
    Tests for L{TokenBucket}.
    """

    def test_burstThenRate(self) -> None:
        """
        A full bucket gives C{burst} tokens at once, then one per
        C{1 / rate} seconds.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
        self.assertEqual([bucket.take(0.0) for _ in range(4)], [1, 1, 1, 0])
        self.assertFalse(bucket.take(0.4))
        self.assertTrue(bucket.take(0.5))
        self.assertFalse(bucket.take(0.5))

    def test_neverAboveBurst(self) -> None:
        """
        However long the bucket rests it holds no more than C{burst} tokens.
        """
        bucket = TokenBucket(rate=100.0, burst=2, now=0.0)
        self.assertTrue(bucket.full(1000.0))
        self.assertEqual([bucket.take(1000.0) for _ in range(3)], [1, 1, 0])


class RefusedSourcePortTests(SynchronousTestCase):
    """
    Tests for L{refused_source_port}.
    """

    def test_refused(self) -> None:
        """
        Port 0, the well-known services that answer back, every port below
        1024 and the known high-port reflectors are refused.
        """
        for port in [0, 7, 13, 17, 19, 37, 53, 123, 161, 1023, *REFLECTOR_PORTS]:
            self.assertTrue(refused_source_port(port), port)

    def test_ephemeral(self) -> None:
        """
        Ordinary client ports are answered.
        """
        for port in [1024, 32768, 40000, 60999, 65535]:
            self.assertFalse(refused_source_port(port), port)


class EchoDatagramProtocolTests(SynchronousTestCase):
    """
    Tests for L{EchoDatagramProtocol}.
    """

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def warnings(self) -> list[LogEvent]:
        """
        @return: the events logged by L{EchoDatagramProtocol}.
        """
        return [
            e for e in self.events if e.get("log_namespace", "").endswith("Protocol")
        ]

    def test_echo(self) -> None:
        """
        A datagram is sent back, unchanged, to its sender and counted.
        """
        protocol, transport = make_protocol(Clock())
        for payload in [b"hello", b"", b"\x00\xff" * 100]:
            protocol.datagramReceived(payload, CLIENT)
        self.assertEqual(
            transport.written,
            [(b"hello", CLIENT), (b"", CLIENT), (b"\x00\xff" * 100, CLIENT)],
        )
        self.assertEqual(
            (protocol.datagrams_echoed, protocol.datagrams_dropped), (3, 0)
        )

    def test_replyNeverLarger(self) -> None:
        """
        Every reply is exactly as long as its request.
        """
        protocol, transport = make_protocol(Clock(), burst=100)
        sizes = [0, 1, 512, 1472, 65507]
        for size in sizes:
            protocol.datagramReceived(b"x" * size, CLIENT)
        self.assertEqual([len(d) for d, _ in transport.written], sizes)

    def test_refusedPorts(self) -> None:
        """
        Datagrams from port 0 or from echo, daytime, qotd, chargen and time
        are dropped and counted, never answered.
        """
        protocol, transport = make_protocol(Clock(), burst=100)
        for port in [0, 7, 13, 17, 19, 37]:
            protocol.datagramReceived(b"loop?", ("127.0.0.1", port))
        self.assertEqual(transport.written, [])
        self.assertEqual(protocol.datagrams_dropped, 6)
        self.assertEqual(protocol.dropped_refused_port, 6)

    def test_rateLimitPerSource(self) -> None:
        """
        Past its burst a source is dropped until the clock refills its
        bucket; another source is unaffected.
        """
        clock = Clock()
        protocol, transport = make_protocol(clock, rate=10.0, burst=3)
        for _ in range(5):
            protocol.datagramReceived(b"a", CLIENT)
        other = ("127.0.0.2", 40000)
        protocol.datagramReceived(b"b", other)
        self.assertEqual(len(transport.written), 4)
        self.assertEqual(transport.written[-1], (b"b", other))
        self.assertEqual(protocol.dropped_rate_limited, 2)
        clock.advance(0.1)
        protocol.datagramReceived(b"a", CLIENT)
        protocol.datagramReceived(b"a", CLIENT)
        self.assertEqual(len(transport.written), 5)
        self.assertEqual(
            (protocol.datagrams_echoed, protocol.datagrams_dropped), (5, 3)
        )

    def test_samePortsShareBucketByHost(self) -> None:
        """
        A source can't escape its limit by changing its source port.
        """
        protocol, transport = make_protocol(Clock(), burst=2)
        for port in range(40000, 40005):
            protocol.datagramReceived(b"a", ("127.0.0.1", port))
        self.assertEqual(len(transport.written), 2)

    def test_maxSources(self) -> None:
        """
        A new source beyond C{max_sources} is dropped while every tracked
        source is still busy, and served once one has gone quiet.
        """
        clock = Clock()
        protocol, transport = make_protocol(clock, rate=1.0, burst=1, max_sources=2)
        protocol.datagramReceived(b"a", ("10.0.0.1", 40000))
        protocol.datagramReceived(b"b", ("10.0.0.2", 40000))
        protocol.datagramReceived(b"c", ("10.0.0.3", 40000))
        self.assertEqual(len(transport.written), 2)
        self.assertEqual(protocol.sources_tracked, 2)
        clock.advance(1.0)
        protocol.datagramReceived(b"c", ("10.0.0.3", 40000))
        self.assertEqual(transport.written[-1], (b"c", ("10.0.0.3", 40000)))

    def test_busySourceKeepsItsBucket(self) -> None:
        """
        With the table full, a new source takes the place of one that has
        gone quiet, not of one still sending, which can't escape its limit
        that way.
        """
        clock = Clock()
        protocol, transport = make_protocol(clock, rate=1.0, burst=2, max_sources=2)
        busy, quiet, new = [(f"10.0.0.{i}", 40000) for i in (1, 2, 3)]
        protocol.datagramReceived(b"a", busy)
        protocol.datagramReceived(b"b", quiet)
        clock.advance(0.5)
        protocol.datagramReceived(b"a", busy)
        clock.advance(0.5)
        protocol.datagramReceived(b"c", new)
        self.assertEqual(transport.written[-1], (b"c", new))
        self.assertEqual(protocol.sources_tracked, 2)
        del transport.written[:]
        protocol.datagramReceived(b"a", busy)
        protocol.datagramReceived(b"a", busy)
        self.assertEqual(len(transport.written), 1)

    def test_fullTableCostsLittle(self) -> None:
        """
        While the table is full of busy sources, each datagram from a new
        source looks at one bucket at most, not at all of them.
        """
        protocol, _ = make_protocol(Clock(), rate=1.0, burst=1, max_sources=1000)
        for i in range(1000):
            protocol.datagramReceived(b"a", (f"10.0.{i // 256}.{i % 256}", 40000))
        looked = []
        full = TokenBucket.full

        def counted(bucket: TokenBucket, now: float) -> bool:
            looked.append(bucket)
            return full(bucket, now)

        self.patch(TokenBucket, "full", counted)
        for i in range(1000):
            protocol.datagramReceived(b"a", (f"10.1.{i // 256}.{i % 256}", 40000))
        self.assertEqual(protocol.dropped_rate_limited, 1000)
        self.assertLessEqual(len(looked), 1000)

    def test_sendFailure(self) -> None:
        """
        A datagram the OS refuses to send is counted as dropped, not raised.
        """
        protocol, transport = make_protocol(Clock())
        transport.error = OSError("Message too long")
        protocol.datagramReceived(b"a", CLIENT)
        self.assertEqual(protocol.dropped_send_failed, 1)
        self.assertEqual(protocol.datagrams_echoed, 0)

    def test_dropsLoggedPeriodically(self) -> None:
        """
        A flood of drops is logged as one line per report interval, with the
        count, and nothing is logged for an interval without drops.
        """
        clock = Clock()
        protocol, _ = make_protocol(clock, burst=1)
        for _ in range(1000):
            protocol.datagramReceived(b"a", CLIENT)
            protocol.datagramReceived(b"a", ("127.0.0.1", 19))
        self.assertEqual(self.warnings(), [])
        clock.advance(10.0)
        [event] = self.warnings()
        self.assertEqual(event["dropped"], 1999)
        self.assertEqual(event["refused_port"], 1000)
        self.assertEqual(event["rate_limited"], 999)
        clock.advance(10.0)
        self.assertEqual(len(self.warnings()), 1)

    def test_stopReportsRemainder(self) -> None:
        """
        Stopping logs drops not yet reported and stops the report timer.
        """
        clock = Clock()
        protocol, _ = make_protocol(clock)
        protocol.datagramReceived(b"a", ("127.0.0.1", 0))
        protocol.stopProtocol()
        [event] = self.warnings()
        self.assertEqual(event["dropped"], 1)
        self.assertIn("UDP echo dropped 1 datagram since", formatEvent(event))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_quietSourcesForgotten(self) -> None:
        """
        The report forgets sources whose buckets have refilled, so the table
        does not grow with every address ever seen.
        """
        clock = Clock()
        protocol, _ = make_protocol(clock, rate=10.0, burst=3)
        for i in range(50):
            protocol.datagramReceived(b"a", (f"10.0.0.{i}", 40000))
        self.assertEqual(protocol.sources_tracked, 50)
        clock.advance(10.0)
        self.assertEqual(protocol.sources_tracked, 0)


#: A peer echo service on a high port, as a spoofed datagram names it.
PEER = ("127.0.0.9", 40007)


def run_loop(
    protocol: EchoDatagramProtocol,
    transport: FakeDatagramTransport,
    clock: Clock,
    rtt: float,
    seconds: float,
) -> list[float]:
    """
    Play an echo loop through a peer that answers every echo after C{rtt}
    seconds, for C{seconds}, starting with one spoofed datagram.

    @return: when each echo was sent, by C{clock}.
    """
    sent: list[float] = []
    start = clock.seconds()
    protocol.datagramReceived(b"bounce", PEER)
    while clock.seconds() - start < seconds:
        if len(transport.written) > len(sent):
            sent.append(clock.seconds())
            clock.advance(rtt)
            protocol.datagramReceived(b"bounce", PEER)
        else:
            clock.advance(1.0)
    return [t - start for t in sent]


class EchoLoopTests(SynchronousTestCase):
    """
    Tests for L{RepeatFilter} in L{EchoDatagramProtocol}: echo loops die,
    clients are answered.
    """

    def test_slowPeerLoopDies(self) -> None:
        """
        A loop through a peer 150 ms away, with the default rate limit
        (which alone lets it run at its refill rate for ever), is answered
        L{REPEAT_LIMIT} times and then never again.
        """
        clock = Clock()
        protocol = EchoDatagramProtocol(clock)
        transport = FakeDatagramTransport()
        protocol.transport = transport  # type: ignore[assignment]
        sent = run_loop(protocol, transport, clock, 0.150, 600.0)
        self.assertEqual(len(sent), REPEAT_LIMIT)
        self.assertLess(sent[-1], 30.0)
        self.assertEqual(protocol.dropped_repeated, 1)

    def test_anyRoundTripDies(self) -> None:
        """
        Whatever the loop's round trip under L{REPEAT_MEMORY}, and however
        generous the rate limit, its last echo is sent within 30 s.
        """
        for rtt in [0.0001, 0.01, 0.15, 1.0, 4.9, 5.0, 7.0, 12.0, 24.9, 29.9]:
            clock = Clock()
            protocol, transport = make_protocol(clock, rate=1e6, burst=10**6)
            sent = run_loop(protocol, transport, clock, rtt, 3600.0)
            self.assertLessEqual(len(sent), REPEAT_LIMIT, rtt)
            self.assertLess(sent[-1], 30.0, rtt)

    def test_retryingClientAnswered(self) -> None:
        """
        A client that sends the same payload again after lost replies is
        answered: up to L{REPEAT_LIMIT} tries within L{REPEAT_WINDOW} (here
        tries 1, 2, 4 and 8 s apart, and tries 10 s apart, the reference
        client's default timeout, of which three fit the window).
        """
        for gaps in [(1.0, 2.0, 4.0, 8.0), (10.0, 10.0)]:
            clock = Clock()
            protocol, transport = make_protocol(clock)
            protocol.datagramReceived(b"are you there?", CLIENT)
            for gap in gaps:
                clock.advance(gap)
                protocol.datagramReceived(b"are you there?", CLIENT)
            self.assertEqual(len(transport.written), len(gaps) + 1, gaps)
            self.assertEqual(protocol.datagrams_dropped, 0)

    def test_changingPayloadsAnswered(self) -> None:
        """
        A client sending 10 datagrams a second, each different, for five
        minutes, is answered every time with the default limits; the
        payloads remembered stay at what L{REPEAT_MEMORY} holds.
        """
        clock = Clock()
        protocol = EchoDatagramProtocol(clock)
        transport = FakeDatagramTransport()
        protocol.transport = transport  # type: ignore[assignment]
        for i in range(3000):
            protocol.datagramReceived(b"reading %d" % i, CLIENT)
            clock.advance(0.1)
        self.assertEqual(len(transport.written), 3000)
        self.assertLessEqual(len(protocol.repeats), REPEAT_MEMORY * 10 + 1)

    def test_sameRequestLaterAnswered(self) -> None:
        """
        A payload cut off is answered again once it has not been answered
        for L{REPEAT_MEMORY} seconds; the same payload from another port is
        another source's and is answered meanwhile.
        """
        clock = Clock()
        protocol, transport = make_protocol(clock, burst=100)
        for _ in range(REPEAT_LIMIT + 3):
            protocol.datagramReceived(b"ping", CLIENT)
        self.assertEqual(len(transport.written), REPEAT_LIMIT)
        other = (CLIENT[0], CLIENT[1] + 1)
        protocol.datagramReceived(b"ping", other)
        self.assertEqual(transport.written[-1], (b"ping", other))
        clock.advance(REPEAT_MEMORY - 0.5)
        protocol.datagramReceived(b"ping", CLIENT)
        self.assertEqual(len(transport.written), REPEAT_LIMIT + 1)
        clock.advance(0.5)
        protocol.datagramReceived(b"ping", CLIENT)
        self.assertEqual(transport.written[-1], (b"ping", CLIENT))
        self.assertEqual(protocol.dropped_repeated, 4)

    def test_windowEndsEpisode(self) -> None:
        """
        Within L{REPEAT_MEMORY}, a payload is not answered more than
        L{REPEAT_WINDOW} seconds after its first answer, even below
        L{REPEAT_LIMIT}.
        """
        clock = Clock()
        protocol, transport = make_protocol(clock)
        protocol.datagramReceived(b"slow", CLIENT)
        clock.advance(REPEAT_WINDOW)
        protocol.datagramReceived(b"slow", CLIENT)
        clock.advance(1.0)
        protocol.datagramReceived(b"slow", CLIENT)
        self.assertEqual(len(transport.written), 2)

    def test_memoryBounded(self) -> None:
        """
        The table keeps at most C{max_payloads}, forgetting the least
        recently answered, and the periodic report forgets quiet ones.
        """
        clock = Clock()
        repeats = RepeatFilter(max_payloads=10)
        protocol = EchoDatagramProtocol(clock, burst=100, repeats=repeats)
        protocol.transport = FakeDatagramTransport()  # type: ignore[assignment]
        protocol.startProtocol()
        for i in range(25):
            protocol.datagramReceived(b"%d" % i, CLIENT)
        self.assertEqual(len(repeats), 10)
        clock.advance(REPEAT_MEMORY + DEFAULT_REPORT_INTERVAL)
        self.assertEqual(len(repeats), 0)
        protocol.stopProtocol()
