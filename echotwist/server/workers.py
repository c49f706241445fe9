"""
C{twistd echo --workers N}: several processes serving the same ports.

The parent (the twistd process, with the pidfile) listens on every C{--port}
through its endpoint, as a single process would, but never accepts: it hands
its listening sockets to N worker processes (C{python -m
echotwist.server.workers}), which adopt them with
L{AdoptedStreamServerEndpoint}.  On a TCP port each worker gets a
C{SO_REUSEPORT} socket of its own, all kept open by the parent too, so that
the kernel spreads connections over them (L{echotwist.server.reuseport});
on other ports the workers share the one socket and its accept queue.
A worker that stops closes its own descriptor of each socket at once but
never the socket itself (L{SharedSocketEndpoint}): the parent alone closes
the sockets, and removes a UNIX socket's path.
The parent restarts a worker that dies, and when it is stopped itself closes
the listening sockets at once (with the workers' descriptors closed too, new
connections are refused during the drain, as with one process), signals
the workers to stop, and exits once they have.

A worker sends its counts to the parent as a JSON line on its stdout every
L{REPORT_INTERVAL} seconds, for C{--metrics}, and once more when it has
drained its connections (its final counts, with those it closed at the
shutdown timeout: the parent's summary adds these up); it logs to its
stderr, which the parent relays into its own log; and it stops when its
stdin closes, so a parent killed outright leaves no workers behind: each
closes its listening descriptors at once (the port is free for a restart),
drains its connections, and exits.
"""

from __future__ import annotations

import itertools
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Any, cast

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
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
from zope.interface import implementer

from echotwist._twisted_private import (
    close_without_shutdown,
    listen_now,
    listening_socket,
)
from echotwist.cli import print_version
from echotwist.server.counts import Snapshot, take_snapshot
from echotwist.server.endpoints import inner_description, proxied
from echotwist.server.listeners import NamedEndpoint, listeners
from echotwist.server.options import Options, make_factory, make_proxy_settings
from echotwist.server.protocol import EchoFactory
from echotwist.server.proxy import ProxyEndpoint
from echotwist.server.reuseport import ReusePortReactor, more_sockets, one_per_worker
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

#: Seconds a worker waits for its final report to be written to the parent.
FINAL_REPORT_TIMEOUT = 5.0

#: Numbers the workers' lives, so that each life's counts are its own.
_lives = itertools.count(1)


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
    @ivar life: this process's label among every worker process the pool
        started (a restarted worker gets a new one).
    @ivar started: when it was started, by the pool's clock.
    @ivar snapshot: its latest report, or L{None} before the first.
    @ivar ended: fires when the process has exited.
    """

    log = Logger()

    def __init__(self, pool: WorkerPool, index: int, started: float) -> None:
        self.pool = pool
        self.index = index
        self.life = f"{index}.{next(_lives)}"
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
        reuseport: bool = False,
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
        @param reuseport: whether to give each worker its own C{SO_REUSEPORT}
            socket on the TCP ports (see L{echotwist.server.reuseport}),
            rather than one socket they all share.
        """
        self._reactor = reactor
        self._descriptions = list(descriptions)
        self._count = count
        self._worker_args = list(worker_args)
        self._factory = factory
        self._stop_timeout = stop_timeout
        self._reuseport = reuseport
        self._ports: list[IListeningPort] = []
        #: For each port, the sockets of workers 2 to N where each worker
        #: has its own (worker 1 has the port's); empty where they share it.
        self._own: list[list[socket.socket]] = []
        self._restarts: dict[int, IDelayedCall] = {}
        self._delays: dict[int, float] = {}
        self._retired = Snapshot()
        self._final: dict[str, Snapshot] = {}
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
            own = self._reuseport and self._count > 1 and one_per_worker(inner)
            reactor = ReusePortReactor(self._reactor) if own else self._reactor
            endpoint = NamedEndpoint(
                endpoints.serverFromString(reactor, inner), "port", description
            )
            port = listen_now(endpoint, self._factory, description)
            port.stopReading()  # type: ignore[attr-defined]
            close_without_shutdown(port)
            self._ports.append(port)
            more: list[socket.socket] = []
            if own:
                more = more_sockets(port, self._count - 1, reactor.backlog)
            self._own.append(more)

    def startService(self) -> None:
        """
        Start the workers.
        """
        super().startService()
        for index in range(1, self._count + 1):
            self._spawn(index)

    def stopService(self) -> Deferred[None]:
        """
        Close the ports at once, ask every worker to stop (SIGTERM; each
        closes its descriptors of the ports as it does, so that the sockets
        close and new connections are refused while the workers drain),
        and kill those still running after C{stop_timeout}.

        @return: fires once every worker has exited and the ports are
            closed.
        """
        super().stopService()
        for call in self._restarts.values():
            call.cancel()
        self._restarts.clear()
        closing = [maybeDeferred(port.stopListening) for port in self._ports]
        self._ports.clear()
        for sock in itertools.chain.from_iterable(self._own):
            sock.close()
        self._own.clear()
        workers = list(self.workers.values())
        for worker in workers:
            _signal(worker, "TERM")
        clock: IReactorTime = self._reactor
        kill = clock.callLater(self._stop_timeout, self._kill, workers)

        def ended(result: object) -> None:
            if kill.active():
                kill.cancel()

        waiting: list[Deferred[Any]] = [worker.ended for worker in workers]
        return DeferredList(waiting + closing).addCallback(ended)

    def snapshots(self) -> Mapping[str, Snapshot]:
        """
        @return: the latest report of each running worker, by index.
        """
        return {
            str(index): worker.snapshot
            for index, worker in sorted(self.workers.items())
            if worker.snapshot is not None
        }

    def totals(self) -> Mapping[str, Snapshot]:
        """
        The counts of every worker process the pool has run, for the
        shutdown summary: the latest report of each running one and the
        last (after a graceful stop, the final) report of each that exited
        while the pool was stopping, by life; those that exited before
        (and were restarted) are summed up as C{retired}.

        @return: the counts, by label.
        """
        totals = {"retired": self._retired, **self._final}
        for worker in self.workers.values():
            if worker.snapshot is not None:
                totals[worker.life] = worker.snapshot
        return totals

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
        last = worker.snapshot or Snapshot()
        if not self.running:
            self._final[worker.life] = last
            return
        self._retired += replace(last, open_connections=0)
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
        ports = zip(self._ports, self._own, self._descriptions, strict=True)
        for child_fd, (port, own, description) in enumerate(ports, start=3):
            sock = own[index - 2] if own and index > 1 else listening_socket(port)
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

    synopsis = "Usage: python -m echotwist.server.workers [options] -- ECHO-OPTIONS"
    longdesc = (
        "One worker of twistd echo --workers N: it serves the listening sockets "
        "the parent passes it (--fd), with the twistd echo options after --, "
        "reports its counts to the parent on its stdout, and stops when its "
        "stdin closes. The parent starts it; it is not meant to be run by hand."
    )

    def opt_version(self) -> None:
        """
        Display echotwist's version (and Twisted's) and exit.
        """
        print_version("python -m echotwist.server.workers")

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
        """Serve inherited socket FD:FAMILY[:haproxy] (AF_INET, AF_INET6, AF_UNIX)."""
        fd, family, *flags = value.split(":")
        self["fds"].append((int(fd), socket.AddressFamily[family], "haproxy" in flags))

    def parseArgs(self, *echo: str) -> None:
        """
        @param echo: C{twistd echo} options to serve with.
        """
        self["echo"] = list(echo)


