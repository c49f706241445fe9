"""
The C{twistd echo} command: the service its options describe.

C{twisted/plugins/echotwist_plugin.py} points twistd here, in the way
L{twisted.tap.portforward} serves C{twistd portforward}; the options
themselves are L{echotwist.server.options}.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError

from echotwist.server.counts import Snapshot, local_snapshots, merged_snapshots
from echotwist.server.endpoints import server_endpoint
from echotwist.server.info import InfoDatagramProtocol, InfoFactory
from echotwist.server.listeners import listeners
from echotwist.server.options import Options, make_factory, make_proxy_settings
from echotwist.server.shutdown import ShutdownService
from echotwist.server.udp import EchoDatagramProtocol
from echotwist.server.workers import STOP_TIMEOUT, WorkerPool, worker_args

__all__ = ["EchoService", "Options", "makeService"]

#: The largest UDP datagram the server reads whole (the most a UDP length
#: field can say); Twisted reads at most 8192 bytes by default, truncating
#: larger datagrams.
UDP_MAX_DATAGRAM = 65535


class EchoService(MultiService):
    """
    The listeners of one C{twistd echo}.

    In the foreground a port that can't be listened on ends twistd with one
    line naming it rather than a traceback.  A daemonising twistd must see the
    exception itself: its parent process reports it (and waits for nothing
    else).

    @ivar foreground: whether twistd runs with C{-n}.
    """

    def __init__(self, foreground: bool) -> None:
        super().__init__()
        self.foreground = foreground

    def privilegedStartService(self) -> None:
        """
        Start listening (before twistd sheds privileges).

        @raise SystemExit: in the foreground, naming the address if a port
            can't be listened on.
        """
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            if self.foreground:
                raise SystemExit(f"twistd echo: {e}") from None
            raise


def makeService(config: Options) -> MultiService:
    """
    Build the echo service: one listener per C{--port}, one shared factory.

    @param config: parsed L{Options}.
    @return: a L{MultiService} of the listeners.
    """
    from twisted.internet import reactor

    factory = make_factory(config, reactor)
    proxy = make_proxy_settings(config, reactor)
    twistd_options = config.parent
    daemon = twistd_options is not None and not twistd_options.get("nodaemon", True)
    service = EchoService(foreground=not daemon)
    sources: Callable[[], Mapping[str, Snapshot]]
    udp = None
    if config["udp"] is not None:
        udp = EchoDatagramProtocol(
            reactor, rate=config["udp-rate"], burst=config["udp-burst"]
        )
    sources = partial(local_snapshots, factory, [] if udp is None else [udp])
    pool = None
    if config["workers"] > 1:
        pool = WorkerPool(
            reactor,
            config["ports"],
            config["workers"],
            worker_args(config),
            factory,
            stop_timeout=config["shutdown-timeout"] + STOP_TIMEOUT,
        )
        sources = partial(merged_snapshots, sources, pool.snapshots)
    serving = ShutdownService(
        factory, reactor, timeout=config["shutdown-timeout"], counts=sources
    )
    serving.setServiceParent(service)
    if udp is not None:
        interface, port = config["udp"]
        internet.UDPServer(
            port, udp, interface=interface, maxPacketSize=UDP_MAX_DATAGRAM
        ).setServiceParent(serving)
    if pool is not None:
        pool.setServiceParent(serving)
    else:
        ports = (server_endpoint(reactor, d, proxy) for d in config["ports"])
        for listener in listeners(ports, factory, reactor):
            listener.setServiceParent(serving)
    if config["info"] is not None:
        info = server_endpoint(reactor, config["info"], proxy)
        for listener in listeners([info], InfoFactory(reactor), reactor):
            listener.setServiceParent(serving)
    if config["info-udp"] is not None:
        interface, port = config["info-udp"]
        info_udp = InfoDatagramProtocol(
            reactor, rate=config["udp-rate"], burst=config["udp-burst"]
        )
        internet.UDPServer(port, info_udp, interface=interface).setServiceParent(
            serving
        )
    if config["metrics"] is not None:
        from echotwist.server.metrics import metrics_service

        metrics_service(config["metrics"], sources).setServiceParent(service)
    return service
