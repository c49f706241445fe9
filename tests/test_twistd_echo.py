"""
Live tests of C{twistd -n echo} and C{python -m echotwist.client}: real
ports, real processes.
"""

from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from sockets import HOST, TIMEOUT
from twistd_support import LOOPBACK, TWISTD, Server, twistd_echo
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint

from echotwist.client import echo


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """
    A C{twistd -n echo} on a loopback port the system picked.
    """
    with twistd_echo(directory=tmp_path) as twistd:
        yield twistd


def client(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """
    Run the client command line to completion.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", *argv],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_readmeExample(server: Server) -> None:
    """
    The README's example: the client prints C{hello world} and exits 0, and
    the server logs the connection in the lab's C{Connected by} form.
    """
    result = client("--port", str(server.port), "hello world")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        b"hello world\n",
        b"",
    )
    server.wait_for(r"Disconnected \('127\.0\.0\.1', \d+\): 11 bytes in")
    assert "Connected by ('127.0.0.1', " in server.output()


@pytest.mark.parametrize(
    ("twistd_options", "reactor"),
    [
        ((), "echotwist.server.reactor.EchoReactor"),
        (("--reactor", "poll"), "twisted.internet.pollreactor.PollReactor"),
    ],
)
def test_reactor(tmp_path: Path, twistd_options: tuple[str, ...], reactor: str) -> None:
    """
    C{twistd echo} runs on the echotwist-epoll reactor unless twistd's
    C{--reactor} names another, and then on that one; it echoes on both.
    """
    with twistd_echo(directory=tmp_path, twistd_options=twistd_options) as twistd:
        result = client("--port", str(twistd.port), "which reactor")
        assert (result.returncode, result.stdout) == (0, b"which reactor\n")
        twistd.wait_for(rf"reactor class: {re.escape(reactor)}\.")


def test_binaryThroughStdin(server: Server) -> None:
    """
    Bytes that are not UTF-8, NUL and 0xFF among them, round-trip through
    standard input and output unchanged.
    """
    data = bytes(range(256)) * 64 + b"\x00\xff\x00"
    result = client("--port", str(server.port), "-", stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_connectEndpointAndVerbose(server: Server) -> None:
    """
    C{--connect} takes a client endpoint string; C{-v} reports timings.
    """
    result = client("-v", "--connect", f"tcp:host={HOST}:port={server.port}", "x")
    assert result.returncode == 0
    assert result.stdout == b"x\n"
    assert b"1 bytes echoed in" in result.stderr


@pytest_twisted.ensureDeferred
async def test_concurrentClientsExact(server: Server) -> None:
    """
    50 concurrent clients with distinct payloads up to 1 MiB each get exactly
    their own bytes back.
    """
    from twisted.internet import reactor

    rng = random.Random(862)
    payloads = [
        bytes([i]) + rng.randbytes(rng.randint(0, 1 << 20)) for i in range(49)
    ] + [rng.randbytes(1 << 20)]
    endpoint = TCP4ClientEndpoint(reactor, HOST, server.port)
    replies = await defer.gatherResults(
        [echo(reactor, endpoint, p, timeout=TIMEOUT) for p in payloads],
        consumeErrors=True,
    )
    assert [len(r) for r in replies] == [len(p) for p in payloads]
    assert replies == payloads


@pytest_twisted.ensureDeferred
async def test_acceptsManyAtOnce(server: Server) -> None:
    """
    300 connections opened at once are all accepted and echoed: the large
    default backlog refuses nothing it should accept.
    """
    from twisted.internet import reactor

    endpoint = TCP4ClientEndpoint(reactor, HOST, server.port)
    messages = [f"client {i}".encode() for i in range(300)]
    replies = await defer.gatherResults(
        [echo(reactor, endpoint, m, timeout=TIMEOUT) for m in messages],
        consumeErrors=True,
    )
    assert replies == messages


@pytest_twisted.ensureDeferred
async def test_unixSocket(tmp_path: Path) -> None:
    """
    A UNIX socket listener serves echo, beside a TCP one, and logs its
    (unnamed) clients as such.
    """
    from twisted.internet import reactor

    path = tmp_path / "echo.sock"
    # UNIX first: it logs before it binds, TCP once it listens (twistd_echo
    # waits for both lines).
    with twistd_echo(ports=[f"unix:{path}", LOOPBACK], directory=tmp_path) as s:
        data = b"\x00over unix\xff"
        reply = await echo(reactor, UNIXClientEndpoint(reactor, str(path)), data)
        assert reply == data
        result = client("--connect", f"unix:path={path}", "hi")
        assert result.stdout == b"hi\n"
        s.wait_for(r"Connected by unix:\(unnamed\)", count=2)
        s.wait_for(r"Disconnected unix:\(unnamed\): 2 bytes in", count=1)


def test_halfClose(server: Server) -> None:
    """
    A client that shuts its sending side gets all its bytes back, then the
    server closes.
    """
    data = b"half-close " * 50_000
    with socket.create_connection((HOST, server.port), timeout=TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := s.recv(65536):
            received += chunk
    assert bytes(received) == data


def test_portInUse(tmp_path: Path) -> None:
    """
    A port that is taken ends twistd with exit 1 and one line naming the
    option, the address and the reason, not a traceback.
    """
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                TWISTD,
                "-n",
                "--pidfile=",
                "echo",
                "--port",
                f"tcp:{port}:interface={HOST}",
            ],
            capture_output=True,
            timeout=TIMEOUT,
            cwd=tmp_path,
            check=False,
        )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1
    assert (
        f"twistd echo: --port 'tcp:{port}:interface={HOST}': "
        "Address already in use" in output
    )
    assert "Traceback" not in output


def test_badOption(tmp_path: Path) -> None:
    """
    A bad option value is a usage error naming it, with a non-zero exit.
    """
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "echo", "--port", "99999"],
        capture_output=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr  # twistd prints usage to stdout
    assert result.returncode != 0
    assert b"--port '99999' is not a port number (0-65535)" in output
    assert b"Traceback" not in output


def test_clientCannotConnect() -> None:
    """
    Nobody listening: exit 1 and one line on standard error.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]  # bound, not listening: connections refused
        result = client("--host", HOST, "--port", str(port), "hi")
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().count("\n") == 1
    assert f"cannot connect to {HOST}:{port}" in result.stderr.decode()


