"""
Live tests of C{python -m echotwist.bench}: short runs (well under a second
of load each) against a real C{twistd echo}, a deliberately wrong echo
server, and a small C{--compare}.
"""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sockets import HOST
from twistd_support import Server, twistd_echo

TIMEOUT = 120


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """
    Run the bench with C{args}.

    @return: the finished process, output captured.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.bench", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """
    @return: the rows of the bench's C{--json} output.
    """
    found: list[dict[str, Any]] = json.loads(result.stdout)["rows"]
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """
    A C{twistd echo} on a port the system picks.
    """
    with twistd_echo(directory=tmp_path) as running:
        yield running


def test_pingPong(server: Server) -> None:
    """
    A ping-pong run reports echoes, no errors, and the server's CPU time per
    echo when given its process id.
    """
    target = f"tcp:host={HOST}:port={server.port}"
    result = bench(
        "--connect",
        target,
        "--connections",
        "4",
        "--size",
        "1K",
        "--duration",
        "0.5",
        "--server-pid",
        str(server.process.pid),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    [row] = rows(result)
    assert row["workload"] == "4x1K"
    assert row["errors"] == 0
    assert row["echoes_per_s"] > 0
    assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["server_us_per_echo"] > 0


def test_streamAndTable(server: Server) -> None:
    """
    A stream run reports MiB/s in a table.
    """
    target = f"tcp:{HOST}:{server.port}"
    result = bench(
        "--connect",
        target,
        "--connections",
        "2",
        "--size",
        "64K",
        "--stream",
        "--duration",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    header, _, line = result.stdout.splitlines()[:3]
    assert header.split()[:4] == ["workload", "server", "echoes/s", "MiB/s"]
    assert line.split()[0] == "2x64K"
    assert float(line.split()[3].replace(",", "")) > 0


def test_burst(server: Server) -> None:
    """
    C{--burst} opens the connections, each gets its byte back, and the
    server's memory per connection is reported.
    """
    target = f"tcp:{HOST}:{server.port}"
    pid = str(server.process.pid)
    result = bench("--connect", target, "--burst", "50", "--server-pid", pid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("50 of 50 connections accepted and echoed in ")
    assert "server memory per idle connection: " in result.stdout


class _Corrupting(socketserver.BaseRequestHandler):
    """
    Echo with the first byte of every chunk changed.
    """

    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(bytes([data[0] ^ 1]) + data[1:])


def test_wrongEchoIsAnError() -> None:
    """
    A server that echoes the wrong bytes is reported, with exit status 1.
    """
    with socketserver.ThreadingTCPServer((HOST, 0), _Corrupting) as wrong:
        wrong.daemon_threads = True
        thread = threading.Thread(target=wrong.serve_forever, daemon=True)
        thread.start()
        try:
            port = wrong.server_address[1]
            result = bench(
                "--connect",
                f"tcp:{HOST}:{port}",
                "--connections",
                "2",
                "--size",
                "100",
                "--duration",
                "0.3",
                "--json",
            )
        finally:
            wrong.shutdown()
    assert result.returncode == 1
    [row] = rows(result)
    assert row["errors"] == 2
    assert "differs" in row["error_lines"][0]


def test_cannotConnect() -> None:
    """
    Nothing listening: exit status 1 and the reason, no traceback.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]  # bound, not listening: connections fail
        result = bench("--connect", f"tcp:{HOST}:{port}", "--duration", "0.2")
    assert result.returncode == 1
    assert "connect failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_badArgument() -> None:
    """
    A bad option is a one-line usage error with status 2.
    """
    result = bench("--connect", "ssl:h:1")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "python -m echotwist.bench: error:"
    )


def test_compare(tmp_path: Path) -> None:
    """
    C{--compare} starts each server, loads it, stops it, and reports one row
    per server with no errors; and draws the plot.
    """
    plot = tmp_path / "bench.png"
    servers = "echotwist,echotwist-stock,reference-select,twisted-wire,asyncio"
    result = bench(
        "--compare",
        "--workloads",
        "3x64",
        "--duration",
        "0.3",
        "--rounds",
        "1",
        "--servers",
        servers,
        "--json",
        "--plot",
        str(plot),
    )
    assert result.returncode == 0, result.stderr
    found = rows(result)
    assert [r["server"] for r in found] == servers.split(",")
    assert all(r["errors"] == 0 and r["server_us_per_echo"] > 0 for r in found)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
