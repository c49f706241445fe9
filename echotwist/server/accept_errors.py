"""
Keep descriptor exhaustion from flooding the log.

When C{accept()} fails with C{EMFILE}, Twisted's TCP port frees a reserved
descriptor, accepts and closes every pending connection and reserves the
descriptor again: the server stays up, serves the connections it has and
accepts again once descriptors free up.  But it logs three lines per
connection it closes, so a flood against a full descriptor table becomes a
log flood.  L{AcceptErrorSummary} takes those events from the port's logger
and logs one line when it starts, one count per C{interval} while it lasts
and one line when it is over.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, LogEvent, Logger, globalLogPublisher
from zope.interface import implementer

from echotwist._twisted_private import (
    ACCEPT_CLOSED,
    ACCEPT_FAILED,
    ACCEPT_QUIET,
    route_port_log,
)

#: Seconds between counts while connections are being closed.
DEFAULT_INTERVAL = 10.0

#: The C{log_format}s of L{twisted.internet.tcp.Port}'s accept-error events
#: that are counted; those in L{ACCEPT_QUIET} are only said again.
_COUNTED = (ACCEPT_CLOSED, ACCEPT_FAILED)


@implementer(ILogObserver)
class AcceptErrorSummary:
    """
    A log observer for listening ports: accept-error events are summed up,
    every other event goes on to C{observer}.

    @ivar refused_total: connections closed or not accepted for lack of
        descriptors (or memory) since start.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        interval: float = DEFAULT_INTERVAL,
        observer: ILogObserver = globalLogPublisher,
    ) -> None:
        self.observer = observer
        self.interval = interval
        self.refused_total = 0
        self._refused_since_report = 0
        self._reporter = LoopingCall(self._report)
        self._reporter.clock = clock

    def __call__(self, event: LogEvent) -> None:
        """
        Count an accept-error event, drop its noise, pass the rest on.

        @param event: an event from a listening port's logger.
        """
        log_format = event.get("log_format")
        if log_format in _COUNTED:
            self.refused_total += 1
            self._refused_since_report += 1
            if not self._reporter.running:
                self.log.warn(
                    "Out of file descriptors ({error}): new connections are "
                    "closed at once until some free up; a count follows every "
                    "{interval} s",
                    error=event.get("acceptError", "EMFILE"),
                    interval=self.interval,
                )
                self._reporter.start(self.interval, now=False)
        elif log_format not in ACCEPT_QUIET:
            self.observer(event)

    def _report(self) -> None:
        """
        Log the count since the last report, or that it is over.
        """
        count, self._refused_since_report = self._refused_since_report, 0
        if count:
            self.log.warn(
                "{count} new connections closed for lack of file descriptors "
                "in the last {interval} s",
                count=count,
                interval=self.interval,
            )
            return
        self._reporter.stop()
        self.log.info(
            "File descriptors available again: accepting new connections "
            "({total} closed for lack of them so far)",
            total=self.refused_total,
        )


@implementer(IStreamServerEndpoint)
class SummarizedAcceptErrors:
    """
    A server endpoint whose listening port logs accept errors through an
    L{AcceptErrorSummary}.

    (See L{route_port_log}: a port of another kind is left alone.)
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, summary: AcceptErrorSummary
    ) -> None:
        self.endpoint = endpoint
        self.summary = summary

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint, then route the port's log events.

        @param protocolFactory: the factory to listen with.
        @return: the wrapped endpoint's L{Deferred} port.
        """
        return self.endpoint.listen(protocolFactory).addCallback(self._route)

    def _route(self, port: IListeningPort) -> IListeningPort:
        """
        @param port: the port listened on.
        @return: C{port}, its log events now going through the summary.
        """
        route_port_log(port, self.summary)
        return port
