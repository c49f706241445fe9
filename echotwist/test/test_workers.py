"""
Tests for L{echotwist.server.workers}: the parent's side, with a fake reactor.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ProcessDone, ProcessExitedAlready
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist._twisted_private import listening_socket
from echotwist.server import workers
from echotwist.server.accept_errors import AcceptErrorSummary
from echotwist.server.counts import Snapshot
from echotwist.server.endpoints import ListenerError
from echotwist.server.options import Options, parse_workers
from echotwist.server.protocol import EchoFactory
from echotwist.server.proxy import ProxyFactory
from echotwist.test.support import FakePort

#: A short time, exact in binary so that clock sums are exact too.
TICK = 2**-10


class FakeProcess:
    """
    A spawned process that records the signals sent to it.
    """

    def __init__(self, args: list[str], child_fds: dict[int, int | str]) -> None:
        self.args = args
        self.child_fds = child_fds
        self.signals: list[str] = []
        self.exited = False

    def signalProcess(self, name: str) -> None:
        if self.exited:
            raise ProcessExitedAlready()
        self.signals.append(name)


class FakeReactor(MemoryReactorClock):
    """
    A memory reactor whose TCP ports are L{FakePort}s and that spawns
    L{FakeProcess}es.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakePort] = []
        self.processes: list[tuple[ProcessProtocol, FakeProcess]] = []

    def listenTCP(
        self, port: int, factory: Factory, backlog: int = 50, interface: str = ""
    ) -> FakePort:
        fake = FakePort(port)
        self.ports.append(fake)
        return fake

    def listenUNIX(
        self,
        address: str,
        factory: Factory,
        backlog: int = 50,
        mode: int = 0o666,
        wantPID: int = 0,
    ) -> FakePort:
        fake = FakePort(0)
        self.ports.append(fake)
        return fake

    def spawnProcess(
        self,
        protocol: ProcessProtocol,
        executable: str,
        args: list[str],
        *a: Any,
        childFDs: dict[int, int | str],
        **kw: Any,
    ) -> FakeProcess:
        process = FakeProcess(args, childFDs)
        protocol.makeConnection(process)
        self.processes.append((protocol, process))
        return process


class AdoptingReactor(MemoryReactorClock):
    """
    A memory reactor whose adopted ports are L{FakePort}s, or that fails to
    adopt with C{error}.
    """

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error
        self.adopted: list[tuple[int, socket.AddressFamily, FakePort]] = []

    def adoptStreamPort(
        self, fileno: int, addressFamily: socket.AddressFamily, factory: Factory
    ) -> FakePort:
        if self.error is not None:
            raise self.error
        port = FakePort(0)
        self.adopted.append((fileno, addressFamily, port))
        return port


def end(protocol: ProcessProtocol, process: FakeProcess) -> None:
    """
    Make C{process} exit.
    """
    process.exited = True
    protocol.processEnded(Failure(ProcessDone(0)))


class ParseWorkersTests(SynchronousTestCase):
    """
    Tests for L{parse_workers}.
    """

    def test_number(self) -> None:
        """
        A positive integer is the number of workers.
        """
        self.assertEqual(parse_workers("3"), 3)

    def test_auto(self) -> None:
        """
        C{auto} is one worker per CPU this process may run on.
        """
        self.assertEqual(parse_workers("auto"), len(os.sched_getaffinity(0)))

    def test_bad(self) -> None:
        """
        Zero, negatives and words are usage errors naming the option.
        """
        for value in ["0", "-2", "many", ""]:
            e = self.assertRaises(usage.UsageError, parse_workers, value)
            self.assertIn("--workers", str(e))


