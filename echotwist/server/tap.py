"""
The C{twistd echo} command: the service its options describe.

C{twisted/plugins/echotwist_plugin.py} points twistd here, in the way
L{twisted.tap.portforward} serves C{twistd portforward}; the options
themselves are L{echotwist.server.options}.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import IO

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError

from echotwist.server.counts import Snapshot, local_snapshots, merged_snapshots
from echotwist.server.endpoints import Listener, listen_failure
from echotwist.server.listeners import listeners
from echotwist.server.options import Options, make_factory
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
    line on standard error naming the option and value typed, what is wrong
    and what would work (L{listen_failure}), rather than a traceback or a
    log line; the pidfile, if one was asked for, is removed.  A daemonising
    twistd must see the exception itself: its parent process reports it
    (and waits for nothing else).

    @ivar foreground: whether twistd runs with C{-n}.
    @ivar listeners: every endpoint listened on, for the message.
    @ivar pidfile: the pidfile twistd wrote, if any.
    @ivar stderr: where the line goes (L{None}: the process's own standard
        error, C{sys.__stderr__}).
    """

    stderr: IO[str] | None = None

    def __init__(
        self,
        foreground: bool,
        listeners: Sequence[Listener] = (),
        pidfile: str = "",
    ) -> None:
        super().__init__()
        self.foreground = foreground
        self.listeners = list(listeners)
        self.pidfile = pidfile

    def privilegedStartService(self) -> None:
        """
        Start listening (before twistd sheds privileges).

        @raise SystemExit: in the foreground, with status 1, once the line
            naming the address is written, if a port can't be listened on.
        """
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            if not self.foreground:
                raise
            # sys.stderr is twistd's log by now: the line goes to the
            # terminal, not into a log line marked [stderr#error].
            print(
                f"twistd echo: {listen_failure(self.listeners, e)}",
                file=self.stderr or sys.__stderr__,
                flush=True,
            )
            if self.pidfile:
                # twistd removes it only after an Exception, not SystemExit.
                with suppress(OSError):
                    os.remove(self.pidfile)
            raise SystemExit(1) from None


def makeService(config: Options) -> MultiService:
    """
    Build the echo service: one listener per C{--port}, one shared factory.

    @param config: parsed L{Options}.
    @return: a L{MultiService} of the listeners.
    """
    from twisted.internet import reactor

    factory = make_factory(config, reactor)
    twistd_options = config.parent
    daemon = twistd_options is not None and not twistd_options.get("nodaemon", True)
    pidfile = "" if twistd_options is None else twistd_options.get("pidfile", "")
    service = EchoService(not daemon, config["listeners"], pidfile)
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
        ports = (endpoints.serverFromString(reactor, d) for d in config["ports"])
        for listener in listeners(ports, factory, reactor):
            listener.setServiceParent(serving)
    if config["metrics"] is not None:
        from echotwist.server.metrics import metrics_service

        metrics_service(config["metrics"], sources).setServiceParent(service)
    return service
