"""
The C{twistd echo} command: the service its options describe.

C{twisted/plugins/echotwist_plugin.py} points twistd here, in the way
L{twisted.tap.portforward} serves C{twistd portforward}; the options
themselves are L{echotwist.server.options}.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from typing import IO, Any

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from echotwist._twisted_private import report_start_failure
from echotwist.server.accept_errors import AcceptErrorSummary
from echotwist.server.collector import CollectorTuning
from echotwist.server.counts import Snapshot, local_snapshots, merged_snapshots
from echotwist.server.endpoints import (
    ADVICE,
    ListenerError,
    failure_reason,
    server_endpoint,
)
from echotwist.server.info import InfoDatagramProtocol, InfoFactory
from echotwist.server.listeners import NamedEndpoint, listeners
from echotwist.server.options import Options, make_factory, make_proxy_settings
from echotwist.server.preflight import check_stream, check_udp, udp_value
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

    A port that can't be listened on ends twistd with one line naming the
    option and the value as typed, and the reason, rather than a traceback:
    in the foreground on the process's own standard error (not twistd's
    log, which would mark it C{[stderr#error]}), removing the pidfile if
    one was asked for (twistd removes it only after an C{Exception}, not a
    C{SystemExit}); daemonised (where L{preflight} missed it) in the log,
    and through twistd's status pipe to the parent, which shows it in its
    own C{An error has occurred} frame.

    @ivar foreground: whether twistd runs with C{-n}.
    @ivar typed: what the user typed for each full endpoint description.
    @ivar stderr: where the foreground's line goes (L{None}: the process's
        own standard error, C{sys.__stderr__}).
    """

    log = Logger()
    stderr: IO[str] | None = None

    def __init__(
        self,
        foreground: bool,
        twistd_config: Any = None,
        typed: Mapping[str, str] | None = None,
    ) -> None:
        """
        @param foreground: whether twistd runs with C{-n}.
        @param twistd_config: twistd's own options, if it runs us: a
            daemonising twistd's parent is told of a failure through them.
        @param typed: what was typed for each description, for the message.
        """
        super().__init__()
        self.foreground = foreground
        self.twistd_config = twistd_config
        self.typed = dict(typed or {})

    def privilegedStartService(self) -> None:
        """
        Start listening (before twistd sheds privileges).

        @raise SystemExit: in the foreground, naming the address if a port
            can't be listened on.
        """
        try:
            super().privilegedStartService()
        except (ListenerError, CannotListenError) as e:
            message = f"twistd echo: {as_typed(e, self.typed)}"
            if self.foreground:
                print(message, file=self.stderr or sys.__stderr__, flush=True)
                pidfile = (self.twistd_config or {}).get("pidfile")
                if pidfile:
                    with suppress(OSError):
                        os.remove(pidfile)
                raise SystemExit(1) from None
            self.log.error("{line}", line=message)
            if self.twistd_config is not None and report_start_failure(
                self.twistd_config, without_advice(as_typed(e, self.typed))
            ):
                raise SystemExit(1) from None
            raise