class OptionsTests(SynchronousTestCase):
    """
    Tests for what L{workers} adds to C{twistd echo}'s options.
    """

    def test_default(self) -> None:
        """
        One process by default.
        """
        options = Options()
        options.parseOptions([])
        self.assertEqual(options["workers"], 1)

    def test_worker_args(self) -> None:
        """
        Workers get the echo options but not the ports, the metrics endpoint,
        the backlog or the worker count.
        """
        options = Options()
        options.parseOptions(
            [
                "--port",
                "tcp:0",
                "--workers",
                "2",
                "--metrics",
                "tcp:0",
                "--idle-timeout",
                "5",
                "--max-connections",
                "7",
                "--verbose",
            ]
        )
        args = workers.worker_args(options)
        for parent_only in ["--port", "--workers", "--metrics", "--backlog"]:
            self.assertNotIn(parent_only, args)
        worker_options = Options()
        worker_options.parseOptions(args)
        self.assertEqual(
            (worker_options["idle-timeout"], worker_options["max-connections"]),
            (5.0, 7),
        )
        self.assertTrue(worker_options["verbose"])


class LinesTests(SynchronousTestCase):
    """
    Tests for L{workers._Lines}.
    """

    def test_split(self) -> None:
        """
        Complete lines come out; a partial one waits for its end.
        """
        lines = workers._Lines()
        self.assertEqual(lines.feed(b"a\nb"), [b"a"])
        self.assertEqual(lines.feed(b"c\n\nd"), [b"bc", b""])

    def test_overlong(self) -> None:
        """
        A line longer than the limit is dropped rather than kept growing.
        """
        lines = workers._Lines()
        lines.feed(b"x" * (workers._MAX_LINE + 1))
        self.assertEqual(lines.feed(b"y\n"), [b"y"])