@pytest.mark.parametrize(
    "argv",
    [
        ["--udp", "--host", "255.255.255.255", "hi"],
        ["--host", "a..b", "hi"],
        ["--udp", "--host", "a..b", "hi"],
        ["--connect", "tcp:host=a..b:port=1", "hi"],
    ],
)
def test_cannot_connect(argv: list[str]) -> None:
    """
    A broadcast address, or a host name that can't be valid, over TCP or
    UDP: exit 1 with one line, not a traceback or a hang.
    """
    result = client(*argv)
    assert result.returncode == 1
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("echotwist-client: cannot connect to ")


def test_clientTimeout() -> None:
    """
    A server that accepts but never answers: exit 3 after the timeout.
    """
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = client("--host", HOST, "--port", str(port), "--timeout", "0.5", "hi")
    assert result.returncode == 3
    assert b"no complete echo within 0.5 s" in result.stderr


def test_clientShortEcho() -> None:
    """
    A server that closes after half the echo: exit 4.
    """
    with socket.socket() as half:
        half.bind((HOST, 0))
        half.listen()
        port = half.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "echotwist.client", "--port", str(port), "abcd"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            half.settimeout(TIMEOUT)
            connection, _ = half.accept()
            with connection:
                assert connection.recv(4) == b"abcd"
                connection.sendall(b"ab")
            _, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 4
    assert b"closed after 2 of 4" in stderr


def test_twistdListsPlugin() -> None:
    """
    C{twistd --help} lists the C{echo} plugin.
    """
    result = subprocess.run(
        [TWISTD, "--help"], capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0
    assert any(
        line.split()[:1] == ["echo"] for line in result.stdout.decode().splitlines()
    )
