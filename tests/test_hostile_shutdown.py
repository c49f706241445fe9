"""
SIGTERM shuts down gracefully: stop accepting, let connections finish or
close them after C{--shutdown-timeout}, exit 0 with a summary line.
"""

from __future__ import annotations

import os
import signal
import socket

import psutil
import pytest
from sockets import HOST, TIMEOUT, connect, recv_exactly, round_trip
from twistd_support import Server, twistd_echo


def _sigterm_with_one_open(server: Server, sock: socket.socket) -> None:
    """
    Echo on C{sock}, then SIGTERM the server, and wait until it says it
    stopped accepting and waits up to 2 s for that one open connection.

    @param server: a server run with C{--shutdown-timeout 2}.
    @param sock: a connection to it.
    """
    sock.sendall(b"before")
    assert recv_exactly(sock, 6) == b"before"
    server.process.send_signal(signal.SIGTERM)
    server.wait_for(r"Stopped accepting; waiting up to 2.0 s for 1 open")


def _echoes_until_closed(sock: socket.socket) -> None:
    """
    Check that C{sock}, open through a shutdown, still echoes, and is then
    closed by the server (a reset counts as closed).

    @param sock: a connection open when the server got SIGTERM.
    """
    sock.sendall(b"during")
    assert recv_exactly(sock, 6) == b"during"
    try:
        closed = sock.recv(1)
    except ConnectionResetError:
        closed = b""
    assert closed == b""


def test_sigterm_idle_server_exits_zero() -> None:
    """
    With no connection open, SIGTERM ends twistd at once with status 0 and
    a summary line counting what it served.
    """
    with twistd_echo() as server:
        round_trip(server.port, b"hello")
        assert server.stop() == 0
        match = server.wait_for(
            r"Shutdown complete: (\d+) connections? served, "
            r"(\d+) bytes? echoed"
        )
        assert match.groups() == ("1", "5")


def test_sigterm_waits_then_closes() -> None:
    """
    After SIGTERM the listener is closed, an open connection keeps echoing
    until C{--shutdown-timeout}, is then closed, and twistd exits 0.
    """
    with twistd_echo("--shutdown-timeout", "2") as server:
        with connect(server.port) as sock:
            _sigterm_with_one_open(server, sock)
            server.wait_for(r"TCP Port \d+ Closed")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((HOST, server.port), timeout=5)
            _echoes_until_closed(sock)
        assert server.process.wait(TIMEOUT) == 0
        server.wait_for(r"Shutdown complete: .* 1 closed at the shutdown timeout")


def test_sigterm_connection_finishes_first() -> None:
    """
    A connection that ends by itself before the timeout is not aborted, and
    twistd exits 0 once it has.
    """
    with twistd_echo("--shutdown-timeout", "30") as server:
        with connect(server.port) as sock:
            # An echo first, so that the reactor runs: twistd's port listens,
            # and says so, before the reactor sets its SIGTERM handler.
            sock.sendall(b"first")
            assert recv_exactly(sock, 5) == b"first"
            server.process.send_signal(signal.SIGTERM)
            server.wait_for(r"Stopped accepting; waiting up to 30.0 s for 1 open")
            sock.sendall(b"last words")
            sock.shutdown(socket.SHUT_WR)
            assert recv_exactly(sock, 11) == b"last words"
        assert server.process.wait(TIMEOUT) == 0
        server.wait_for(r"Shutdown complete: .* 0 closed at the shutdown timeout")


def test_sigterm_with_workers() -> None:
    """
    With C{--workers 2}, SIGTERM to twistd lets a connection served by a
    worker keep echoing until C{--shutdown-timeout}, then closes it; twistd
    exits 0 with one total summary line.
    """
    with twistd_echo("--workers", "2", "--shutdown-timeout", "2") as server:
        with connect(server.port) as sock:
            _sigterm_with_one_open(server, sock)
            _echoes_until_closed(sock)
        assert server.process.wait(TIMEOUT) == 0
        output = server.output()
        print(output)
        assert output.count("Shutdown complete") >= 1
        assert "Traceback" not in output


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one", "workers"])
def test_repeated_signals_harmless(workers: tuple[str, ...]) -> None:
    """
    SIGTERM, SIGINT and SIGTERM again during the drain, to twistd and to
    each worker, change nothing: the connection open keeps echoing until
    the timeout, twistd exits 0, and the extra signals log nothing (no
    C{ReactorNotRunning} traceback, no second "shutting down").
    """
    with twistd_echo(*workers, "--shutdown-timeout", "2") as server:
        if workers:
            server.wait_for(r"worker \d+: \[-\] EchoFactory starting on", count=2)
        processes = [server.process.pid]
        processes += [c.pid for c in psutil.Process(server.process.pid).children()]
        assert len(processes) == (3 if workers else 1)
        with connect(server.port) as sock:
            _sigterm_with_one_open(server, sock)
            for signum in signal.SIGTERM, signal.SIGINT, signal.SIGTERM:
                for pid in processes:
                    os.kill(pid, signum)
            _echoes_until_closed(sock)
        assert server.process.wait(TIMEOUT) == 0
        output = server.output()
        assert "Traceback" not in output
        assert "ReactorNotRunning" not in output
        assert "SIGINT" not in output
        assert output.count("SIGTERM received") == len(processes)
        server.wait_for(r"Shutdown complete: .* 1 closed at the shutdown timeout")