class WorkerPoolTests(SynchronousTestCase):
    """
    Tests for L{workers.WorkerPool}.
    """

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.pool = workers.WorkerPool(
            self.reactor,
            ["tcp:0"],
            2,
            ["--idle-timeout", "5"],
            EchoFactory(self.reactor),
        )
        self.pool.privilegedStartService()
        self.pool.startService()
        self.addCleanup(self.reactor.ports[0].stopListening)

    def test_listen_without_accepting(self) -> None:
        """
        The parent listens on each port but stops reading it: only the
        workers accept.
        """
        [port] = self.reactor.ports
        self.assertEqual((port.listening, port.reading), (True, False))

    def test_spawn(self) -> None:
        """
        Each worker runs C{python -m echotwist.server.workers} with its number, the
        module of the parent's reactor, the listening socket as fd 3, and the
        echo options after C{--}.
        """
        [port] = self.reactor.ports
        self.assertEqual(len(self.reactor.processes), 2)
        for index, (_, process) in enumerate(self.reactor.processes, start=1):
            self.assertEqual(process.args[1:3], ["-m", "echotwist.server.workers"])
            self.assertEqual(
                process.args[3:],
                [
                    "--worker",
                    str(index),
                    "--reactor",
                    type(self.reactor).__module__,
                    "--fd",
                    "3:AF_INET",
                    "--",
                    "--idle-timeout",
                    "5",
                ],
            )
            listening = listening_socket(port)  # type: ignore[arg-type]
            self.assertEqual(
                process.child_fds, {0: "w", 1: "r", 2: "r", 3: listening.fileno()}
            )
        self.assertEqual(sorted(self.pool.workers), [1, 2])

    def test_restart(self) -> None:
        """
        A worker that dies is started again, with the same number, after
        L{workers.RESTART_DELAY}.
        """
        protocol, process = self.reactor.processes[0]
        end(protocol, process)
        self.assertEqual(sorted(self.pool.workers), [2])
        self.reactor.advance(workers.RESTART_DELAY)
        self.assertEqual(len(self.reactor.processes), 3)
        self.assertEqual(self.reactor.processes[2][1].args[3:5], ["--worker", "1"])
        self.assertEqual(sorted(self.pool.workers), [1, 2])

    def restart_delay(self, index: int) -> float:
        """
        End worker C{index} now and wait for the pool to start it again.

        @return: how long that took, by the reactor's clock: the delay the
            pool logged, checked against when the worker came back.
        """
        worker = self.pool.workers[index]
        with capturedLogs() as events:
            end(worker, worker.transport)  # type: ignore[arg-type]
        [delay] = [e["delay"] for e in events if "delay" in e]
        self.reactor.advance(delay - TICK)
        self.assertNotIn(index, self.pool.workers)
        self.reactor.advance(TICK)
        self.assertIn(index, self.pool.workers)
        return float(delay)

    def test_restart_backoff(self) -> None:
        """
        A worker that keeps dying as soon as it starts waits twice as long
        each time before it is restarted, at most
        L{workers.MAX_RESTART_DELAY}; one that has run for
        L{workers.STABLE_AFTER} is restarted after L{workers.RESTART_DELAY}
        again.  Each worker has its own delay.
        """
        delays = [self.restart_delay(1) for _ in range(8)]
        self.assertEqual(delays, [1, 2, 4, 8, 16, 32, 60, 60])
        self.reactor.advance(workers.STABLE_AFTER - TICK)
        self.assertEqual(self.restart_delay(1), 60)
        self.assertEqual(self.restart_delay(2), workers.RESTART_DELAY)
        self.reactor.advance(workers.STABLE_AFTER)
        self.assertEqual(self.restart_delay(1), workers.RESTART_DELAY)

    def test_stop(self) -> None:
        """
        Stopping closes the port at once (not once the workers have
        drained), sends every worker SIGTERM, finishes once all have exited,
        and starts no worker again.
        """
        stopped = self.pool.stopService()
        self.assertFalse(self.reactor.ports[0].listening)
        self.assertEqual([p.signals for _, p in self.reactor.processes], [["TERM"]] * 2)
        end(*self.reactor.processes[0])
        self.assertNoResult(stopped)
        end(*self.reactor.processes[1])
        self.successResultOf(stopped)
        self.assertFalse(self.reactor.ports[0].listening)
        self.reactor.advance(workers.STOP_TIMEOUT)
        self.assertEqual(len(self.reactor.processes), 2)
        self.assertEqual([p.signals for _, p in self.reactor.processes], [["TERM"]] * 2)

    def test_stop_cancels_restart(self) -> None:
        """
        A worker that died just before the pool stopped is not restarted.
        """
        end(*self.reactor.processes[0])
        stopped = self.pool.stopService()
        end(*self.reactor.processes[1])
        self.successResultOf(stopped)
        self.reactor.advance(workers.RESTART_DELAY)
        self.assertEqual(len(self.reactor.processes), 2)

    def test_kill_after_timeout(self) -> None:
        """
        A worker still running L{workers.STOP_TIMEOUT} after SIGTERM is
        killed.
        """
        stopped = self.pool.stopService()
        end(*self.reactor.processes[0])
        self.reactor.advance(workers.STOP_TIMEOUT)
        self.assertEqual(
            [p.signals for _, p in self.reactor.processes], [["TERM"], ["TERM", "KILL"]]
        )
        self.assertNoResult(stopped)
        end(*self.reactor.processes[1])
        self.successResultOf(stopped)

    def test_snapshots(self) -> None:
        """
        Each worker's latest report, even one split across reads, is its
        snapshot; a bad line is logged and ignored; a worker that has not
        reported yet has none.
        """
        first, second = (p for p, _ in self.reactor.processes)
        self.assertEqual(self.pool.snapshots(), {})
        line = Snapshot(1, 2, 3, 4, 5, 6).to_json().encode() + b"\n"
        first.outReceived(Snapshot().to_json().encode() + b"\n" + line[:10])
        with capturedLogs() as events:
            first.outReceived(line[10:] + b"garbage\n")
        self.assertEqual(self.pool.snapshots(), {"1": Snapshot(1, 2, 3, 4, 5, 6)})
        self.assertIn("bad report", events[0]["log_format"])
        second.outReceived(Snapshot(bytes_echoed=9).to_json().encode() + b"\n")
        self.assertEqual(sorted(self.pool.snapshots()), ["1", "2"])

    def report(self, index: int, snapshot: Snapshot) -> None:
        """
        Have worker C{index} report C{snapshot}.
        """
        line = snapshot.to_json().encode() + b"\n"
        self.pool.workers[index].outReceived(line)

    def test_totals(self) -> None:
        """
        The totals for the summary keep every worker's counts: the latest
        report of a running one, the last of one that exited while the pool
        stopped (its final report, with the connections it closed at the
        shutdown timeout), and the sum of those that exited before.
        """
        self.report(1, Snapshot(open_connections=1, bytes_echoed=5))
        worker = self.pool.workers[1]
        end(worker, worker.transport)  # type: ignore[arg-type]
        self.reactor.advance(workers.RESTART_DELAY)
        self.report(1, Snapshot(bytes_echoed=7))
        self.report(2, Snapshot(bytes_echoed=11))
        stopped = self.pool.stopService()
        self.report(1, Snapshot(bytes_echoed=8, closed_at_shutdown=2))
        end(*self.reactor.processes[2])
        self.report(2, Snapshot(bytes_echoed=20, closed_at_shutdown=3))
        end(*self.reactor.processes[1])
        self.successResultOf(stopped)
        totals = self.pool.totals()
        self.assertEqual(totals["retired"], Snapshot(bytes_echoed=5))
        self.assertEqual(
            sum(totals.values(), Snapshot()),
            Snapshot(bytes_echoed=33, closed_at_shutdown=5),
        )
        self.assertEqual(self.pool.snapshots(), {})

    def test_dead_worker_no_snapshot(self) -> None:
        """
        A worker that has exited is no longer reported.
        """
        protocol, process = self.reactor.processes[0]
        protocol.outReceived(Snapshot().to_json().encode() + b"\n")
        end(protocol, process)
        self.assertEqual(self.pool.snapshots(), {})

    def test_relay_log(self) -> None:
        """
        Each line a worker writes to stderr is logged by the parent with the
        worker's number.
        """
        protocol = self.reactor.processes[1][0]
        with capturedLogs() as events:
            protocol.errReceived(b"[-] Connected by x\n[-] half")
        self.assertEqual(
            [(e["index"], e["line"]) for e in events], [(2, "[-] Connected by x")]
        )


