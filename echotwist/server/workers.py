"""
C{twistd echo --workers N}: several processes serving the same ports.

The parent (the twistd process, with the pidfile) listens on every C{--port}
through its endpoint, as a single process would, but never accepts: it hands
each listening socket to N worker processes (C{python -m
echotwist.server.workers}), which adopt it with
L{AdoptedStreamServerEndpoint} and share its accept queue.
A worker that stops only stops accepting (L{SharedSocketEndpoint}): the
parent alone closes the sockets, and removes a UNIX socket's path.
The parent restarts a worker that dies, signals them all to stop when it is
stopped itself, and exits once they have.

A worker sends its counts to the parent as a JSON line on its stdout every
L{REPORT_INTERVAL} seconds, for C{--metrics}; it logs to its stderr, which the
parent relays into its own log; and it exits when its stdin closes, so a
parent killed outright leaves no workers behind.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProcessTransport,
    IReactorCore,
    IReactorProcess,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.stdio import StandardIO
from twisted.logger import (
    FileLogObserver,
    Logger,
    eventAsText,
    globalLogBeginner,
)
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.reflect import namedModule, qual

from echotwist._twisted_private import listen_now, listening_socket
from echotwist.server.counts import Snapshot, take_snapshot
from echotwist.server.endpoints import inner_description, proxied
from echotwist.server.listeners import NamedEndpoint, listeners
from echotwist.server.options import Options, make_factory, make_proxy_settings
from echotwist.server.protocol import EchoFactory
from echotwist.server.proxy import ProxyEndpoint
from echotwist.server.shutdown import ShutdownService

#: Seconds between a worker's reports to its parent.
REPORT_INTERVAL = 1.0

#: Seconds to wait before restarting a worker that died; the wait doubles
#: each time it dies again within L{STABLE_AFTER} of its start, up to
#: L{MAX_RESTART_DELAY}.
RESTART_DELAY = 1.0

#: The longest wait before restarting a worker that keeps dying.
MAX_RESTART_DELAY = 60.0

#: Seconds a worker must have run for its next restart to wait only
#: L{RESTART_DELAY} again.
STABLE_AFTER = 60.0

#: Seconds a stopping worker gets before it is killed.
STOP_TIMEOUT = 10.0

#: Longest line a worker may send before the parent drops it.
_MAX_LINE = 65536


#: C{twistd echo} options that concern the parent only (UDP is served by the
#: parent: a datagram socket has no accept queue to share).
_PARENT_ONLY = frozenset({"workers", "metrics", "backlog", "udp", "info", "info-udp"})


def worker_args(config: Options) -> list[str]:
    """
    The options a worker needs to serve as C{twistd echo} was told to.

    @param config: the parent's parsed C{twistd echo} options.
    @return: every flag set and every parameter with a value, except those
        that concern the listening sockets or the parent.
    """
    args: list[str] = []
    for name, *_ in config.optFlags:
        if name not in _PARENT_ONLY and config[name]:
            args.append(f"--{name}")
    for parameter in (str(entry[0]) for entry in config.optParameters):
        if parameter not in _PARENT_ONLY and config[parameter] is not None:
            args += [f"--{parameter}", str(config[parameter])]
    for network in config["proxy-from"]:
        args += ["--proxy-from", network]
    return args


class _Lines:
    """
    Split a byte stream into lines, dropping any line too long to be ours.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """
        @param data: the next chunk.
        @return: the lines it completes, without their newlines.
        """
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if len(self._buffer) > _MAX_LINE:
            self._buffer = b""
        return lines


