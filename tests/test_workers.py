"""
Live tests of C{twistd echo --workers N} and C{--metrics}: real processes,
real ports.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sockets import HOST, TIMEOUT, connect, echo_once, recv_exactly
from twistd_support import LOOPBACK, TWISTD, Server, twistd_echo

WORKER_STARTED = r"worker \d+: \[-\] EchoFactory(?: \(PROXY\))? starting on"


def worker_pids(parent: int) -> list[int]:
    """
    @return: the pids of C{parent}'s child processes (none once it has
        gone).
    """
    try:
        return [child.pid for child in psutil.Process(parent).children()]
    except psutil.NoSuchProcess:
        return []


def wait_gone(pids: list[int]) -> None:
    """
    Wait (at most L{TIMEOUT}) until none of C{pids} is running.
    """
    deadline = time.monotonic() + TIMEOUT
    while alive := [p for p in pids if psutil.pid_exists(p) and not _zombie(p)]:
        assert time.monotonic() < deadline, f"still running: {alive}"
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    """
    @return: whether C{pid} has exited but not been reaped.
    """
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return True
    return bool(status == psutil.STATUS_ZOMBIE)


def _serves(pid: int, sock: socket.socket) -> bool:
    """
    @return: whether C{pid} holds the server end of C{sock}'s connection.
    """
    client = sock.getsockname()[1]
    try:
        held = psutil.Process(pid).net_connections("tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.raddr and c.raddr.port == client for c in held)


def scrape(port: int) -> dict[str, dict[str, float]]:
    """
    @return: metric family -> worker label -> value, from C{/metrics}.
    """
    url = f"http://{HOST}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        text = response.read().decode()
    return {
        family.name: {s.labels["worker"]: s.value for s in family.samples}
        for family in text_string_to_metric_families(text)
    }


@contextlib.contextmanager
def two_workers(
    *options: str,
    directory: Path,
    ports: Sequence[str] = (LOOPBACK,),
    twistd_options: Sequence[str] = (),
) -> Iterator[Server]:
    """
    C{twistd -n TWISTD_OPTIONS echo --workers 2 OPTIONS} on C{ports}, once
    both workers listen; stopped with SIGTERM, its workers then killed if
    any is left.
    """
    with twistd_echo(
        "--workers",
        "2",
        *options,
        ports=ports,
        directory=directory,
        twistd_options=twistd_options,
    ) as twistd:
        twistd.wait_for(WORKER_STARTED, count=2)
        try:
            yield twistd
        finally:
            pids = worker_pids(twistd.process.pid)
            twistd.stop()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("twistd_options", "reactor"),
    [
        ((), "echotwist.server.reactor.EchoReactor"),
        (("--reactor", "poll"), "twisted.internet.pollreactor.PollReactor"),
    ],
)
def test_workers_run_on_parents_reactor(
    tmp_path: Path, twistd_options: tuple[str, ...], reactor: str
) -> None:
    """
    Workers run on the reactor the parent runs on: C{twistd echo}'s default,
    or the one C{--reactor} named.
    """
    with two_workers(directory=tmp_path, twistd_options=twistd_options) as twistd:
        twistd.wait_for(rf"worker \d+: .*reactor class: {re.escape(reactor)}", 2)
        assert echo_once(twistd.port, b"ping") == b"ping"


def test_worker_bad_option() -> None:
    """
    A worker command line it can't read is one line on stderr and a non-zero
    exit, not a traceback.
    """
    result = subprocess.run(
        [sys.executable, "-m", "echotwist.server.workers", "--bogus"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "python -m echotwist.server.workers: option --bogus not recognized"
    ]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Server]:
    """
    L{two_workers} with metrics.
    """
    with two_workers("--metrics", LOOPBACK, directory=tmp_path) as twistd:
        yield twistd


def metrics_port(twistd: Server) -> int:
    """
    @return: the port the metrics site listens on, from the log.
    """
    return int(twistd.wait_for(r"Site starting on (\d+)").group(1))


def test_echo_and_metrics(workers: Server) -> None:
    """
    Two workers echo on the parent's port, and C{/metrics} reports both and
    the parent, labelled, with totals that add up to what the clients sent.
    """
    messages = [f"message {i}".encode() * (i + 1) for i in range(20)]
    for message in messages:
        assert echo_once(workers.port, message) == message
    port = metrics_port(workers)
    deadline = time.monotonic() + TIMEOUT
    while True:
        metrics = scrape(port)
        done = sum(metrics["echotwist_connections"].values()) == len(messages)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(metrics["echotwist_connections"]) == ["0", "1", "2"]
    assert metrics["echotwist_connections"]["0"] == 0
    assert sum(metrics["echotwist_connections"].values()) == len(messages)
    assert sum(metrics["echotwist_bytes_echoed"].values()) == sum(map(len, messages))
    assert sum(metrics["echotwist_open_connections"].values()) == 0
    assert set(metrics["echotwist_datagrams_echoed"].values()) == {0.0}


def test_restart_dead_worker(workers: Server) -> None:
    """
    A worker killed outright is replaced, and clients are still served.
    """
    before = worker_pids(workers.process.pid)
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    workers.wait_for(r"worker \d exited")
    workers.wait_for(WORKER_STARTED, count=3)
    after = worker_pids(workers.process.pid)
    assert len(after) == 2 and before[0] not in after and before[1] in after
    for i in range(10):
        assert echo_once(workers.port, b"still here %d" % i) == b"still here %d" % i


def test_worker_stopping_keeps_unix_path(tmp_path: Path) -> None:
    """
    With C{--workers 2} on a C{unix:} port, a worker that is stopped (and
    replaced) leaves the socket's path in place: clients still connect.
    """
    path = tmp_path / "echo.sock"
    with two_workers(ports=[f"unix:{path}"], directory=tmp_path) as twistd:
        first = worker_pids(twistd.process.pid)[0]
        os.kill(first, signal.SIGTERM)
        twistd.wait_for(r"worker \d exited")
        assert path.exists()
        for _ in range(5):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(str(path))
                sock.sendall(b"still here")
                sock.shutdown(socket.SHUT_WR)
                assert sock.recv(64) == b"still here"


def test_sigterm_stops_all(workers: Server) -> None:
    """
    SIGTERM to the parent stops every worker, each ending its main loop,
    then the parent logs its summary and exits 0 (a graceful shutdown, not
    a death by the signal).
    """
    pids = worker_pids(workers.process.pid)
    assert len(pids) == 2
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(TIMEOUT) == 0
    wait_gone(pids)
    output = workers.output()
    for index in 1, 2:
        assert re.search(rf"worker {index}: .*Main loop terminated", output)
    assert "Shutdown complete" in output


def test_parent_killed(workers: Server) -> None:
    """
    Workers whose parent is killed outright exit rather than linger.
    """
    pids = worker_pids(workers.process.pid)
    workers.process.kill()
    workers.process.wait(TIMEOUT)
    wait_gone(pids)


def test_daemon(tmp_path: Path) -> None:
    """
    Daemonised twistd with workers: one pidfile, the parent's; the workers
    serve; SIGTERM to that pid stops everything and removes the pidfile.
    """
    pidfile, logfile = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    command = [
        TWISTD,
        f"--pidfile={pidfile}",
        f"--logfile={logfile}",
        "echo",
        "--port",
        f"tcp:0:interface={HOST}",
        "--workers",
        "2",
    ]
    subprocess.run(command, cwd=tmp_path, timeout=TIMEOUT, check=True)
    pid = int(pidfile.read_text())
    pids = [pid]
    try:
        daemon = Server(subprocess.Popen(["sleep", str(TIMEOUT)]), logfile)
        try:
            daemon.wait_for(WORKER_STARTED, count=2)
        finally:
            daemon.process.kill()
            daemon.process.wait()
        pids += worker_pids(pid)
        assert len(pids) == 3
        assert echo_once(daemon.port, b"daemonised") == b"daemonised"
        os.kill(pid, signal.SIGTERM)
        wait_gone(pids)
        assert not pidfile.exists()
    finally:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


#: A C{Shutdown complete} line's counts, as one process logs them.
SUMMARY = re.compile(
    r"^(?P<who>.*?)Shutdown complete: (\d+) connections? served, (\d+) bytes? "
    r"echoed, (\d+) refused at the connection limit, (\d+) closed at the "
    r"shutdown timeout; UDP: (\d+) datagrams? echoed, (\d+) dropped$",
    re.MULTILINE,
)


def summaries(output: str) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """
    @return: the parent's summary counts and each worker's, from the log.
    """
    parent: list[tuple[int, ...]] = []
    workers: list[tuple[int, ...]] = []
    for match in SUMMARY.finditer(output):
        counts = tuple(int(n) for n in match.groups()[1:])
        is_worker = re.search(r"worker \d+:", match.group("who"))
        (workers if is_worker else parent).append(counts)
    assert len(parent) == 1, output
    return parent[0], workers


def test_summary_adds_up_final_reports(tmp_path: Path) -> None:
    """
    The parent's summary is the sum of its workers' own summaries, with the
    bytes echoed during the drain and the connections closed at the
    shutdown timeout: each worker's final counts reach the parent before
    it exits.
    """
    sizes = [1000 * (i + 1) for i in range(8)]
    with (
        two_workers("--shutdown-timeout", "2", directory=tmp_path) as twistd,
        contextlib.ExitStack() as stack,
    ):
        socks = [stack.enter_context(connect(twistd.port)) for _ in sizes]
        for sock, size in zip(socks, sizes, strict=True):
            sock.sendall(b"x" * size)
            assert recv_exactly(sock, size) == b"x" * size
        twistd.process.send_signal(signal.SIGTERM)
        twistd.wait_for(r"Stopped accepting")
        for sock in socks:
            sock.sendall(b"y" * 5000)
            assert recv_exactly(sock, 5000) == b"y" * 5000
        assert twistd.process.wait(TIMEOUT) == 0
    parent, workers = summaries(twistd.output())
    assert len(workers) == 2
    assert parent == tuple(map(sum, zip(*workers, strict=True)))
    assert parent[:2] == (len(sizes), sum(sizes) + 5000 * len(sizes))
    assert parent[3] == len(sizes)


def refused(connect_once: Callable[[], socket.socket]) -> bool:
    """
    @return: whether a connection attempt is refused (or finds no UNIX
        socket path); one that succeeds is closed.
    """
    try:
        connect_once().close()
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    return False


def wait_refused(connect_once: Callable[[], socket.socket], process: Server) -> None:
    """
    Wait (at most L{TIMEOUT}) until connection attempts are refused, while
    C{process} is still running.
    """
    deadline = time.monotonic() + TIMEOUT
    while not refused(connect_once):
        assert process.process.poll() is None, "refused only once it exited"
        assert time.monotonic() < deadline, "still accepting connections"
        time.sleep(0.05)


def test_sigterm_closes_listening_sockets(tmp_path: Path) -> None:
    """
    On SIGTERM the listening sockets close at once, in the parent and in
    every worker: new connections (TCP and UNIX) are refused during the
    drain, as with one process, while an open one still echoes.
    """
    path = tmp_path / "echo.sock"

    def unix_connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return sock

    with two_workers(
        "--shutdown-timeout",
        "30",
        ports=[f"unix:{path}", LOOPBACK],
        directory=tmp_path,
    ) as twistd:
        port = twistd.port
        with connect(port) as sock:
            sock.sendall(b"before")
            assert recv_exactly(sock, 6) == b"before"
            twistd.process.send_signal(signal.SIGTERM)
            twistd.wait_for(r"Stopped accepting; waiting up to 30.0 s for 1 open")
            wait_refused(
                lambda: socket.create_connection((HOST, port), TIMEOUT), twistd
            )
            wait_refused(unix_connect, twistd)
            sock.sendall(b"during")
            assert recv_exactly(sock, 6) == b"during"
        assert twistd.process.wait(TIMEOUT) == 0
        output = twistd.output()
        assert "Traceback" not in output
        assert "EINVAL" not in output


def test_parent_killed_frees_port(tmp_path: Path) -> None:
    """
    Workers whose parent is killed outright (SIGKILL) close the listening
    socket at once, then drain: new connections are refused, an open one
    still echoes from its worker, still running (a worker with nothing open
    may have exited already), and a new twistd starts on the same port at
    once.
    """
    with two_workers("--shutdown-timeout", "30", directory=tmp_path) as twistd:
        pids = worker_pids(twistd.process.pid)
        try:
            port = twistd.port
            with connect(port) as sock:
                sock.sendall(b"before")
                assert recv_exactly(sock, 6) == b"before"
                twistd.process.kill()
                twistd.process.wait(TIMEOUT)
                deadline = time.monotonic() + TIMEOUT
                while not refused(lambda: socket.create_connection((HOST, port), 5)):
                    assert time.monotonic() < deadline, "orphans still listen"
                    time.sleep(0.05)
                sock.sendall(b"during")
                assert recv_exactly(sock, 6) == b"during"
                [serving] = [p for p in pids if _serves(p, sock)]
                assert psutil.pid_exists(serving) and not _zombie(serving)
                again = f"tcp:{port}:interface={HOST}"
                with twistd_echo(ports=[again], directory=tmp_path) as restarted:
                    assert restarted.port == port
                    assert echo_once(port, b"restarted") == b"restarted"
            wait_gone(pids)
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def listening_inodes(pid: int, port: int) -> set[int]:
    """
    @return: the inodes of the sockets C{pid} listens on C{port} with.
    """
    found = set()
    for c in psutil.Process(pid).net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
            found.add(os.stat(f"/proc/{pid}/fd/{c.fd}").st_ino)
    return found


def test_socket_per_worker(tmp_path: Path) -> None:
    """
    On a TCP port each worker listens on its own socket (C{SO_REUSEPORT},
    the parent holding them all), and the kernel spreads connections over
    them: 40 connections reach both workers.
    """
    with two_workers(directory=tmp_path) as twistd, contextlib.ExitStack() as stack:
        port = twistd.port
        pids = worker_pids(twistd.process.pid)
        inodes = [listening_inodes(pid, port) for pid in pids]
        assert [len(i) for i in inodes] == [1, 1]
        assert inodes[0] != inodes[1]
        assert inodes[0] | inodes[1] == listening_inodes(twistd.process.pid, port)
        socks = [stack.enter_context(connect(port)) for _ in range(40)]
        for sock in socks:
            sock.sendall(b"!")
            assert recv_exactly(sock, 1) == b"!"
        held = [
            sum(
                1
                for c in psutil.Process(pid).net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )
            for pid in pids
        ]
        assert sum(held) == 40
        assert min(held) > 0


def test_dead_workers_socket_keeps_connections(tmp_path: Path) -> None:
    """
    Connections the kernel hashes to a dead worker's own socket are not
    lost: the parent keeps the socket open, they wait in its queue, and the
    worker started in its place serves them.
    """
    with two_workers(directory=tmp_path) as twistd, contextlib.ExitStack() as stack:
        port = twistd.port
        first = worker_pids(twistd.process.pid)[0]
        os.kill(first, signal.SIGKILL)
        twistd.wait_for(r"worker \d exited")
        socks = [stack.enter_context(connect(port)) for _ in range(20)]
        for i, sock in enumerate(socks):
            sock.sendall(b"waiting %d" % i)
        for i, sock in enumerate(socks):
            expected = b"waiting %d" % i
            assert recv_exactly(sock, len(expected)) == expected
        twistd.wait_for(WORKER_STARTED, count=3)