@implementer(IHalfCloseableProtocol)
class _Reports(Protocol):
    """
    A worker's stdio: reports go out on stdout; stdin closing means the
    parent is gone.

    @ivar gone: fires when stdin closes.
    @ivar flushed: fires once stdout has been written out and closed.
    """

    def __init__(self) -> None:
        self.gone: Deferred[None] = Deferred()
        self.flushed: Deferred[None] = Deferred()

    def readConnectionLost(self) -> None:
        """
        The parent closed our stdin, or died: time to go.
        """
        if not self.gone.called:
            self.gone.callback(None)

    def writeConnectionLost(self) -> None:
        """
        Everything written to stdout has gone (or can't go: the parent has
        gone).
        """
        if not self.flushed.called:
            self.flushed.callback(None)

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Both ends are closed.

        @param reason: ignored.
        """
        self.readConnectionLost()
        self.writeConnectionLost()

    def final(self, snapshot: Snapshot, clock: IReactorTime) -> Deferred[None]:
        """
        Send the last report and close stdout, unless the parent has gone.

        @param snapshot: the final counts.
        @param clock: the reactor, to give up after L{FINAL_REPORT_TIMEOUT}.
        @return: fires once it is written, or can't be.
        """
        if self.gone.called or self.transport is None:
            return succeed(None)
        self.transport.write(snapshot.to_json().encode() + b"\n")
        self.transport.loseWriteConnection()  # type: ignore[attr-defined]
        waiting: Deferred[None] = Deferred()
        self.flushed.chainDeferred(waiting)
        return waiting.addTimeout(
            FINAL_REPORT_TIMEOUT, clock, onTimeoutCancel=lambda *a: None
        )


def start_worker(
    reactor: IReactorCore,
    *argv: str,
    final: Callable[[Snapshot], Deferred[None]] | None = None,
) -> EchoFactory:
    """
    Serve the inherited sockets as C{twistd echo} would serve its ports; the
    listeners are services, stopped as the reactor shuts down.

    @param reactor: the reactor.
    @param argv: the command line, as L{WorkerOptions} reads it.
    @param final: called, once the connections have drained and the
        summary is logged, with the final counts (those the summary gave),
        before the reactor goes on shutting down; what it returns is waited
        for.
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
    shutdown = ShutdownService(factory, reactor, timeout=config["shutdown-timeout"])
    shutdown.setServiceParent(service)
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

    def stop() -> Deferred[None]:
        stopping: Deferred[None] = service.stopService()
        if final is not None:
            stopping.addCallback(
                lambda _: final(
                    replace(
                        take_snapshot(factory), closed_at_shutdown=shutdown.aborted or 0
                    )
                )
            )
        return stopping

    reactor.addSystemEventTrigger("before", "shutdown", stop)
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
    reports = _Reports()
    clock = cast(IReactorTime, reactor)

    def final(snapshot: Snapshot) -> Deferred[None]:
        if reporting.running:
            reporting.stop()
        return reports.final(snapshot, clock)

    factory = start_worker(reactor, *argv, final=final)
    StandardIO(reports, reactor=reactor)

    def report() -> None:
        line = take_snapshot(factory).to_json() + "\n"
        reports.transport.write(line.encode())  # type: ignore[union-attr]

    reporting = task.LoopingCall(report)
    reporting.start(REPORT_INTERVAL)
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