class WorkerProcess(ProcessProtocol):
    """
    The parent's end of one worker: its reports, its log, its exit.

    @ivar index: the worker's number, 1 to N.
    @ivar started: when it was started, by the pool's clock.
    @ivar snapshot: its latest report, or L{None} before the first.
    @ivar ended: fires when the process has exited.
    """

    log = Logger()

    def __init__(self, pool: WorkerPool, index: int, started: float) -> None:
        self.pool = pool
        self.index = index
        self.started = started
        self.snapshot: Snapshot | None = None
        self.ended: Deferred[None] = Deferred()
        self._reports = _Lines()
        self._log_lines = _Lines()

    def outReceived(self, data: bytes) -> None:
        """
        Keep the latest report.

        @param data: JSON lines from the worker's stdout.
        """
        for line in self._reports.feed(data):
            try:
                self.snapshot = Snapshot.from_json(line)
            except ValueError:
                self.log.warn(
                    "worker {index}: bad report {line!r}", index=self.index, line=line
                )

    def errReceived(self, data: bytes) -> None:
        """
        Relay the worker's log lines into ours.

        @param data: text from the worker's stderr.
        """
        for line in self._log_lines.feed(data):
            self.log.info(
                "worker {index}: {line}",
                index=self.index,
                line=line.decode("utf-8", "replace"),
            )

    def processEnded(self, reason: Failure) -> None:
        """
        Tell the pool, which decides whether to start another.

        @param reason: how the process ended.
        """
        self.pool.worker_ended(self, reason)
        self.ended.callback(None)


