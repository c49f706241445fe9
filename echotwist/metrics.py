"""
Prometheus metrics for C{twistd echo --metrics ENDPOINT}.

L{EchoCollector} turns L{Snapshot}s into samples when Prometheus scrapes;
L{metrics_service} serves them with C{prometheus_client}'s Twisted
integration at C{/metrics}.  Every sample carries a C{worker} label: C{0} is
the twistd process itself, and C{1}..C{N} the workers of C{--workers N} (which
then accept every TCP connection, so worker C{0} counts only UDP).
C{sum without (worker) (...)} gives the service's totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import blockingCallFromThread
from twisted.web.resource import Resource
from twisted.web.server import Site

from echotwist.snapshot import Snapshot

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


def metrics_service(description: str, sources: Sources) -> IService:
    """
    Serve the metrics over HTTP at C{/metrics}.

    C{prometheus_client} collects in a thread-pool thread, so the snapshots
    are taken in the reactor thread, where the counters change.

    @param description: the server endpoint, e.g. C{tcp:9100}.
    @param sources: as for L{EchoCollector}.
    @return: a service listening on C{description}.
    """
    from prometheus_client.twisted import MetricsResource
    from twisted.internet import reactor

    threads = cast(IReactorFromThreads, reactor)

    def in_reactor() -> Mapping[str, Snapshot]:
        return blockingCallFromThread(threads, sources)

    registry = metrics_registry(in_reactor)
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    site = Site(root)
    site.noisy = False
    return strports.service(description, site)
