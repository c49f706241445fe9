"""
Live tests of where C{twistd -n echo} listens and of how it says it can't:
the dual-stack default, C{HOST:PORT}, a taken port in one line naming the
option, and no pidfile in the foreground unless asked for.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT
from twistd_support import STARTED, TWISTD, Server, environment, stop, twistd_echo

from echotwist.server.endpoints import dual_stack


def round_trip(address: str, port: int) -> bytes:
    """
    @return: what comes back on a new connection to C{address}, C{port}
        after sending C{ping}.
    """
    with socket.create_connection((address, port), timeout=TIMEOUT) as sock:
        sock.sendall(b"ping")
        received = b""
        while len(received) < 4 and (chunk := sock.recv(4)):
            received += chunk
        return received


@pytest.mark.skipif(not dual_stack(), reason="no dual-stack IPv6 socket on this host")
def test_barePortDualStack(tmp_path: Path) -> None:
    """
    A bare port number (as the default, 9000, is) listens on IPv6 and IPv4
    at once: a client of C{::1} and one of C{127.0.0.1} are both echoed.
    """
    with twistd_echo(ports=["0"], directory=tmp_path) as server:
        assert round_trip("::1", server.port) == b"ping"
        assert round_trip(HOST, server.port) == b"ping"


def test_hostPort(tmp_path: Path) -> None:
    """
    C{--port 127.0.0.1:0} is TCP on that interface only; C{[::1]:0} on IPv6
    loopback.
    """
    ports = [f"{HOST}:0"]
    if socket.has_ipv6 and dual_stack():
        ports.append("[::1]:0")
    with twistd_echo(ports=ports, directory=tmp_path) as server:
        assert round_trip(HOST, server.port) == b"ping"
        if len(ports) == 2:
            second = int(server.wait_for(STARTED + r"(\d+)", count=2).group(1))
            assert round_trip("::1", second) == b"ping"


def run_twistd(directory: Path, *argv: str) -> subprocess.Popen[bytes]:
    """
    Start C{twistd -n echo ARGV} in C{directory} as a user would, with
    twistd's own defaults (no C{--pidfile=}), its log in C{twistd.log} and
    its standard error in C{stderr.txt}.
    """
    with (
        (directory / "twistd.log").open("ab") as log,
        (directory / "stderr.txt").open("ab") as err,
    ):
        return subprocess.Popen(
            [TWISTD, "-n", "echo", "--shutdown-timeout", "1", *argv],
            cwd=directory,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=err,
        )


def test_secondServerSameFolder(tmp_path: Path) -> None:
    """
    Two C{twistd -n echo} in one folder both serve: in the foreground no
    pidfile is written unless C{--pidfile} is given.
    """
    first = run_twistd(tmp_path, "--port", f"{HOST}:0")
    try:
        Server(first, tmp_path / "twistd.log").wait_for(STARTED)
        second = run_twistd(tmp_path, "--port", f"{HOST}:0")
        try:
            Server(second, tmp_path / "twistd.log").wait_for(STARTED, count=2)
            assert not (tmp_path / "twistd.pid").exists()
            assert second.poll() is None
        finally:
            assert stop(second) == 0
    finally:
        assert stop(first) == 0


def test_pidfileWhenAsked(tmp_path: Path) -> None:
    """
    C{--pidfile} given in the foreground is written while twistd serves.
    """
    with twistd_echo(
        directory=tmp_path, twistd_options=["--pidfile", "echo.pid"]
    ) as server:
        server.port  # noqa: B018 (waits until it listens)
        assert (tmp_path / "echo.pid").read_text().strip() == str(server.process.pid)


@pytest.mark.parametrize("option", ["--port", "--metrics"])
def test_takenPortOneLine(tmp_path: Path, option: str) -> None:
    """
    A taken port ends C{twistd -n echo} with status 1 and one line on
    standard error naming the option as typed and what would work, and
    leaves no pidfile behind, even one asked for.
    """
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        typed = f"tcp:{port}:interface={HOST}"
        argv = ["--port", f"{HOST}:0"] if option == "--metrics" else []
        argv += [option, typed]
        process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=echo.pid", "echo", *argv],
            cwd=tmp_path,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        finally:
            stop(process)
    assert process.returncode == 1
    assert err.decode().splitlines() == [
        f"twistd echo: {option} {typed!r}: Address already in use: another "
        "program listens there; stop it, or choose another port (0 picks a "
        "free one)"
    ]
    assert b"stderr#error" not in out
    assert not (tmp_path / "echo.pid").exists()


def test_listenersNamedInFull(tmp_path: Path) -> None:
    """
    Two listeners on one port number are each logged with their full
    address; one connection of one byte is logged in the singular.
    """
    with twistd_echo(ports=[f"{HOST}:0", "0"], directory=tmp_path) as server:
        first = server.wait_for(rf"--port listening on TCP {HOST}:(\d+)")
        second = server.wait_for(r"--port listening on TCP (\[::\]|0\.0\.0\.0):(\d+)")
        with socket.create_connection((HOST, int(first.group(1))), TIMEOUT) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        server.wait_for(r"Disconnected .*: 1 byte in, 1 byte out, ")
        assert int(second.group(2)) > 0
        assert stop(server.process) == 0
    assert "Shutdown complete: 1 connection served, 1 byte echoed" in server.output()