class WorkerPool(Service):
    """
    Listen on some ports and keep N workers serving them.

    @ivar workers: the running workers, by index.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        descriptions: Sequence[str],
        count: int,
        worker_args: Sequence[str],
        factory: Factory,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """
        @param reactor: an L{IReactorProcess} and L{IReactorTime} provider.
        @param descriptions: the server endpoint descriptions to listen on.
        @param count: how many workers to run.
        @param worker_args: C{twistd echo} options each worker serves with.
        @param factory: the factory the parent listens with; it names the
            ports in the log but never builds a protocol.
        @param stop_timeout: seconds workers get to exit after SIGTERM (their
            graceful shutdown) before they are killed.
        """
        self._reactor = reactor
        self._descriptions = list(descriptions)
        self._count = count
        self._worker_args = list(worker_args)
        self._factory = factory
        self._stop_timeout = stop_timeout
        self._ports: list[IListeningPort] = []
        self._restarts: dict[int, IDelayedCall] = {}
        self._delays: dict[int, float] = {}
        self.workers: dict[int, WorkerProcess] = {}

    def privilegedStartService(self) -> None:
        """
        Listen on every port, and stop the parent from accepting on them.

        @raise ListenerError: naming the port, whatever it failed with.
        """
        super().privilegedStartService()
        for description in self._descriptions:
            # A haproxy: port's socket is its inner description's; each
            # worker reads the PROXY headers (see _spawn).
            inner = inner_description(description)
            endpoint = NamedEndpoint(
                endpoints.serverFromString(self._reactor, inner), "port", description
            )
            port = listen_now(endpoint, self._factory, description)
            port.stopReading()  # type: ignore[attr-defined]
            self._ports.append(port)

    def startService(self) -> None:
        """
        Start the workers.
        """
        super().startService()
        for index in range(1, self._count + 1):
            self._spawn(index)

    def stopService(self) -> Deferred[None]:
        """
        Ask every worker to stop (SIGTERM), kill those still running after
        C{stop_timeout}, then close the ports.

        @return: fires once every worker has exited.
        """
        super().stopService()
        for call in self._restarts.values():
            call.cancel()
        self._restarts.clear()
        workers = list(self.workers.values())
        for worker in workers:
            _signal(worker, "TERM")
        clock: IReactorTime = self._reactor
        kill = clock.callLater(self._stop_timeout, self._kill, workers)
        ended: Deferred[None] = DeferredList(
            [worker.ended for worker in workers]
        ).addCallback(lambda _: None)

        def close(result: None) -> Deferred[None]:
            if kill.active():
                kill.cancel()
            closing = [maybeDeferred(port.stopListening) for port in self._ports]
            self._ports.clear()
            return DeferredList(closing).addCallback(lambda _: None)

        return ended.addCallback(close)

    def snapshots(self) -> Mapping[str, Snapshot]:
        """
        @return: the latest report of each running worker, by index.
        """
        return {
            str(index): worker.snapshot
            for index, worker in sorted(self.workers.items())
            if worker.snapshot is not None
        }

    def worker_ended(self, worker: WorkerProcess, reason: Failure) -> None:
        """
        Forget a worker that has exited, and start another in its place
        unless the pool is stopping: after L{RESTART_DELAY}, or twice the
        last wait if it ran for less than L{STABLE_AFTER}, so that a worker
        that can't start is not restarted every second forever.

        @param worker: the worker.
        @param reason: how it ended.
        """
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if not self.running:
            return
        clock: IReactorTime = self._reactor
        previous = self._delays.get(worker.index)
        if previous is None or clock.seconds() - worker.started >= STABLE_AFTER:
            delay = RESTART_DELAY
        else:
            delay = min(previous * 2, MAX_RESTART_DELAY)
        self._delays[worker.index] = delay
        self.log.warn(
            "worker {index} exited ({why}); restarting it in {delay} s",
            index=worker.index,
            why=reason.getErrorMessage(),
            delay=delay,
        )
        self._restarts[worker.index] = clock.callLater(delay, self._spawn, worker.index)

    def _spawn(self, index: int) -> None:
        """
        Start worker C{index}, giving it the ports as file descriptors 3 on.

        @param index: its number.
        """
        self._restarts.pop(index, None)
        fds: dict[int, int | str] = {0: "w", 1: "r", 2: "r"}
        argv = [
            sys.executable,
            "-m",
            "echotwist.server.workers",
            "--worker",
            str(index),
        ]
        argv += ["--reactor", type(self._reactor).__module__]
        ports = zip(self._ports, self._descriptions, strict=True)
        for child_fd, (port, description) in enumerate(ports, start=3):
            sock = listening_socket(port)
            fds[child_fd] = sock.fileno()
            flag = ":haproxy" if proxied(description) else ""
            argv += ["--fd", f"{child_fd}:{sock.family.name}{flag}"]
        clock: IReactorTime = self._reactor
        worker = WorkerProcess(self, index, clock.seconds())
        spawner: IReactorProcess = self._reactor
        spawner.spawnProcess(
            worker,
            sys.executable,
            [*argv, "--", *self._worker_args],
            None,
            None,
            childFDs=fds,
        )
        self.workers[index] = worker
        self.log.info("worker {index} started", index=index)

    def _kill(self, workers: list[WorkerProcess]) -> None:
        """
        Kill the workers that did not stop in time.

        @param workers: those asked to stop.
        """
        for worker in workers:
            if not worker.ended.called:
                self.log.warn(
                    "worker {index} did not stop: killing it", index=worker.index
                )
                _signal(worker, "KILL")


def _signal(worker: WorkerProcess, name: str) -> None:
    """
    Send a worker a signal unless it has already exited.

    @param worker: the worker.
    @param name: the signal, C{TERM} or C{KILL}.
    """
    transport = cast(IProcessTransport, worker.transport)
    with suppress(ProcessExitedAlready):
        transport.signalProcess(name)


class WorkerOptions(usage.Options):
    """
    Options for C{python -m echotwist.server.workers}, as L{WorkerPool}
    gives them.

    C{--worker N} is not read by the worker: it labels the process, so that
    C{ps} shows which pid is the parent's "worker N" (and
    C{benchmarks/scaling.py} passes it too).
    """

    optParameters = [
        ["worker", None, "1", "This worker's number (labels the process only)."],
        [
            "reactor",
            None,
            None,
            "The module of the parent's reactor, whose install() installs one "
            "for this worker (else Twisted's default).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["fds"] = []
        self["echo"] = []

    def opt_fd(self, value: str) -> None:
        """
        Serve on inherited listening socket FD:FAMILY (AF_INET, AF_INET6 or
        AF_UNIX), FD:FAMILY:haproxy if its connections start with a PROXY
        header; repeat for each.
        """
        fd, family, *flags = value.split(":")
        self["fds"].append((int(fd), socket.AddressFamily[family], "haproxy" in flags))

    def parseArgs(self, *echo: str) -> None:
        """
        @param echo: C{twistd echo} options to serve with.
        """
        self["echo"] = list(echo)


class _Reports(Protocol):
    """
    A worker's stdio: reports go out on stdout; stdin closing means the
    parent is gone.

    @ivar gone: fires when stdin closes.
    """

    def __init__(self) -> None:
        self.gone: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        The parent closed our stdin, or died: time to go.

        @param reason: ignored.
        """
        if not self.gone.called:
            self.gone.callback(None)


