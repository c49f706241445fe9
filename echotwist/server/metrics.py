"""
Prometheus metrics for C{twistd echo --metrics ENDPOINT}.

L{EchoCollector} turns L{Snapshot}s into samples when Prometheus scrapes;
L{metrics_service} serves them at C{/metrics} from a L{MetricsPage}, in the
reactor thread.  Every sample carries a C{worker} label: C{0} is
the twistd process itself, and C{1}..C{N} the workers of C{--workers N} (which
then accept every TCP connection, so worker C{0} counts only UDP).
C{sum without (worker) (...)} gives the service's totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from io import BytesIO

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, TimeoutMixin, WrappingFactory
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from echotwist.server.accept_errors import AcceptErrorSummary
from echotwist.server.counts import Snapshot
from echotwist.server.listeners import NamedEndpoint, listeners
from echotwist.words import counted, were

#: The most metrics connections open at once: Prometheus opens one per
#: scrape; more are closed at once, so that connections that hang can't take
#: the descriptors the echo service needs.
MAX_CONNECTIONS = 16

#: Seconds a metrics connection may stay open in all, however it trickles:
#: a scrape takes milliseconds (Prometheus' own timeout is 10 s).
DEADLINE = 10.0

#: The most bytes a metrics connection may send: a request's line and
#: headers (at most 8 KiB are read), and what came in the same read.
MAX_READ = 16384

#: Where snapshots come from: worker label -> that worker's latest counts.
Sources = Callable[[], Mapping[str, Snapshot]]

#: (name, help, snapshot field) for each metric.
_METRICS = (
    ("echotwist_open_connections", "TCP connections open now.", "open_connections"),
    (
        "echotwist_connections",
        "TCP connections accepted.",
        "connections_total",
    ),
    (
        "echotwist_refused_connections",
        "TCP connections closed at once for being over --max-connections.",
        "refused_total",
    ),
    ("echotwist_bytes_echoed", "Bytes echoed over TCP.", "bytes_echoed"),
    ("echotwist_datagrams_echoed", "UDP datagrams echoed.", "datagrams_echoed"),
    (
        "echotwist_datagrams_dropped",
        "UDP datagrams received but not echoed.",
        "datagrams_dropped",
    ),
    (
        "echotwist_proxy_rejected_connections",
        "Connections to PROXY echo ports closed for their header or peer.",
        "proxy_rejected_total",
    ),
)


class EchoCollector(Collector):
    """
    Report the counts of every echotwist process, one C{worker} label each.
    """

    def __init__(self, sources: Sources) -> None:
        """
        @param sources: called at each scrape for the snapshots to report.
        """
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        """
        @return: one metric family per counter, with a sample per worker;
            C{echotwist_open_connections} is a gauge, the rest counters.
        """
        snapshots = sorted(self._sources().items(), key=lambda item: int(item[0]))
        for name, documentation, field in _METRICS:
            family: CounterMetricFamily | GaugeMetricFamily
            if field == "open_connections":
                family = GaugeMetricFamily(name, documentation, labels=["worker"])
            else:
                family = CounterMetricFamily(name, documentation, labels=["worker"])
            for worker, snapshot in snapshots:
                family.add_metric([worker], getattr(snapshot, field))
            yield family


def metrics_registry(sources: Sources) -> CollectorRegistry:
    """
    @param sources: as for L{EchoCollector}.
    @return: a registry of our own, holding only an L{EchoCollector}.
    """
    registry = CollectorRegistry()
    registry.register(EchoCollector(sources))
    return registry


class MetricsPage(Resource):
    """
    Prometheus text for one registry, rendered in the reactor thread at each
    scrape, so the snapshots are read where the counters change and no
    scrape waits on a thread pool the reactor may be stopping.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        """
        @param registry: what to report.
        """
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        """
        @return: the registry's samples as Prometheus text.
        """
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