def own_fds(reactor: FakeReactor) -> list[int]:
    """
    @return: the descriptor each spawned worker got as its fd 3.
    """
    return [int(process.child_fds[3]) for _, process in reactor.processes]


class ReusePortPoolTests(SynchronousTestCase):
    """
    Tests for L{workers.WorkerPool} with C{reuseport}: one C{SO_REUSEPORT}
    socket per worker on TCP ports, one shared socket on others.
    """

    def pool(self, description: str, count: int = 3) -> workers.WorkerPool:
        """
        @return: a started pool of C{count} workers on C{description}, with
            real sockets, stopped after the test.
        """
        self.reactor = FakeReactor()
        pool = workers.WorkerPool(
            self.reactor,
            [description],
            count,
            [],
            EchoFactory(self.reactor),
            reuseport=True,
        )
        pool.privilegedStartService()
        pool.startService()

        def stop() -> None:
            if pool.running:
                pool.stopService()
                self.reactor.advance(0)

        self.addCleanup(stop)
        return pool

    def test_socketPerWorker(self) -> None:
        """
        On a TCP port each worker gets its own listening socket, all bound
        to the same address with C{SO_REUSEPORT}; a worker restarted gets
        the same socket again (connections queued on it wait for it), and
        stopping the pool closes them all at once.
        """
        pool = self.pool("tcp:0:interface=127.0.0.1")
        fds = own_fds(self.reactor)
        self.assertEqual(len(set(fds)), 3)
        sockets = [socket.socket(fileno=os.dup(fd)) for fd in fds]
        for sock in sockets:
            self.addCleanup(sock.close)
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 1)
            self.assertEqual(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), 1
            )
        self.assertEqual(len({s.getsockname() for s in sockets}), 1)
        end(*self.reactor.processes[1])
        self.reactor.advance(workers.RESTART_DELAY)
        self.assertEqual(own_fds(self.reactor)[3], fds[1])
        pool.stopService()
        self.reactor.advance(0)
        for fd in fds:
            self.assertRaises(OSError, os.fstat, fd)

    def test_sharedWhereNotTCP(self) -> None:
        """
        On a UNIX port every worker gets the one socket.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.pool(f"unix:{os.path.join(directory, 'echo.sock')}")
        self.assertEqual(len(set(own_fds(self.reactor))), 1)

    def test_oneWorkerShares(self) -> None:
        """
        A pool of one worker needs no more sockets.
        """
        pool = self.pool("tcp:0:interface=127.0.0.1", count=1)
        self.assertEqual(pool._own, [[]])

    def test_addressInUse(self) -> None:
        """
        A TCP port something already listens on (even with
        C{SO_REUSEPORT}, as another C{twistd echo --workers} would) is an
        error, as without C{SO_REUSEPORT}, not a silent share.
        """
        other = socket.socket()
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        reactor = FakeReactor()
        pool = workers.WorkerPool(
            reactor,
            [f"tcp:{other.getsockname()[1]}:interface=127.0.0.1"],
            2,
            [],
            EchoFactory(reactor),
            reuseport=True,
        )
        error = self.assertRaises(ListenerError, pool.privilegedStartService)
        self.assertIn("Address already in use", str(error))


class FakeStdio(StringTransport):
    """
    A worker's stdio: written bytes are kept; closing the writing side is
    recorded, and reported to the protocol when the test says.
    """

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class ReportsTests(SynchronousTestCase):
    """
    Tests for L{workers._Reports}: the worker's end of its stdio.
    """

    def test_final(self) -> None:
        """
        The final report is written, stdout is closed, and the result fires
        once the write side is closed (all written).
        """
        reports = workers._Reports()
        stdio = FakeStdio()
        reports.makeConnection(stdio)
        clock = Clock()
        written = reports.final(Snapshot(bytes_echoed=3), clock)
        self.assertEqual(
            stdio.value(), Snapshot(bytes_echoed=3).to_json().encode() + b"\n"
        )
        self.assertTrue(stdio.write_closed)
        self.assertNoResult(written)
        reports.writeConnectionLost()
        self.successResultOf(written)

    def test_finalTimesOut(self) -> None:
        """
        A parent that never reads does not hold the worker up for more than
        L{workers.FINAL_REPORT_TIMEOUT}.
        """
        reports = workers._Reports()
        reports.makeConnection(FakeStdio())
        clock = Clock()
        written = reports.final(Snapshot(), clock)
        clock.advance(workers.FINAL_REPORT_TIMEOUT)
        self.successResultOf(written)

    def test_parentGone(self) -> None:
        """
        Stdin closing means the parent has gone: C{gone} fires, and the
        final report is not written.
        """
        reports = workers._Reports()
        stdio = FakeStdio()
        reports.makeConnection(stdio)
        reports.readConnectionLost()
        self.successResultOf(reports.gone)
        self.successResultOf(reports.final(Snapshot(), Clock()))
        self.assertEqual((stdio.value(), stdio.write_closed), (b"", False))


class StartWorkerTests(SynchronousTestCase):
    """
    Tests for L{workers.start_worker}: a worker's side, with a fake reactor.
    """

    def test_listenersLikeTwistdEcho(self) -> None:
        """
        A worker serves each inherited socket with the echo options as
        C{twistd echo} serves a port, its accept errors summed up; stopping
        as the reactor shuts down only stops accepting (the parent closes
        the sockets).
        """
        reactor = AdoptingReactor()
        # Each is closed once adopted, as the worker's inherited fds are.
        first, second = socket.socket().detach(), socket.socket().detach()
        factory = workers.start_worker(
            reactor,
            "--fd",
            f"{first}:AF_INET",
            "--fd",
            f"{second}:AF_INET6",
            "--",
            "--verbose",
        )
        self.assertTrue(factory.verbose)
        for _, _, port in reactor.adopted:
            self.addCleanup(port.stopListening)
        self.assertEqual(
            [(fd, family) for fd, family, _ in reactor.adopted],
            [(first, socket.AF_INET), (second, socket.AF_INET6)],
        )
        ports = [port for _, _, port in reactor.adopted]
        for port in ports:
            self.assertIsInstance(port.log_observer, AcceptErrorSummary)
        [(stop, args, kwargs)] = reactor.triggers["before"]["shutdown"]
        self.successResultOf(stop(*args, **kwargs))
        self.assertEqual([(p.listening, p.reading) for p in ports], [(True, False)] * 2)
        self.assertEqual([p.socket.fileno() for p in ports], [-1, -1])

    def test_finalReport(self) -> None:
        """
        Once a worker has drained, its final counts, with the connections
        it closed at the shutdown timeout, are handed to C{final} before
        the reactor goes on shutting down.
        """
        reactor = AdoptingReactor()
        fd = socket.socket().detach()
        finals: list[Snapshot] = []
        done: Deferred[None] = Deferred()

        def final(snapshot: Snapshot) -> Deferred[None]:
            finals.append(snapshot)
            return done

        factory = workers.start_worker(
            reactor,
            "--fd",
            f"{fd}:AF_INET",
            "--",
            "--shutdown-timeout",
            "1",
            final=final,
        )
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"abc")
        [(stop, args, kwargs)] = reactor.triggers["before"]["shutdown"]
        stopping = stop(*args, **kwargs)
        reactor.advance(1.0)
        reactor.advance(1.0)
        self.assertTrue(transport.disconnecting or transport.disconnected)
        protocol.connectionLost(Failure(ConnectionDone()))
        reactor.advance(1.0)
        self.assertEqual(
            finals,
            [Snapshot(connections_total=1, bytes_echoed=3, closed_at_shutdown=1)],
        )
        self.assertNoResult(stopping)
        done.callback(None)
        self.successResultOf(stopping)

    def test_listenFailureExits(self) -> None:
        """
        A worker that can't listen on an inherited socket exits with an
        error naming why, rather than running on without it.
        """
        reactor = AdoptingReactor(OSError(errno.EBADF, "Bad file descriptor"))
        fd = socket.socket().detach()
        self.addCleanup(os.close, fd)
        error = self.assertRaises(
            SystemExit, workers.start_worker, reactor, "--fd", f"{fd}:AF_INET"
        )
        self.assertEqual(
            error.code,
            "can't listen on the inherited sockets: [Errno 9] Bad file descriptor",
        )


class _RecordingReactor(AdoptingReactor):
    """
    An L{AdoptingReactor} that records the factory each port is adopted
    with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.factories: list[Factory] = []

    def adoptStreamPort(
        self, fileno: int, addressFamily: socket.AddressFamily, factory: Factory
    ) -> FakePort:
        self.factories.append(factory)
        return super().adoptStreamPort(fileno, addressFamily, factory)