def makeService(config: Options) -> MultiService:
    """
    Build the echo service: one listener per C{--port}, one shared factory.

    @param config: parsed L{Options}.
    @return: a L{MultiService} of the listeners, the metrics port if any,
        and the collector's tuning (L{CollectorTuning}).
    """
    from twisted.internet import reactor

    factory = make_factory(config, reactor)
    proxy = make_proxy_settings(config, reactor)
    twistd_options = config.parent
    daemon = twistd_options is not None and not twistd_options.get("nodaemon", True)
    service = EchoService(not daemon, twistd_options, config["typed"])
    sources: Callable[[], Mapping[str, Snapshot]]
    udp = None
    if config["udp"] is not None:
        udp = EchoDatagramProtocol(
            reactor, rate=config["udp-rate"], burst=config["udp-burst"]
        )
    sources = partial(local_snapshots, factory, [] if udp is None else [udp])
    pool = None
    if config["workers-warning"] is not None:
        # Logged once logging starts (twisted.logger keeps it until then).
        EchoService.log.warn("{line}", line=config["workers-warning"])
    if config["workers"] > 1:
        pool = WorkerPool(
            reactor,
            config["ports"],
            config["workers"],
            worker_args(config),
            factory,
            stop_timeout=config["shutdown-timeout"] + STOP_TIMEOUT,
            reuseport=True,
        )
        # The summary adds up every worker's final report; metrics show
        # the running workers.
        totals = partial(merged_snapshots, sources, pool.totals)
        sources = partial(merged_snapshots, sources, pool.snapshots)
    serving = ShutdownService(
        factory,
        reactor,
        timeout=config["shutdown-timeout"],
        counts=sources if pool is None else totals,
    )
    serving.setServiceParent(service)
    if daemon:
        preflight(config)
    summary = AcceptErrorSummary(reactor)
    if udp is not None:
        interface, port = config["udp"]
        UDPListener(
            "udp", port, udp, interface=interface, maxPacketSize=UDP_MAX_DATAGRAM
        ).setServiceParent(serving)
    if pool is not None:
        pool.setServiceParent(serving)
    else:
        ports = (
            NamedEndpoint(
                server_endpoint(reactor, d, proxy), "port", config["typed"][d]
            )
            for d in config["ports"]
        )
        for listener in listeners(ports, factory, reactor, summary=summary):
            listener.setServiceParent(serving)
    if config["info"] is not None:
        info = NamedEndpoint(
            server_endpoint(reactor, config["info"], proxy), "info", config["info"]
        )
        for listener in listeners(
            [info], InfoFactory(reactor), reactor, summary=summary
        ):
            listener.setServiceParent(serving)
    if config["info-udp"] is not None:
        interface, port = config["info-udp"]
        info_udp = InfoDatagramProtocol(
            reactor, rate=config["udp-rate"], burst=config["udp-burst"]
        )
        UDPListener("info-udp", port, info_udp, interface=interface).setServiceParent(
            serving
        )
    if config["metrics"] is not None:
        from echotwist.server.metrics import metrics_service

        metrics_service(config["metrics"], sources, reactor, summary).setServiceParent(
            service
        )
    CollectorTuning(reactor).setServiceParent(service)
    return service


class UDPListener(internet.UDPServer):
    """
    A UDP listener (C{--udp}, C{--info-udp}): a failure to listen is a
    L{ListenerError} naming the option.
    """

    def __init__(self, option: str, *args: Any, **kwargs: Any) -> None:
        """
        @param option: the option, without its dashes.
        @param args: as for L{internet.UDPServer}: the port, the protocol.
        @param kwargs: as for L{internet.UDPServer}.
        """
        super().__init__(*args, **kwargs)
        self.option = option

    def privilegedStartService(self) -> None:
        """
        Listen.

        @raise ListenerError: naming the option and the reason.
        """
        try:
            super().privilegedStartService()
        except Exception as e:
            port, _ = self.args
            value = udp_value(self.kwargs.get("interface", ""), port)
            raise ListenerError(self.option, value, failure_reason(e)) from e


def preflight(config: Options) -> None:
    """
    Check that every listener will be able to listen, while a daemonising
    twistd still has the terminal (see L{echotwist.server.preflight}).

    @param config: parsed L{Options}.
    @raise SystemExit: with one line naming the option and the reason.
    """
    try:
        for description in config["ports"]:
            check_stream(description)
        if config["metrics"] is not None:
            check_stream(config["metrics"], "metrics")
        if config["info"] is not None:
            check_stream(config["info"], "info")
        if config["udp"] is not None:
            check_udp(*config["udp"])
        if config["info-udp"] is not None:
            interface, port = config["info-udp"]
            check_udp(interface, port, "info-udp")
    except ListenerError as e:
        raise SystemExit(f"twistd echo: {as_typed(e, config['typed'])}") from None


def without_advice(line: str) -> str:
    """
    @param line: a listener's failure, as L{as_typed} says it.
    @return: C{line} without the advice L{failure_reason} adds, for twistd's
        status pipe, which shows only 98 bytes (the log has it all).
    """
    for advice in ADVICE.values():
        line = line.replace(f": {advice}", "")
    return line


def as_typed(error: Exception, typed: Mapping[str, str]) -> str:
    """
    @param error: why a listener failed.
    @param typed: what was typed for each full endpoint description.
    @return: C{error}'s message, naming the value as typed rather than the
        full description (no C{backlog=} the user never typed).
    """
    if isinstance(error, ListenerError) and error.description in typed:
        value = typed[error.description]
        return str(ListenerError(error.option, value, error.reason))
    return str(error)