class _Root(Resource):
    """
    The site's root: its children, and a plain 404 for anything else.
    """

    def getChild(self, path: bytes, request: Request) -> IResource:
        """
        @return: a 404 page (L{Resource}'s own is deprecated).
        """
        return notFound()


class MetricsRequest(Request):
    """
    A request to the metrics site, which takes no body: one that announces
    a body (a C{Content-Length} above 0, or C{chunked}) is answered C{413}
    as soon as its headers are read, and the connection closed, without
    reading the body or keeping any of it (twisted.web would spool a large
    one to a temporary file before answering).

    @ivar refused: whether it announced a body and was refused.
    """

    refused = False

    def gotLength(self, length: int | None) -> None:
        """
        The headers are read: refuse a request with a body.

        @param length: the body's C{Content-Length}, 0 for none, L{None} for
            a chunked one.
        """
        self.content = BytesIO()
        if length == 0:
            return
        self.refused = True
        # Not "Expect: 100-continue" after the refusal.
        self.requestHeaders.removeHeader(b"expect")
        transport = self.channel.transport
        assert transport is not None
        transport.write(REFUSED_BODY_RESPONSE)
        transport.loseConnection()

    def handleContentChunk(self, data: bytes) -> None:
        """
        Drop the body of a refused request (what came in the same read as
        its headers); keep nothing else either, as no body is accepted.

        @param data: a piece of the body.
        """

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        Serve the request, unless it was refused.

        @param command: the method.
        @param path: the path.
        @param version: the HTTP version.
        """
        if not self.refused:
            super().requestReceived(command, path, version)


#: The answer to a request that announces a body, sent before the body is
#: read.
REFUSED_BODY_RESPONSE = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 39\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"GET /metrics takes no request content.\n"
)


class MetricsChannel(HTTPChannel):
    """
    The metrics site's HTTP channel: one request per connection, whose
    request line and headers may take at most L{MAX_REQUEST_HEAD} bytes.
    """

    totalHeadersSize = 8192
    maxHeaders = 64

    def checkPersistence(self, request: http.Request, version: bytes) -> bool:
        """
        Close after every answer: a scrape is one request.

        @return: C{False}.
        """
        request.responseHeaders.setRawHeaders(b"connection", [b"close"])
        return False


#: The most bytes of a request line and headers the metrics site reads.
MAX_REQUEST_HEAD = MetricsChannel.totalHeadersSize


class MetricsSite(Site):
    """
    The metrics site: L{MetricsChannel}s and L{MetricsRequest}s, no idle
    timer of its own (L{Guard} has a deadline instead), and no access log:
    a scrape every 15 s is not news.
    """

    protocol = MetricsChannel  # type: ignore[assignment]
    requestFactory = MetricsRequest
    noisy = False

    def log(self, request: http.Request) -> None:
        """
        Log nothing per request.

        @param request: ignored.
        """


def metrics_site(sources: Sources) -> Site:
    """
    @param sources: as for L{EchoCollector}.
    @return: a site serving the metrics at C{/metrics}.
    """
    root = _Root()
    root.putChild(b"metrics", MetricsPage(metrics_registry(sources)))
    return MetricsSite(root, timeout=None)


class _Guarded(ProtocolWrapper, TimeoutMixin):
    """
    A metrics connection under a L{Guard}: aborted at the guard's deadline
    from when it was made, however it trickles, or once it has sent more
    than the guard's C{max_read} bytes.
    """

    factory: Guard

    def __init__(self, factory: Guard, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)  # type: ignore[arg-type]
        self.received = 0

    def connectionMade(self) -> None:
        """
        Start the deadline, which no byte received restarts.
        """
        self.setTimeout(self.factory.deadline)
        super().connectionMade()

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """
        Schedule on the guard's clock (L{TimeoutMixin} asks).
        """
        return self.factory.clock.callLater(period, func)

    def dataReceived(self, data: bytes) -> None:
        """
        Pass C{data} on; abort a connection that sends more than a request.

        @param data: bytes received.
        """
        self.received += len(data)
        super().dataReceived(data)
        transport = self.transport
        over = self.received > self.factory.max_read
        if over and transport is not None and not transport.disconnecting:  # type: ignore[attr-defined]
            transport.abortConnection()  # type: ignore[attr-defined]

    def timeoutConnection(self) -> None:
        """
        The deadline passed: abort (a clean close could wait on a client
        that does not read).
        """
        transport = self.transport
        if transport is not None:
            transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Stop the deadline.

        @param reason: why the connection ended.
        """
        self.setTimeout(None)
        super().connectionLost(reason)


