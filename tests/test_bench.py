"""
Live tests of C{python -m echotwist.bench}: short runs (well under a second
of load each) against a real C{twistd echo}, a deliberately wrong echo
server, and a small C{--compare}.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sockets import HOST, listen_backlog
from twistd_support import LOOPBACK, Server, twistd_echo

from echotwist.bench.load import Target
from echotwist.bench.native import NativeUnavailable, build
from echotwist.bench.servers import SERVERS, started
from echotwist.bench.storm import native_conns


def native_or_skip() -> None:
    """
    Skip, saying why, where the native driver can't be built (no compiler).
    """
    try:
        build()
    except NativeUnavailable as e:
        pytest.skip(f"native driver: {e}")


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


def short_run(server: Server) -> list[str]:
    """
    @return: the options of a short, light run against C{server}.
    """
    return [
        "--connect",
        f"tcp:{HOST}:{server.port}",
        "--connections",
        "2",
        "--duration",
        "0.3",
    ]


def measured(server: Server) -> list[str]:
    """
    @return: the options that load C{server} and measure its CPU time.
    """
    return [
        "--connect",
        f"tcp:{HOST}:{server.port}",
        "--server-pid",
        str(server.process.pid),
    ]


def measured_json(server: Server, driver: str, *args: str) -> dict[str, Any]:
    """
    Run the bench with C{args} on C{driver} against C{server} (see
    L{measured}), and check that it succeeded and says which driver ran.

    @return: its C{--json} document.
    """
    result = bench(*measured(server), *args, "--driver", driver, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["driver"] == driver
    return document


@contextmanager
def serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    """
    A threaded TCP server on L{HOST} whose connections C{handler} serves
    (one that misbehaves), shut down on exit.

    @return: its port.
    """
    with socketserver.ThreadingTCPServer((HOST, 0), handler) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


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
    assert "srv us/KiB" in header
    assert line.split()[0] == "2x64K"
    assert float(line.split()[3].replace(",", "")) > 0


def test_burst(server: Server) -> None:
    """
    C{--burst} opens the connections, each gets its byte back, and the
    server's memory per connection is reported.
    """
    result = bench(*measured(server), "--burst", "50")
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


@pytest.mark.parametrize("driver", ["python", "native"])
def test_wrongEchoIsAnError(driver: str) -> None:
    """
    A server that echoes the wrong bytes is reported, with exit status 1,
    whichever driver checks the echoes.
    """
    if driver == "native":
        native_or_skip()
    with serving(_Corrupting) as port:
        result = bench(
            "--connect",
            f"tcp:{HOST}:{port}",
            "--connections",
            "2",
            "--size",
            "100",
            "--duration",
            "0.3",
            "--driver",
            driver,
            "--json",
        )
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
    A bad option is a one-line usage error with status 2, naming the
    program as it was run: as a module, or as the console script.
    """
    result = bench("--connect", "ssl:h:1")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "python -m echotwist.bench: error:"
    )
    script = Path(sys.executable).with_name("echotwist-bench")
    result = subprocess.run(
        [str(script), "--connect", "ssl:h:1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("usage: echotwist-bench ")
    assert result.stderr.splitlines()[-1].startswith("echotwist-bench: error:")


@pytest.mark.parametrize("driver", ["python", "native"])
def test_drivers(server: Server, driver: str) -> None:
    """
    Both drivers give the same figures, in the same shape: echoes, latency
    percentiles, errors, server CPU per echo and the server's share of a
    core; the JSON says which driver ran.
    """
    if driver == "native":
        native_or_skip()
    document = measured_json(
        server, driver, "--connections", "20", "--size", "1K", "--duration", "0.5"
    )
    [row] = document["rows"]
    assert row["errors"] == 0
    assert row["echoes_per_s"] > 0
    assert row["mib_per_s"] == pytest.approx(row["echoes_per_s"] / 1024, rel=0.01)
    assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["server_us_per_echo"] > 0
    assert 0 < row["server_share"] < 1.5
    assert isinstance(row["server_saturated"], bool)


def test_driversSameFigures(server: Server) -> None:
    """
    The text output of both drivers has the same columns, interval lines,
    and says whether the server was saturated.
    """
    native_or_skip()
    outputs = []
    for driver in ("python", "native"):
        result = bench(
            *measured(server),
            "--connections",
            "4",
            "--duration",
            "2.2",
            "--driver",
            driver,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result)
    heads = [r.stdout.splitlines()[0].split() for r in outputs]
    assert heads[0] == heads[1]
    for r in outputs:
        assert "saturated: " in r.stdout
        intervals = [line for line in r.stderr.splitlines() if "-" in line[:14]]
        # A line a second; the last, partial one ends with the window.
        assert intervals[0].split()[0] == "0.00-"
        assert len(intervals) >= 2
        assert float(intervals[-1].split()[1]) == pytest.approx(2.2, abs=0.1)


@pytest.mark.parametrize("in_flight", ["1", "0"])
@pytest.mark.parametrize("driver", ["python", "native"])
def test_storm(server: Server, driver: str, in_flight: str) -> None:
    """
    A storm opens every connection, one handshake at a time or all at once,
    each echoes its byte, and the figures (connect latency, slow connects,
    overflows, server CPU per connection) are reported.
    """
    if driver == "native":
        native_or_skip()
    found = measured_json(
        server, driver, "--storm", "300", "--storm-in-flight", in_flight
    )
    assert found["in_flight"] == int(in_flight)
    assert (found["connections"], found["connected"], found["echoed"]) == (300,) * 3
    assert found["errors"] == 0
    assert 0 < found["connect_p50_ms"] <= found["connect_p99_ms"]
    assert found["connect_p99_ms"] <= found["connect_max_ms"]
    assert found["slow_connects"] >= 0
    assert found["listen_overflows"] >= 0
    assert found["seconds"] > 0
    assert found["server_us_per_connection"] > 0


def test_connectRate(server: Server) -> None:
    """
    A connect rate opens connections at that rate for the duration, each
    echoing once, and reports accepted connections per second.
    """
    result = bench(
        "--connect",
        f"tcp:{HOST}:{server.port}",
        "--connect-rate",
        "200",
        "--duration",
        "1",
        "--size",
        "100",
    )
    assert result.returncode == 0, result.stderr
    assert "connect rate: 200/s" in result.stdout
    assert "connected 200, echoed 200, errors 0" in result.stdout
    accepted = [x for x in result.stdout.splitlines() if "accepted and echoed" in x]
    assert 150 < float(accepted[0].split()[-2].replace(",", "")) < 250


class _Silent(socketserver.BaseRequestHandler):
    """
    Read everything, answer nothing (an HTTP server waiting for the end of
    a request's headers).
    """

    def handle(self) -> None:
        while self.request.recv(65536):
            pass


@pytest.mark.parametrize("driver", ["python", "native"])
def test_noEcho(driver: str) -> None:
    """
    Against a server that does not echo, the bench says "no echo from the
    server" within a few seconds, exit status 1.
    """
    if driver == "native":
        native_or_skip()
    with serving(_Silent) as port:
        start = time.monotonic()
        result = bench(
            "--connect",
            f"tcp:{HOST}:{port}",
            "--connections",
            "2",
            "--duration",
            "60",
            "--driver",
            driver,
        )
        took = time.monotonic() - start
    assert result.returncode == 1
    assert "no echo from the server within 3 s" in result.stdout
    assert took < 30


def test_plotMissingFolder(tmp_path: Path) -> None:
    """
    C{--plot} into a missing folder is one line and status 2, before any
    run (nothing listens on the target: a run would fail to connect).
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        missing = tmp_path / "no" / "such.png"
        result = bench("--connect", f"tcp:{HOST}:{port}", "--plot", str(missing))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f"no such folder {missing.parent}")
    assert "Traceback" not in result.stderr


def test_plotOneRun(server: Server, tmp_path: Path) -> None:
    """
    C{--plot} of one run without C{--server-pid}, and of a stream run,
    draws a PNG instead of crashing.
    """
    for extra in ([], ["--stream", "--size", "64K"]):
        plot = tmp_path / f"one{len(extra)}.png"
        result = bench(*short_run(server), "--plot", str(plot), *extra)
        assert result.returncode == 0, result.stderr
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_versionAndHelp() -> None:
    """
    C{--version} names the version; C{--help} shows the defaults.
    """
    result = bench("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("python -m echotwist.bench ")
    text = " ".join(bench("--help").stdout.split())
    assert "(default: 100)" in text and "(default: 1024)" in text
    assert "(default: 10)" in text


def test_compilerMissingNote(server: Server, tmp_path: Path) -> None:
    """
    Where there is no C compiler, the bench says so and runs on the Python
    driver.
    """
    env = {"CC": "no-such-cc", "XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "echotwist.bench",
            *short_run(server),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "note: native driver skipped, no C compiler (no-such-cc) found" in (
        result.stderr
    )
    assert "driver: python" in result.stdout
    assert shutil.which("no-such-cc") is None


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
        "3x64,storm:50",
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
    storms = json.loads(result.stdout)["storms"]
    # The select() server holds too few descriptors for storms.
    stormed = [s for s in servers.split(",") if s != "reference-select"]
    assert [r["server"] for r in storms] == stormed
    assert "storm:50 reference-select: skipped, select() serves" in result.stderr
    assert all(r["echoed"] == 50 and r["workload"] == "storm:50" for r in storms)
    assert all(len(r["rounds"]) == 1 for r in found + storms)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "spec", [s for s in SERVERS if not s.no_storms], ids=lambda s: s.name
)
def test_compareSameBacklog(spec: Any) -> None:
    """
    Every server a storm is compared on listens with the same backlog as
    C{twistd echo} (the system's C{somaxconn}): a shorter queue would
    overflow first and make the comparison measure the queue.
    """
    if spec.missing():
        pytest.skip(spec.missing())
    with twistd_echo() as reference:
        expected = listen_backlog(reference.port)
    with started(spec) as running:
        assert listen_backlog(running.port) == expected


@pytest.mark.parametrize("driver", ["python", "native"])
def test_stormUnix(driver: str) -> None:
    """
    A storm against a UNIX socket counts the connects its full queue
    refused at once as listen-queue overflows; every other one echoes.
    """
    if driver == "native":
        native_or_skip()
    folder = tempfile.mkdtemp(prefix="bench-")
    try:
        path = os.path.join(folder, "echo.sock")
        with twistd_echo(ports=(f"unix:{path}", LOOPBACK)) as server:
            result = bench(
                "--connect",
                f"unix:path={path}",
                "--storm",
                "3000",
                "--server-pid",
                str(server.process.pid),
                "--driver",
                driver,
                "--json",
            )
    finally:
        shutil.rmtree(folder)
    found = json.loads(result.stdout)
    refused = found["listen_overflows"] or 0
    assert found["echoed"] + refused == 3000
    assert found["errors"] == refused
    assert result.returncode == (1 if refused else 0)


@pytest.mark.parametrize("in_flight, most", [(1, 9), (0, 20)])
def test_nativeInFlight(in_flight: int, most: int) -> None:
    """
    The native driver's storm starts the next connect only once fewer than
    C{in_flight} handshakes are under way: against a listener whose queue
    holds one and that never accepts, one at a time stalls on a dropped SYN
    as a blocking connect would; with no limit every connect starts.
    """
    native_or_skip()
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        target = Target(host=HOST, port=listener.getsockname()[1])
        line = native_conns(
            build(), target, 20, 0, 1, True, 0.5, None, lambda: None, in_flight
        )
    started = sum(1 for s in line.started if not math.isnan(s))
    assert started <= most
    assert started >= (20 if in_flight == 0 else 1)
