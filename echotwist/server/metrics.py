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

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.internet.interfaces import IReactorTime
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from echotwist.server.accept_errors import AcceptErrorSummary
from echotwist.server.counts import Snapshot
from echotwist.server.listeners import NamedEndpoint, listeners

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


def metrics_site(sources: Sources) -> Site:
    """
    @param sources: as for L{EchoCollector}.
    @return: a site serving the metrics at C{/metrics}.
    """
    root = _Root()
    root.putChild(b"metrics", MetricsPage(metrics_registry(sources)))
    site = Site(root)
    site.noisy = False
    return site


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
    [service] = listeners([endpoint], metrics_site(sources), reactor, summary=summary)
    return service