class Guard(WrappingFactory):
    """
    Bound what metrics connections can hold: at most C{limit} open at once
    (more are closed as soon as they are accepted, with one log line when
    the limit is reached and one count when it frees), each aborted
    C{deadline} seconds after it was made or once it has sent more than
    C{max_read} bytes.

    @ivar refused_total: connections closed for being over the limit.
    """

    protocol = _Guarded
    noisy = False
    log = Logger()

    def __init__(
        self,
        site: IProtocolFactory,
        clock: IReactorTime,
        limit: int = MAX_CONNECTIONS,
        deadline: float = DEADLINE,
        max_read: int = MAX_READ,
    ) -> None:
        """
        @param site: the factory to guard (the metrics site).
        @param clock: the reactor, for the deadlines.
        @param limit: how many connections may be open at once.
        @param deadline: seconds each may stay open in all.
        @param max_read: bytes each may send.
        """
        super().__init__(site)
        self.clock = clock
        self.limit = limit
        self.deadline = deadline
        self.max_read = max_read
        self.refused_total = 0
        self._refused_since_full = 0

    def logPrefix(self) -> str:
        """
        @return: the site's prefix, so the port says C{Site starting on}.
        """
        prefix = getattr(self.wrappedFactory, "logPrefix", None)
        return str(prefix()) if prefix is not None else "MetricsSite"

    def buildProtocol(self, addr: IAddress | None) -> ProtocolWrapper | None:  # type: ignore[override]
        """
        @param addr: the peer's address.
        @return: a guarded channel, or L{None} (the port closes the
            connection) while C{limit} are open.
        """
        if len(self.protocols) >= self.limit:
            self.refused_total += 1
            if not self._refused_since_full:
                self.log.warn(
                    "Metrics connection limit ({limit}) reached: closing new "
                    "metrics connections until one ends",
                    limit=self.limit,
                )
            self._refused_since_full += 1
            return None
        return super().buildProtocol(addr)

    def unregisterProtocol(self, p: IProtocol) -> None:
        """
        Forget a connection; report the refusals if it freed a slot.

        @param p: the ended connection's wrapper.
        """
        super().unregisterProtocol(p)
        if self._refused_since_full:
            self.log.warn(
                "Below the metrics connection limit again; {count_text} {were} "
                "closed while it was reached",
                count=self._refused_since_full,
                count_text=counted(self._refused_since_full, "metrics connection"),
                were=were(self._refused_since_full),
            )
            self._refused_since_full = 0


def metrics_service(
    description: str,
    sources: Sources,
    reactor: IReactorTime,
    summary: AcceptErrorSummary | None = None,
) -> IService:
    """
    Serve the metrics over HTTP at C{/metrics}.

    @param description: the server endpoint, e.g. C{tcp:9100}.
    @param sources: as for L{EchoCollector}.
    @param reactor: the reactor to listen with.
    @param summary: where its accept errors are summed up (the echo ports'
        summary, so that descriptor exhaustion is one report).
    @return: a service listening on C{description}; starting it raises a
        L{ListenerError} naming C{--metrics} if it can't listen.
    """
    endpoint = NamedEndpoint(
        endpoints.serverFromString(reactor, description), "metrics", description
    )
    factory = Guard(metrics_site(sources), reactor)
    [service] = listeners([endpoint], factory, reactor, summary=summary)
    return service
