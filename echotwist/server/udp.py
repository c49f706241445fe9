"""
The echo service over UDP (RFC 862, datagrams), made safe to expose.

A UDP echo server is a classic reflection and loop weapon: a spoofed datagram
from another echo or chargen port starts a ping-pong that never ends
(CVE-1999-0103), and any reply can be aimed at a victim.  So:

  - a datagram from source port 0, from any port below 1024 (where every
    well-known UDP service that answers lives: echo 7, daytime 13, qotd 17,
    chargen 19, time 37, DNS 53, NTP 123, SNMP 161, ...), or from a known
    high-port reflector (L{REFLECTOR_PORTS}) is never answered: real clients
    send from ephemeral ports;
  - each source address has a token bucket (L{TokenBucket}, on the reactor
    clock): a datagram with no token left is dropped.  At most
    C{max_sources} buckets are kept, least recently heard from first: when
    the table is full, a new source takes the place of the oldest if that
    one has refilled (so forgetting it changes nothing), else is dropped.
    The cost per datagram stays constant however full the table is;
  - a reply is the request itself, never larger;
  - drops are counted and logged by a L{LoopingCall} every
    C{report_interval} seconds, never once per datagram.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

#: Datagrams per second each source may be sent, by default.
DEFAULT_RATE = 10.0
#: Datagrams a source may be sent at once after a quiet spell, by default.
DEFAULT_BURST = 20
#: Sources tracked at once; datagrams from more are dropped until some go
#: quiet, so a spoofed flood can't grow the table without bound.
DEFAULT_MAX_SOURCES = 65536
#: Seconds between drop reports.
DEFAULT_REPORT_INTERVAL = 60.0

#: Source ports at or above 1024 that belong to services known to answer
#: unsolicited datagrams (and so to be usable for loops or reflection): SSDP,
#: CoAP, WS-Discovery, Apple Remote Desktop, mDNS, Ubiquiti discovery,
#: memcached.
REFLECTOR_PORTS = frozenset({1900, 3283, 3702, 5353, 5683, 10001, 11211})


def refused_source_port(port: int) -> bool:
    """
    @param port: a datagram's source port.
    @return: whether a datagram from it must never be answered.
    """
    return port < 1024 or port in REFLECTOR_PORTS


class TokenBucket:
    """
    A token bucket: C{burst} tokens at most, refilled at C{rate} a second.

    L{twisted.protocols.htb.Bucket} reads the wall clock and counts bytes;
    this one reads the reactor's clock, so tests can drive it with
    L{twisted.internet.task.Clock}.

    @ivar tokens: tokens left as of C{updated}.
    @ivar updated: when C{tokens} was last computed.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        """
        Take one token if there is one.

        @param now: the time now.
        @return: whether a token was taken.
        """
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        """
        @param now: the time now.
        @return: whether the bucket is back to C{burst} tokens (so forgetting
            it changes nothing).
        """
        self._refill(now)
        return self.tokens >= self.burst

    def _refill(self, now: float) -> None:
        """
        Add the tokens earned since C{updated}, up to C{burst}.

        @param now: the time now.
        """
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.updated = now


class EchoDatagramProtocol(DatagramProtocol):
    """
    Send each datagram back to its sender, within the limits above.

    @ivar datagrams_echoed: datagrams sent back since start.
    @ivar datagrams_dropped: datagrams not answered since start (all reasons).
    @ivar dropped_refused_port: of those, from a refused source port.
    @ivar dropped_rate_limited: of those, over their source's rate or over
        C{max_sources}.
    @ivar dropped_send_failed: of those, that the OS would not send.
    """

    log = Logger()
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_sources: int = DEFAULT_MAX_SOURCES,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
    ) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self.report_interval = report_interval
        self.datagrams_echoed = 0
        self.datagrams_dropped = 0
        self.dropped_refused_port = 0
        self.dropped_rate_limited = 0
        self.dropped_send_failed = 0
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._reported_dropped = 0
        self._reporter = LoopingCall(self.report)
        self._reporter.clock = clock

    def startProtocol(self) -> None:
        """
        Start the periodic drop report.
        """
        self._reporter.start(self.report_interval, now=False)

    def stopProtocol(self) -> None:
        """
        Stop the report, logging what it has not reported yet.
        """
        if self._reporter.running:
            self._reporter.stop()
        self.report()

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """
        Echo C{datagram} to C{addr} unless its port is refused or its source
        is over its rate.

        @param datagram: the payload.
        @param addr: the sender's C{(host, port)} (IPv6 adds two more items).
        """
        host, port = addr[0], addr[1]
        if refused_source_port(port):
            self.dropped_refused_port += 1
            self.datagrams_dropped += 1
            return
        if not self._allow(host):
            self.dropped_rate_limited += 1
            self.datagrams_dropped += 1
            return
        try:
            self.transport.write(datagram, addr)  # type: ignore[union-attr]
        except OSError:
            self.dropped_send_failed += 1
            self.datagrams_dropped += 1
            return
        self.datagrams_echoed += 1

    def _allow(self, host: str) -> bool:
        """
        @param host: the source address.
        @return: whether its bucket had a token (a new source gets a full
            bucket, if there is room for one).
        """
        now = self.clock.seconds()
        bucket = self._buckets.get(host)
        if bucket is not None:
            self._buckets.move_to_end(host)
        else:
            if len(self._buckets) >= self.max_sources:
                self._forget_quiet_sources(now)
                if len(self._buckets) >= self.max_sources:
                    return False
            bucket = self._buckets[host] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def _forget_quiet_sources(self, now: float) -> None:
        """
        Drop buckets that have refilled (a new one would be the same), least
        recently heard from first, up to the first that has not: every
        source after it was heard from more recently, within C{burst / rate}
        seconds.  Each bucket is dropped once, so this costs O(1) a datagram
        overall.

        @param now: the time now.
        """
        while self._buckets:
            host, bucket = next(iter(self._buckets.items()))
            if not bucket.full(now):
                return
            del self._buckets[host]

    @property
    def sources_tracked(self) -> int:
        """
        @return: how many source addresses have a bucket now.
        """
        return len(self._buckets)

    def report(self) -> None:
        """
        Log one line if datagrams were dropped since the last report, and
        forget sources that have gone quiet.
        """
        self._forget_quiet_sources(self.clock.seconds())
        dropped = self.datagrams_dropped - self._reported_dropped
        if not dropped:
            return
        self._reported_dropped = self.datagrams_dropped
        self.log.warn(
            "UDP echo dropped {dropped} datagrams since the last report "
            "(totals: {refused_port} from refused source ports, "
            "{rate_limited} over the rate limit, {send_failed} unsendable; "
            "{echoed} echoed)",
            dropped=dropped,
            refused_port=self.dropped_refused_port,
            rate_limited=self.dropped_rate_limited,
            send_failed=self.dropped_send_failed,
            echoed=self.datagrams_echoed,
        )
