"""
Graceful shutdown for C{twistd echo}.

On SIGTERM the listeners stop accepting, open connections get up to
C{timeout} seconds to finish, the rest are aborted, one summary line is
logged and twistd exits 0.  (twistd's own SIGTERM handler makes the process
kill itself with SIGTERM once the reactor stops, so a supervisor would see a
signal death rather than a clean exit; L{ShutdownService} replaces it.)

A second SIGTERM or SIGINT during the drain is harmless and silent: the
shutdown under way goes on as it was (the drain is not cut short), and
nothing is logged.  (The reactor's own handlers would stop the reactor
again, and log a C{ReactorNotRunning} traceback per extra signal.)
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from echotwist._twisted_private import replace_sigterm_handler, wrap_signal_handler
from echotwist.server.counts import Snapshot, local_snapshots
from echotwist.server.protocol import EchoFactory
from echotwist.words import counted

DEFAULT_SHUTDOWN_TIMEOUT = 10.0

#: Seconds between checks for the last connection to end.
POLL_INTERVAL = 0.05


def drain(factory: EchoFactory, clock: IReactorTime, timeout: float) -> Deferred[int]:
    """
    Wait for the factory's open connections to end, aborting those still open
    after C{timeout} seconds.

    @param factory: the factory whose C{open_connections} to wait for.
    @param clock: the reactor (a L{twisted.internet.task.Clock} in tests).
    @param timeout: seconds to wait before aborting.
    @return: a L{Deferred} firing, once none is open, with how many
        connections had to be aborted.
    """
    deadline = clock.seconds() + timeout
    aborted = 0

    def check() -> None:
        nonlocal aborted
        if not factory.open_connections:
            poll.stop()
        elif clock.seconds() >= deadline and not aborted:
            for protocol in list(factory.open_connections):
                aborted += 1
                protocol.transport.abortConnection()  # type: ignore[union-attr]

    poll = LoopingCall(check)
    poll.clock = clock
    done: Deferred[int] = Deferred()
    poll.start(POLL_INTERVAL, now=True).addCallback(lambda _: done.callback(aborted))
    return done


class ShutdownService(MultiService):
    """
    Make SIGTERM a graceful shutdown of one L{EchoFactory}'s connections.

    The listeners (and a L{echotwist.server.workers.WorkerPool}) are its
    children: stopping it stops them, so nothing new is accepted, then waits
    for the factory's connections and for the children to have stopped
    (workers to have exited) before the summary.

    @ivar timeout: seconds open connections get to finish.
    @ivar counts: the counts to sum up in the summary, by process (see
        L{echotwist.server.counts}); a worker that has exited by the end counts
        as it was when shutdown began, unless C{counts} still gives its
        final report (as L{echotwist.server.workers.WorkerPool.totals}
        does).
    @ivar aborted: connections this process aborted at the timeout, once
        the drain is over (L{None} before).
    """

    log = Logger()

    def __init__(
        self,
        factory: EchoFactory,
        reactor: Any,
        timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        counts: Callable[[], Mapping[str, Snapshot]] | None = None,
    ) -> None:
        super().__init__()
        self.factory = factory
        self.reactor = reactor
        self.timeout = timeout
        self.counts = counts or (lambda: local_snapshots(factory))
        self.stopping = False
        self.aborted: int | None = None

    def startService(self) -> None:
        """
        Install the SIGTERM handler once the reactor runs (the reactor
        installs its own as it starts), and make the reactor's SIGINT
        handler act on the first signal only.
        """
        super().startService()
        replace_sigterm_handler(self.reactor, self._sigterm)
        wrap_signal_handler(self.reactor, signal.SIGINT, self._first_only)

    def _sigterm(self, signum: int, frame: object) -> None:
        """
        Stop the reactor from the signal handler, as the reactor's own
        handler does, but without recording the signal as the exit status;
        once shutting down, do nothing.
        """
        if self.stopping:
            return
        self.stopping = True
        self.log.info("SIGTERM received: shutting down")
        self.reactor.callFromThread(self._stop_reactor)

    def _stop_reactor(self) -> None:
        """
        Stop the reactor unless something else already has.
        """
        with suppress(ReactorNotRunning):
            self.reactor.stop()

    def _first_only(
        self, handler: Callable[[int, Any], object]
    ) -> Callable[[int, Any], None]:
        """
        @param handler: a signal handler that starts the shutdown (the
            reactor's SIGINT handler, which twistd's exit status relies on).
        @return: a handler that calls it unless the shutdown has begun.
        """

        def first_only(signum: int, frame: Any) -> None:
            if self.stopping:
                return
            self.stopping = True
            handler(signum, frame)

        return first_only

    def stopService(self) -> Deferred[None]:
        """
        Stop the children, wait for open connections, then log the summary.

        @return: a L{Deferred} that fires when every connection has ended and
            every child has stopped.
        """
        self.stopping = True
        at_stop = dict(self.counts())
        children: Deferred[None] = super().stopService()
        open_now = len(self.factory.open_connections)
        if open_now:
            self.log.info(
                "Stopped accepting; waiting up to {timeout} s for {count} open "
                "connections",
                timeout=self.timeout,
                count=open_now,
            )
        aborted: list[int] = []
        draining = drain(self.factory, self.reactor, self.timeout).addCallback(
            aborted.append
        )
        return gatherResults([children, draining]).addCallback(
            lambda _: self._summary({**at_stop, **self.counts()}, aborted[0])
        )

    def _summary(self, counts: Mapping[str, Snapshot], aborted: int) -> None:
        """
        Log the one summary line.

        @param counts: the final counts, by process.
        @param aborted: connections this process aborted at the timeout
            (workers report theirs in their counts).
        """
        self.aborted = aborted
        total = list(counts.values())
        self.log.info(
            "Shutdown complete: {connections_served} served, {bytes_echoed} "
            "echoed, {refused} refused at the connection limit, {aborted} closed "
            "at the shutdown timeout; UDP: {datagrams_echoed} echoed, "
            "{dropped} dropped",
            connections=(connections := sum(c.connections_total for c in total)),
            bytes=(echoed := sum(c.bytes_echoed for c in total)),
            refused=sum(c.refused_total for c in total),
            aborted=aborted + sum(c.closed_at_shutdown for c in total),
            datagrams=(datagrams := sum(c.datagrams_echoed for c in total)),
            dropped=sum(c.datagrams_dropped for c in total),
            connections_served=counted(connections, "connection"),
            bytes_echoed=counted(echoed, "byte"),
            datagrams_echoed=counted(datagrams, "datagram"),
        )
