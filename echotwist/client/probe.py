"""
The prober: ping-style probes over any path, and their results.

A path (L{ProbePath}) sends one probe and reports what became of it:
L{echotwist.client.stream_probe.StreamPath} over any Twisted stream client
endpoint (TCP, TLS, UNIX), L{echotwist.client.udp_probe.UDPPath} over UDP.
L{Prober} sends C{count} probes C{interval} seconds apart over a path and
collects the results into a L{echotwist.client.stats.Summary}; the
statistics are in L{echotwist.client.stats}, the output formats in
L{echotwist.client.output}.

From Python::

    prober = Prober(reactor, StreamPath(reactor, endpoint, "tcp:h:9000"),
                    payloads("random", 64), count=5)
    async for result in prober.results():
        print(result.seq, result.status, result.rtt)
    print(prober.summary)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from echotwist.client.result import ProbeResult, Status
from echotwist.client.stats import Summary, summarize

__all__ = ["MIN_INTERVAL", "BasePath", "ProbePath", "Prober", "Report", "cancel"]

#: The shortest interval between probes, in seconds: shorter is a flood,
#: not a probe.
MIN_INTERVAL = 0.01

#: How a path reports a result.
Report = Callable[[ProbeResult], None]


class ProbePath(Protocol):
    """
    A way to send probes and hear what became of them.

    @ivar address: where the probes go, as result lines name it.
    """

    address: str

    def send(self, seq: int, payload: bytes, report: Report) -> None:
        """
        Send one probe. C{report} must be called exactly once for it with a
        final result (see L{ProbeResult.final}), within the path's timeout,
        and may be called again for late or duplicate replies.
        """

    def stop(self) -> Deferred[None]:
        """
        Stop: close connections cleanly and cancel timers; probes not yet
        settled are not reported.

        @return: fires once closed.
        """


def cancel(timer: IDelayedCall | None) -> None:
    """
    Cancel C{timer} if it is still pending (one that fired or was cancelled
    can't be cancelled again).
    """
    if timer is not None and timer.active():
        timer.cancel()


class BasePath:
    """
    What the paths share: each result names the path's address and the time
    it was reported, and none is reported once the path has stopped.

    @ivar address: where the probes go, as result lines name it.
    @ivar clock: the reactor's clock.
    """

    def __init__(self, clock: IReactorTime, address: str) -> None:
        """
        @param clock: the reactor's clock.
        @param address: how lines name the path's server.
        """
        self.clock = clock
        self.address = address
        self._report: Report | None = None
        self._stopped = False

    def _result(
        self,
        seq: int,
        status: Status,
        size: int,
        report: Report | None = None,
        *,
        rtt: float | None = None,
        connect: float | None = None,
        handshake: float | None = None,
        reordered: bool = False,
        detail: str = "",
    ) -> None:
        """
        Report a result, unless the path has stopped or has nothing to
        report to yet.

        @param report: where to (by default, the last L{ProbePath.send}'s).
        @param seq: see L{ProbeResult}, as are the other keywords.
        """
        report = self._report if report is None else report
        if self._stopped or report is None:
            return
        report(
            ProbeResult(
                seq=seq,
                status=status,
                size=size,
                address=self.address,
                time=self.clock.seconds(),
                rtt=rtt,
                connect=connect,
                handshake=handshake,
                reordered=reordered,
                detail=detail,
            )
        )


class Prober:
    """
    Send probes over a path at an interval, and collect their results.

    @ivar results_so_far: every result reported, in order.
    @ivar summary: the run's summary, once it has ended.
    """

    def __init__(
        self,
        clock: IReactorTime,
        path: ProbePath,
        payload: Callable[[int], bytes],
        count: int = 0,
        interval: float = 1.0,
        deadline: float | None = None,
        on_result: Report | None = None,
    ) -> None:
        """
        @param clock: the reactor's clock.
        @param path: where the probes go.
        @param payload: each probe's bytes, by sequence number.
        @param count: probes to send; 0 for until L{stop}.
        @param interval: seconds between probes.
        @param deadline: seconds the whole run may take, if limited.
        @param on_result: called with each result as it comes.
        """
        self._clock = clock
        self._path = path
        self._payload = payload
        self._count = count
        self._interval = interval
        self._deadline = deadline
        self._on_result = on_result
        self._sent = 0
        self._pending: set[int] = set()
        self._next: IDelayedCall | None = None
        self._deadline_call: IDelayedCall | None = None
        self._done: Deferred[Summary] | None = None
        self._queue: DeferredQueue[ProbeResult | None] = DeferredQueue()
        self._stopping = False
        self.results_so_far: list[ProbeResult] = []
        self.summary: Summary | None = None

    def run(self) -> Deferred[Summary]:
        """
        Start probing.

        @return: fires with the L{Summary} once every probe is settled, the
            deadline passed, or L{stop} was called.
        """
        self._done = Deferred()
        if self._deadline is not None:
            self._deadline_call = self._clock.callLater(self._deadline, self.stop)
        self._send_next()
        return self._done

    async def results(self) -> AsyncIterator[ProbeResult]:
        """
        Run, and yield each result as it comes; L{summary} is set once the
        iteration ends.
        """
        self.run()
        while (result := await self._queue.get()) is not None:
            yield result

    def stop(self) -> None:
        """
        End the run now (Ctrl-C, SIGTERM, the deadline): send no more, and
        leave the probes still awaited out of the counts.
        """
        if self._stopping or self._done is None:
            return
        self._stopping = True
        cancel(self._next)
        self._path.stop().addBoth(lambda _: self._finish())

    def _send_next(self) -> None:
        """
        Send the next probe, and schedule the one after.
        """
        self._next = None
        if self._stopping:
            return
        self._sent += 1
        seq = self._sent
        self._pending.add(seq)
        if not self._count or self._sent < self._count:
            self._next = self._clock.callLater(self._interval, self._send_next)
        self._path.send(seq, self._payload(seq), self._report)

    def _report(self, result: ProbeResult) -> None:
        """
        Record a result; end the run once the last probe is settled.
        """
        if self._stopping:
            return
        if result.final and result.seq:
            if result.seq not in self._pending:
                return
            self._pending.discard(result.seq)
        self.results_so_far.append(result)
        self._queue.put(result)
        if self._on_result is not None:
            self._on_result(result)
        last_sent = self._count and self._sent >= self._count
        if last_sent and not self._pending and self._next is None:
            self._stopping = True
            self._path.stop().addBoth(lambda _: self._finish())

    def _finish(self) -> None:
        """
        Summarize, and fire the run's L{Deferred}.
        """
        cancel(self._deadline_call)
        self.summary = summarize(self.results_so_far, len(self._pending))
        self._queue.put(None)
        assert self._done is not None
        if not self._done.called:
            self._done.callback(self.summary)