def start_worker(reactor: IReactorCore, *argv: str) -> EchoFactory:
    """
    Serve the inherited sockets as C{twistd echo} would serve its ports; the
    listeners are services, stopped as the reactor shuts down.

    @param reactor: the reactor.
    @param argv: the command line, as L{WorkerOptions} reads it.
    @return: the factory serving them.
    @raise SystemExit: if a socket can't be listened on, so that the worker
        exits with an error (and the parent starts another).
    """
    options = WorkerOptions()
    options.parseOptions(list(argv))
    config = Options()
    config.parseOptions(options["echo"])
    clock = cast(IReactorTime, reactor)
    factory = make_factory(config, clock)
    proxy = make_proxy_settings(config, clock)
    service = MultiService()
    ShutdownService(
        factory, reactor, timeout=config["shutdown-timeout"]
    ).setServiceParent(service)
    adopted: list[IStreamServerEndpoint] = []
    for fd, family, haproxy in options["fds"]:
        endpoint = endpoints.AdoptedStreamServerEndpoint(reactor, fd, family)
        adopted.append(ProxyEndpoint(endpoint, proxy) if haproxy else endpoint)
    for listener in listeners(adopted, factory, clock, shared=True):
        listener.setServiceParent(service)
    try:
        service.startService()
    except Exception as e:
        raise SystemExit(f"can't listen on the inherited sockets: {e}") from None
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    return factory


def run_worker(reactor: IReactorCore, *argv: str) -> Deferred[None]:
    """
    Serve the inherited sockets until stdin closes or a signal stops us,
    reporting our counts on stdout; log the reactor's class first, as
    twistd does.

    @param reactor: the reactor.
    @param argv: the command line, as L{WorkerOptions} reads it.
    @return: fires when the parent has gone.
    @raise SystemExit: if a socket can't be listened on.
    """
    Logger().info("reactor class: {reactor}", reactor=qual(type(reactor)))
    factory = start_worker(reactor, *argv)
    reports = _Reports()
    StandardIO(reports, reactor=reactor)

    def report() -> None:
        line = take_snapshot(factory).to_json() + "\n"
        reports.transport.write(line.encode())  # type: ignore[union-attr]

    task.LoopingCall(report).start(REPORT_INTERVAL)
    return reports.gone


def install_reactor(module_name: str | None) -> None:
    """
    Install the reactor the parent runs on, so that workers serve as the
    parent would have (the echotwist-epoll reactor by default, or the one
    C{twistd --reactor} chose).

    @param module_name: the module that defines the parent reactor's class;
        Twisted's reactor modules (and L{echotwist.server.reactor}) have an
        C{install()}.  L{None}, or a module without one, leaves Twisted's
        default to be installed.
    """
    if module_name is None:
        return
    install = getattr(namedModule(module_name), "install", None)
    if install is not None:
        install()


def main() -> None:
    """
    Run one worker, logging bare lines to stderr for the parent to relay.
    """
    globalLogBeginner.beginLoggingTo(
        [
            FileLogObserver(
                sys.stderr,
                lambda event: eventAsText(event, includeTimestamp=False) + "\n",
            )
        ],
        redirectStandardIO=False,
    )
    argv = sys.argv[1:]
    options = WorkerOptions()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        raise SystemExit(f"python -m echotwist.server.workers: {e}") from None
    install_reactor(options["reactor"])
    task.react(run_worker, argv)


if __name__ == "__main__":
    main()
