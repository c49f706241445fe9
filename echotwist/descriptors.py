"""
Listening sockets: keep descriptor exhaustion from flooding the log, and
share a listening socket between processes.

When C{accept()} fails with C{EMFILE}, Twisted's TCP port frees a reserved
descriptor, accepts and closes every pending connection and reserves the
descriptor again: the server stays up, serves the connections it has and
accepts again once descriptors free up.  But it logs three lines per
connection it closes, so a flood against a full descriptor table becomes a
log flood.  L{AcceptErrorSummary} takes those events from the port's logger
and logs one line when it starts, one count per C{interval} while it lasts
and one line when it is over.

A worker of C{--workers} accepts on a socket its parent made and shares with
the other workers: L{SharedSocketEndpoint} makes stopping it stop accepting
only, leaving the socket (and a UNIX socket's path) to the parent.

L{listeners} builds the listening services of C{twistd echo} and of each of
its workers alike; L{endpoint_kind} reads an endpoint description's type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, LogEvent, Logger, globalLogPublisher
from zope.interface import implementer

#: Seconds between counts while connections are being closed.
DEFAULT_INTERVAL = 10.0

#: The C{log_format}s of L{twisted.internet.tcp.Port}'s accept-error events:
#: the first two are counted, the others only said again.
_CLOSED = "EMFILE recovery: Closed socket from {address}"
_NOT_ACCEPTED = "Could not accept new connection ({acceptError})"
_QUIET = frozenset(
    {
        "EMFILE encountered; releasing reserved file descriptor.",
        "Re-reserving EMFILE recovery file descriptor.",
    }
)


def endpoint_kind(description: str) -> str:
    """
    @param description: a server endpoint description.
    @return: its type, in lower case: C{tcp} for C{TCP:9000:backlog=5}.
    """
    return description.split(":", 1)[0].lower()


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
        if log_format in (_CLOSED, _NOT_ACCEPTED):
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
        elif log_format not in _QUIET:
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

    Twisted's ports log through a private C{_logger}; a port without one is
    left alone.
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
        logger: Any = getattr(port, "_logger", None)
        if isinstance(logger, Logger):
            port._logger = Logger(  # type: ignore[attr-defined]
                namespace=logger.namespace, source=port, observer=self.summary
            )
        return port


@implementer(IListeningPort)
class _SharedPort:
    """
    A listening port whose socket other processes share: stopping it stops
    this process accepting, and the socket closes when the process exits.
    (Stopping the port itself would close the socket and, for a UNIX
    socket, remove its path: the other processes' too.)
    """

    def __init__(self, port: IListeningPort) -> None:
        self._port = port

    def startListening(self) -> None:
        """
        Accept again.
        """
        self._port.startReading()  # type: ignore[attr-defined]

    def stopListening(self) -> None:
        """
        Stop accepting.
        """
        self._port.stopReading()  # type: ignore[attr-defined]

    def getHost(self) -> IAddress:
        """
        @return: the address listened on.
        """
        return self._port.getHost()


@implementer(IStreamServerEndpoint)
class SharedSocketEndpoint:
    """
    An endpoint for a listening socket shared with other processes (such as
    an L{twisted.internet.endpoints.AdoptedStreamServerEndpoint}): its port
    only ever stops accepting, never closes the socket.
    """

    def __init__(self, endpoint: IStreamServerEndpoint) -> None:
        self.endpoint = endpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint.

        @param protocolFactory: the factory to listen with.
        @return: the port, whose C{stopListening} only stops accepting.
        """
        return self.endpoint.listen(protocolFactory).addCallback(_SharedPort)


def listeners(
    endpoints: Iterable[IStreamServerEndpoint],
    factory: IProtocolFactory,
    clock: IReactorTime,
    shared: bool = False,
) -> list[StreamServerEndpointService]:
    """
    The services that serve C{factory} on C{endpoints}, their accept errors
    summed up by one L{AcceptErrorSummary}.

    @param endpoints: the endpoints to listen on.
    @param factory: the factory to serve.
    @param clock: the reactor, for the summary's counts.
    @param shared: whether the sockets are shared with other processes (a
        worker's): stopping then only stops accepting (see
        L{SharedSocketEndpoint}).
    @return: one service per endpoint; starting one raises at once if its
        endpoint can't listen.
    """
    summary = AcceptErrorSummary(clock)
    services = []
    for endpoint in endpoints:
        summarized: IStreamServerEndpoint = SummarizedAcceptErrors(endpoint, summary)
        if shared:
            summarized = SharedSocketEndpoint(summarized)
        service = StreamServerEndpointService(summarized, factory)
        # As twisted.application.strports.service does: a failure to listen
        # is raised by startService, not just logged.
        service._raiseSynchronously = True
        services.append(service)
    return services
