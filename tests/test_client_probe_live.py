"""
Live tests of the prober (C{python -m echotwist.client -c N ...}) against
C{twistd echo} over TCP, TLS, UNIX and UDP, and against a server that
corrupts, truncates or drops echoes (C{tests/bad_echo.py}).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT
from test_client_live import Live, client
from test_client_live import live as live
from twistd_support import environment, twistd_echo

CLIENT = [sys.executable, "-m", "echotwist.client"]
BAD_ECHO = Path(__file__).with_name("bad_echo.py")
OK_LINE = r"(\d+) bytes from (\S+): seq=(\d+) time=[\d.]+ ms"


def probe(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """
    @return: the prober run to its end (every run here is bounded by C{-c}).
    """
    return client(*argv, cwd=cwd)


def lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    """
    @return: its standard output's lines.
    """
    return result.stdout.decode().splitlines()


@pytest.mark.parametrize("kind", ["tcp", "tls", "unix", "udp"])
def test_every_transport(live: Live, kind: str) -> None:
    """
    Three probes over each transport come back exact: a line each with its
    sequence number, then the statistics, and exit status 0.
    """
    where = {
        "tcp": ["--host", HOST, "-p", str(live.tcp)],
        "tls": ["--connect", f"tls:localhost:{live.tls}:trustRoots=ca"],
        "unix": ["--connect", f"unix:{live.unix}"],
        "udp": ["--udp", "--host", HOST, "-p", str(live.udp)],
    }[kind]
    result = probe(*where, "-c", "3", "-i", "0.1", "-s", "100", cwd=live.directory)
    out = lines(result)
    assert result.returncode == 0, (out, result.stderr)
    assert out[0].startswith("PROBE ")
    seqs = [int(m[3]) for line in out if (m := re.match(OK_LINE, line))]
    assert seqs == [1, 2, 3]
    assert "3 probes sent, 3 received, 0% lost, 0 corrupted, 0 duplicates" in out
    assert any(line.startswith("rtt min/avg/median/max/mdev = ") for line in out)


def test_reconnect_tls_times(live: Live) -> None:
    """
    C{--reconnect} over TLS reports connect, handshake and echo times apart,
    and each connection closes cleanly.
    """
    before = live.server.output().count("closed cleanly")
    result = probe(
        "--connect",
        f"tls:localhost:{live.tls}:trustRoots=ca",
        "--reconnect",
        "-c",
        "2",
        "-i",
        "0.1",
        cwd=live.directory,
    )
    out = lines(result)
    assert result.returncode == 0, (out, result.stderr)
    probes = [line for line in out if re.match(OK_LINE, line)]
    assert len(probes) == 2
    assert all(re.search(r"connect=[\d.]+ ms handshake=[\d.]+ ms$", p) for p in probes)
    assert any(line.startswith("handshake min/avg") for line in out)
    live.server.wait_for("closed cleanly", before + 2)
    assert "non-clean" not in live.server.output()


def test_json(live: Live) -> None:
    """
    C{--json}: one object per probe with the documented keys, and a
    summary line last.
    """
    result = probe(
        "--host", HOST, "-p", str(live.tcp), "-c", "2", "-i", "0.1", "--json"
    )
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in lines(result)]
    for n, obj in enumerate(objects[:2], 1):
        assert obj["seq"] == n and obj["status"] == "ok" and obj["bytes"] == 64
        assert obj["rtt_ms"] > 0 and "connect_ms" in obj
    summary = objects[2]["summary"]
    assert (summary["sent"], summary["received"], summary["loss_pct"]) == (2, 2, 0.0)
    assert {"min_ms", "median_ms", "p99_ms", "jitter_ms"} <= summary.keys()


def test_udp_rate_limit_loss() -> None:
    """
    Probes faster than the server's per-source UDP rate limit are lost, and
    said so: some lost, exit status 5.
    """
    with twistd_echo(
        "--udp", f"{HOST}:0", "--udp-rate", "0.5", "--udp-burst", "2"
    ) as server:
        port = server.wait_for(r"EchoDatagramProtocol starting on (\d+)")[1]
        result = probe(
            "--udp",
            "--host",
            HOST,
            "-p",
            port,
            "-c",
            "5",
            "-i",
            "0.05",
            "--timeout",
            "1",
        )
    out = lines(result)
    assert result.returncode == 5, (out, result.stderr)
    assert sum(1 for line in out if re.match(OK_LINE, line)) == 2
    assert sum(1 for line in out if line.startswith("no reply from")) == 3
    assert "5 probes sent, 2 received, 60% lost, 0 corrupted, 0 duplicates" in out


def test_closed_udp_port_at_once() -> None:
    """
    A closed UDP port (ICMP port unreachable) is reported as refused at
    once: with a 600 s timeout, the run still ends (the subprocess's own
    limit is far shorter).
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port = str(sock.getsockname()[1])
    result = probe(
        "--udp", "--host", HOST, "-p", port, "-c", "2", "-i", "0.1", "--timeout", "600"
    )
    out = lines(result)
    assert result.returncode == 6, (out, result.stderr)
    assert [line for line in out if line.startswith("refused")] == [
        f"refused by {HOST}:{port}: seq=1: port unreachable",
        f"refused by {HOST}:{port}: seq=2: port unreachable",
    ]