class ProxyWorkerTests(SynchronousTestCase):
    """
    C{--workers} with PROXY protocol ports (C{haproxy:...}).
    """

    def test_spawnMarksProxyPorts(self) -> None:
        """
        The parent listens on a C{haproxy:} port's inner socket and tells
        each worker that its connections start with a header.
        """
        reactor = FakeReactor()
        pool = workers.WorkerPool(
            reactor, ["haproxy:tcp:0", "tcp:0"], 1, [], EchoFactory(reactor)
        )
        pool.privilegedStartService()
        for port in reactor.ports:
            self.addCleanup(port.stopListening)
        pool.startService()
        [(_, process)] = reactor.processes
        self.assertIn("3:AF_INET:haproxy", process.args)
        self.assertIn("4:AF_INET", process.args)

    def test_workerWrapsProxyPorts(self) -> None:
        """
        A worker reads PROXY headers on the sockets marked so, with the
        C{--proxy-from} networks the parent passed on.
        """
        options = Options()
        options.parseOptions(["--proxy-from", "10.0.0.0/8", "--workers", "2"])
        args = workers.worker_args(options)
        self.assertIn("--proxy-from", args)
        self.assertNotIn("--info", args)
        reactor = _RecordingReactor()
        first, second = socket.socket().detach(), socket.socket().detach()
        factory = workers.start_worker(
            reactor,
            "--fd",
            f"{first}:AF_INET:haproxy",
            "--fd",
            f"{second}:AF_INET",
            "--",
            *args,
        )
        for _, _, port in reactor.adopted:
            self.addCleanup(port.stopListening)
        proxied, plain = reactor.factories
        assert isinstance(proxied, ProxyFactory)
        self.assertIs(proxied.wrappedFactory, factory)
        self.assertEqual([str(n) for n in proxied.settings.trusted], ["10.0.0.0/8"])
        self.assertIs(plain, factory)
