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
  - the same payload from the same source (address and port) is answered
    at most L{REPEAT_LIMIT} times, and only within L{REPEAT_WINDOW} seconds
    of its first answer (L{RepeatFilter}).  An echo loop through a peer
    (a spoofed datagram from another echo service) repeats one payload
    once per round trip, so whatever that round trip it dies within
    L{REPEAT_WINDOW} seconds; the token bucket alone does not stop it, as
    a loop slower than the refill rate settles at that rate.  A payload
    not answered for L{REPEAT_MEMORY} seconds is forgotten, so one sent
    again later is answered again: a client that retries a few times
    after lost replies, or that sends new payloads, is not affected;
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

from echotwist.words import counted

#: Datagrams per second each source may be sent, by default.
DEFAULT_RATE = 10.0
#: Datagrams a source may be sent at once after a quiet spell, by default.
DEFAULT_BURST = 20
#: Sources tracked at once; datagrams from more are dropped until some go
#: quiet, so a spoofed flood can't grow the table without bound.
DEFAULT_MAX_SOURCES = 65536
#: Seconds between drop reports.
DEFAULT_REPORT_INTERVAL = 60.0

#: Answers to one payload from one source, at most, in one episode.
REPEAT_LIMIT = 5
#: Seconds after the first answer to a payload from a source during which
#: it may be answered again (less than the 30 s within which an echo loop
#: must die).
REPEAT_WINDOW = 25.0
#: Seconds after its last answer at which a payload from a source is
#: forgotten, and answered afresh if it comes again.
REPEAT_MEMORY = 30.0
#: Payloads tracked at once; past it the least recently answered is
#: forgotten (each such forgetting grants a loop at most L{REPEAT_LIMIT}
#: more answers, still within its source's rate).
DEFAULT_MAX_PAYLOADS = 65536

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


class _Episode:
    """
    The answers given to one payload from one source.

    @ivar first: when it was first answered.
    @ivar last: when it was last answered.
    @ivar count: how many times it was answered.
    """

    __slots__ = ("count", "first", "last")

    def __init__(self, now: float) -> None:
        self.first = now
        self.last = now
        self.count = 1