@pytest.fixture(params=["corrupt", "truncate", "once"])
def bad_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, int]]:
    """
    A broken echo server: its mode, TCP port and UDP port.
    """
    process = subprocess.Popen(
        [sys.executable, str(BAD_ECHO), request.param],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        _, tcp, _, udp = process.stdout.readline().decode().split()
        yield request.param, int(tcp), int(udp)
    finally:
        process.kill()
        process.wait(TIMEOUT)


def test_bad_server(bad_server: tuple[str, int, int]) -> None:
    """
    Against a server that corrupts or truncates echoes, every probe is
    reported corrupt (exit 4), over TCP and UDP; against one that drops the
    connection after each echo, the drop is reported and the run reconnects
    (every probe still exact, exit 0).
    """
    mode, tcp, udp = bad_server
    result = probe(
        "--host", HOST, "-p", str(tcp), "-c", "3", "-i", "0.2", "--timeout", "5"
    )
    out = lines(result)
    if mode == "once":
        assert result.returncode == 0, (out, result.stderr)
        assert sum(1 for line in out if re.match(OK_LINE, line)) == 3
        assert any(line.endswith("between probes; reconnecting") for line in out), out
        return
    assert result.returncode == 4, (out, result.stderr)
    corrupt = [line for line in out if line.startswith("corrupt reply")]
    assert len(corrupt) == 3, out
    expected = "differs at byte 63" if mode == "corrupt" else "cut short"
    assert all(expected in line for line in corrupt), corrupt
    result = probe("--udp", "--host", HOST, "-p", str(udp), "-c", "2", "-i", "0.1")
    out = lines(result)
    assert result.returncode == 4, (out, result.stderr)
    detail = "differs at byte 63" if mode == "corrupt" else "63 bytes back of 64 sent"
    assert sum(1 for line in out if line.startswith("corrupt") and detail in line) == 2


def test_broken_pipe(live: Live) -> None:
    """
    Piped into C{head}, the prober stops quietly once head exits: no
    BrokenPipeError, no hang, exit status 141 (as ping, killed by SIGPIPE).
    """
    command = (
        f"set -o pipefail; {sys.executable} -m echotwist.client --host {HOST} "
        f"-p {live.tcp} -i 0.02 | head -n 2"
    )
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        timeout=TIMEOUT,
        env=environment(),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 141, result.stderr
    assert len(lines(result)) == 2
    assert result.stderr == b""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt(live: Live, signum: int) -> None:
    """
    Ctrl-C (SIGINT) or SIGTERM ends an endless run with the statistics and
    the status of the probes settled.
    """
    process = subprocess.Popen(
        [*CLIENT, "--host", HOST, "-p", str(live.tcp), "-c", "0", "-i", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        seen = [process.stdout.readline() for _ in range(3)]
        assert seen[2].startswith(b"64 bytes from"), seen
        process.send_signal(signum)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    text = out.decode()
    assert re.search(r"\d+ probes sent, \d+ received, 0% lost", text), text
    assert "echo statistics" in text


def test_deadline(live: Live) -> None:
    """
    C{-w} ends an endless run.
    """
    started = time.monotonic()
    result = probe("--host", HOST, "-p", str(live.tcp), "-i", "0.1", "-w", "0.5")
    assert result.returncode == 0, result.stderr
    assert "echo statistics" in result.stdout.decode()
    assert time.monotonic() - started < TIMEOUT


def test_bad_input_one_line() -> None:
    """
    Bad values are one line and exit 2.
    """
    for argv in (
        ["-c", "-1"],
        ["-i", "0"],
        ["-i", "abc"],
        ["--udp", "-s", "70000"],
        ["--spread"],
    ):
        result = probe(*argv)
        assert result.returncode == 2, argv
        assert len(result.stderr.decode().splitlines()) == 1, result.stderr


def test_addressing(live: Live) -> None:
    """
    C{-6} against an IPv4 address is one line and exit 1; C{--bind} sets
    the source port (the server logs it); C{--tos} marked probes still
    echo; C{--all-addresses} probes each address of a literal (one).
    """
    wrong = probe("-6", "--host", HOST, "-p", str(live.tcp), "-c", "1")
    assert wrong.returncode == 1
    assert wrong.stderr.decode().splitlines() == [
        f"echotwist-client: cannot resolve {HOST}: no IPv6 address found"
    ]
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        source = sock.getsockname()[1]
    bound = probe(
        "--host",
        HOST,
        "-p",
        str(live.tcp),
        "-c",
        "1",
        "--bind",
        f"{HOST}:{source}",
        "--tos",
        "0x20",
        "--all-addresses",
    )
    assert bound.returncode == 0, bound.stderr
    live.server.wait_for(rf"Connected by \('{HOST}', {source}\)")
