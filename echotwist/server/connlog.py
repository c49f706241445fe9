"""
One log line per connection as it is made and one as it ends, and under a
connection storm a summary a second instead.

Formatting and writing a log line through twistd's text observer costs more
than accepting the connection it is about (about half of the server's time
per connection in a storm of 10,000 back-to-back connects, by py-spy).  So
each second the first L{DEFAULT_LINES_PER_SECOND} connections made, and
separately the first that many ended, get their own lines, as always; past
that, the connections are only counted, and one line at the end of that
second sums them up: how many, from which hosts, and for those that ended
their bytes in and out, the longest duration and why they ended.  Below the
threshold (which is every ordinary load) nothing changes: every connection
has its C{Connected by} and its C{Disconnected} line.
"""

from __future__ import annotations

from collections import Counter

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from echotwist.words import counted

#: Connections made (and, separately, ended) a second that are logged one by
#: one before the rest of that second are summed up.
DEFAULT_LINES_PER_SECOND = 100

#: Hosts named in a summary, the busiest first; the rest are counted.
SUMMARY_HOSTS = 3


def _hosts(hosts: Counter[str]) -> str:
    """
    @param hosts: connections by host.
    @return: the busiest hosts with their counts, and how many others.
    """
    busiest = hosts.most_common(SUMMARY_HOSTS)
    text = ", ".join(f"{host} ({count})" for host, count in busiest)
    others = len(hosts) - len(busiest)
    if others:
        text += f" and {counted(others, 'other host')}"
    return text


class ConnectionLog:
    """
    Decide, for each connection made or ended, whether it gets its own log
    line or is summed up with the rest of a storm.

    @ivar lines_per_second: connections made (and ended) a second logged one
        by one.
    """

    log = Logger()

    def __init__(
        self, clock: IReactorTime, lines_per_second: int = DEFAULT_LINES_PER_SECOND
    ) -> None:
        self.clock = clock
        self.lines_per_second = lines_per_second
        self._window_end = 0.0
        self._made_lines = 0
        self._ended_lines = 0
        self._made: Counter[str] = Counter()
        self._ended: Counter[str] = Counter()
        self._ended_in = 0
        self._ended_out = 0
        self._longest = 0.0
        self._reasons: Counter[str] = Counter()
        self._summary: IDelayedCall | None = None

    def _window(self) -> None:
        """
        Start a new one-second window if the last one is over, summing up
        what it left unlogged.
        """
        now = self.clock.seconds()
        if now >= self._window_end:
            if self._summary is not None:
                self._summary.cancel()
                self.summarize()
            self._window_end = now + 1.0
            self._made_lines = 0
            self._ended_lines = 0

    def _later(self) -> None:
        """
        Make sure the summary is logged when this window ends.
        """
        if self._summary is None:
            delay = max(0.0, self._window_end - self.clock.seconds())
            self._summary = self.clock.callLater(delay, self.summarize)

    def made(self, host: str) -> bool:
        """
        A connection was made.

        @param host: its peer's host, for the summary.
        @return: whether to log its own C{Connected by} line; if not, it is
            counted in this second's summary.
        """
        self._window()
        if self._made_lines < self.lines_per_second:
            self._made_lines += 1
            return True
        self._made[host] += 1
        self._later()
        return False

    def ended(
        self, host: str, bytes_in: int, bytes_out: int, duration: float, why: str
    ) -> bool:
        """
        A connection ended.

        @param host: its peer's host.
        @param bytes_in: bytes it sent us.
        @param bytes_out: bytes of its echo that were sent.
        @param duration: seconds it was open.
        @param why: why it ended.
        @return: whether to log its own C{Disconnected} line; if not, it is
            summed up in this second's summary.
        """
        self._window()
        if self._ended_lines < self.lines_per_second:
            self._ended_lines += 1
            return True
        self._ended[host] += 1
        self._ended_in += bytes_in
        self._ended_out += bytes_out
        self._longest = max(self._longest, duration)
        self._reasons[why] += 1
        self._later()
        return False

    def summarize(self) -> None:
        """
        Log what this window counted without logging, and start counting
        again.
        """
        self._summary = None
        made = sum(self._made.values())
        if made:
            self.log.info(
                "Storm: {count_text} made in the last second past the first "
                "{limit}, counted rather than logged one by one, from {hosts}",
                count=made,
                count_text=counted(made, "connection"),
                limit=self.lines_per_second,
                hosts=_hosts(self._made),
            )
            self._made.clear()
        ended = sum(self._ended.values())
        if ended:
            reasons = "; ".join(f"{n}: {why}" for why, n in self._reasons.most_common())
            self.log.info(
                "Storm: {count_text} ended in the last second past the first "
                "{limit}, counted rather than logged one by one, from "
                "{hosts}: {bytes_in_text} in, {bytes_out_text} out, the "
                "longest {longest:.3f} s ({reasons})",
                count=ended,
                count_text=counted(ended, "connection"),
                limit=self.lines_per_second,
                hosts=_hosts(self._ended),
                bytes_in=self._ended_in,
                bytes_out=self._ended_out,
                bytes_in_text=counted(self._ended_in, "byte"),
                bytes_out_text=counted(self._ended_out, "byte"),
                longest=self._longest,
                reasons=reasons,
            )
            self._ended.clear()
            self._reasons.clear()
            self._ended_in = self._ended_out = 0
            self._longest = 0.0