class RepeatFilter:
    """
    Count the answers to each payload from each source, so that an echo
    loop (one payload bounced back and forth) is cut off whatever its round
    trip, while a client that retries a few times or sends new payloads is
    answered.

    A payload is known by a keyed hash (Python's C{hash}, randomised per
    process) of the source and the payload, so a 64 KiB datagram costs 8
    bytes of memory here; a collision (chance about 2**-64) only makes one
    payload count as another's repeat.

    @ivar limit: answers at most in one episode.
    @ivar window: seconds after an episode's first answer within which it
        may be answered again.
    @ivar memory: seconds after its last answer at which an episode is
        forgotten.
    @ivar max_payloads: episodes remembered at most (the least recently
        answered is forgotten first).
    """

    def __init__(
        self,
        limit: int = REPEAT_LIMIT,
        window: float = REPEAT_WINDOW,
        memory: float = REPEAT_MEMORY,
        max_payloads: int = DEFAULT_MAX_PAYLOADS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.memory = memory
        self.max_payloads = max_payloads
        self._episodes: OrderedDict[int, _Episode] = OrderedDict()

    def allowed(self, key: int, now: float) -> bool:
        """
        @param key: the source and payload's hash.
        @param now: the time now.
        @return: whether it may be answered now.
        """
        episode = self._episodes.get(key)
        if episode is None or now - episode.last >= self.memory:
            return True
        return episode.count < self.limit and now - episode.first <= self.window

    def answered(self, key: int, now: float) -> None:
        """
        Count an answer (one that L{allowed} allowed).

        @param key: the source and payload's hash.
        @param now: the time now.
        """
        self.forget(now)
        episode = self._episodes.get(key)
        if episode is None or now - episode.last >= self.memory:
            self._episodes[key] = _Episode(now)
            self._episodes.move_to_end(key)
            while len(self._episodes) > self.max_payloads:
                self._episodes.popitem(last=False)
            return
        episode.count += 1
        episode.last = now
        self._episodes.move_to_end(key)

    def forget(self, now: float) -> None:
        """
        Forget the episodes last answered L{memory} seconds ago or more,
        least recently answered first, up to the first that is not: O(1) a
        datagram overall.

        @param now: the time now.
        """
        episodes = self._episodes
        while episodes:
            episode = next(iter(episodes.values()))
            if now - episode.last < self.memory:
                return
            episodes.popitem(last=False)

    def __len__(self) -> int:
        """
        @return: how many episodes are remembered.
        """
        return len(self._episodes)


class EchoDatagramProtocol(DatagramProtocol):
    """
    Send each datagram back to its sender, within the limits above.

    @ivar datagrams_echoed: datagrams sent back since start.
    @ivar datagrams_dropped: datagrams not answered since start (all reasons).
    @ivar dropped_refused_port: of those, from a refused source port.
    @ivar dropped_rate_limited: of those, over their source's rate or over
        C{max_sources}.
    @ivar dropped_send_failed: of those, that the OS would not send.
    @ivar dropped_repeated: of those, repeats of a payload answered
        too often (see L{RepeatFilter}).
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
        repeats: RepeatFilter | None = None,
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
        self.dropped_repeated = 0
        self.repeats = RepeatFilter() if repeats is None else repeats
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
        Echo C{datagram} to C{addr} unless its port is refused, it repeats
        a payload answered too often, or its source is over its rate.

        @param datagram: the payload.
        @param addr: the sender's C{(host, port)} (IPv6 adds two more items).
        """
        host, port = addr[0], addr[1]
        if refused_source_port(port):
            self._drop("refused_port")
            return
        now = self.clock.seconds()
        key = hash((host, port, datagram))
        if not self.repeats.allowed(key, now):
            self._drop("repeated")
            return
        if self._reply(datagram, addr):
            self.repeats.answered(key, now)

    def _drop(self, reason: str) -> None:
        """
        Count one datagram not answered, in C{datagrams_dropped} and in its
        reason's own counter, so that every reason keeps the total right.

        @param reason: the counter's name after C{dropped_} (C{"refused_port"},
            C{"rate_limited"}, C{"send_failed"}, C{"repeated"}, or one a
            subclass adds).
        """
        counter = "dropped_" + reason
        setattr(self, counter, getattr(self, counter) + 1)
        self.datagrams_dropped += 1

    def _reply(self, payload: bytes, addr: tuple[str, int]) -> bool:
        """
        Send C{payload} to C{addr} unless its source is over its rate or the
        OS will not send it, counting it echoed or dropped.

        @param payload: what to send.
        @param addr: the sender's C{(host, port)}.
        @return: whether it was sent.
        """
        if not self._allow(addr[0]):
            self._drop("rate_limited")
            return False
        try:
            self.transport.write(payload, addr)  # type: ignore[union-attr]
        except OSError:
            self._drop("send_failed")
            return False
        self.datagrams_echoed += 1
        return True

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
        forget sources and payloads that have gone quiet.
        """
        self._forget_quiet_sources(self.clock.seconds())
        self.repeats.forget(self.clock.seconds())
        dropped = self.datagrams_dropped - self._reported_dropped
        if not dropped:
            return
        self._reported_dropped = self.datagrams_dropped
        self.log.warn(
            "UDP echo dropped {dropped_text} since the last report "
            "(totals: {refused_port} from refused source ports, "
            "{rate_limited} over the rate limit, {repeated_text} of a "
            "payload answered too often (loops), {send_failed} unsendable; "
            "{echoed} echoed)",
            dropped=dropped,
            dropped_text=counted(dropped, "datagram"),
            repeated_text=counted(self.dropped_repeated, "repeat"),
            refused_port=self.dropped_refused_port,
            rate_limited=self.dropped_rate_limited,
            repeated=self.dropped_repeated,
            send_failed=self.dropped_send_failed,
            echoed=self.datagrams_echoed,
        )
