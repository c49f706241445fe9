"""
Live: what hostile clients of C{--metrics} can't do any more: make the
server read or store a request body, or take the descriptors the echo
service needs, or fill the log.
"""

from __future__ import annotations

import select
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack

import psutil
import pytest
from sockets import HOST, TIMEOUT, connect, round_trip
from twistd_support import LOOPBACK, Server, twistd_echo

#: The body a hostile client announces: 200 MiB.
BODY = 200 * 2**20
#: The most body bytes the client may get into the connection before the
#: answer: the socket buffers on both sides (a few MiB on loopback), far
#: short of the body, which the server never reads.
MAX_SENT = 32 * 2**20

LIMIT = 256
#: Metrics connections a flood opens against RLIMIT_NOFILE L{LIMIT}.
FLOOD = 600
#: Run a command with RLIMIT_NOFILE lowered to L{LIMIT}.
WITH_LIMIT = [
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def metrics_port(server: Server) -> int:
    """
    @return: the port the metrics site listens on, from the log.
    """
    return int(server.wait_for(r"Site starting on (\d+)").group(1))


def files_open(server: Server) -> list[str]:
    """
    @return: the regular files the server holds open (its log included).
    """
    return sorted(f.path for f in psutil.Process(server.process.pid).open_files())


def metrics_connections(server: Server, port: int) -> int:
    """
    @return: connections the server holds on the metrics port, besides the
        listening socket.
    """
    connections = psutil.Process(server.process.pid).net_connections("tcp")
    return sum(
        1
        for c in connections
        if c.laddr.port == port and c.status != psutil.CONN_LISTEN
    )


@pytest.fixture
def server() -> Iterator[Server]:
    """
    C{twistd echo} with C{--metrics}, both on loopback.
    """
    with twistd_echo("--metrics", LOOPBACK) as running:
        yield running


def post(port: int, head: bytes, chunk: bytes) -> tuple[int, bytes]:
    """
    Send C{head}, then C{chunk}s up to L{BODY} bytes while reading what
    comes back, until the server answers and closes.

    @return: the body bytes the client got into the connection, and the
        response.
    """
    sent = 0
    response = b""
    with connect(port) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        deadline = time.monotonic() + TIMEOUT
        while sent < BODY and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            try:
                if readable:
                    data = sock.recv(65536)
                    if not data:
                        break
                    response += data
                if writable:
                    sent += sock.send(chunk)
            except OSError:  # EPIPE, ECONNRESET: closed by the server
                break
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)
        try:
            while data := sock.recv(65536):
                response += data
        except OSError:
            pass
    return sent, response


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_post_body_not_read(server: Server, chunked: bool) -> None:
    """
    A C{POST /metrics} with a 200 MiB body (by length or chunked) is
    answered C{413} and closed before the client could send more than the
    socket buffers hold; the server opens no file for it and still echoes
    and scrapes.
    """
    port = metrics_port(server)
    before = files_open(server)
    if chunked:
        head = b"Transfer-Encoding: chunked\r\n\r\n"
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    else:
        head = b"Content-Length: %d\r\n\r\n" % BODY
        chunk = b"x" * 65536
    sent, response = post(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n" + head, chunk)
    print(f"body bytes the client got in before the answer: {sent}")
    assert response.startswith(b"HTTP/1.1 413 ")
    assert sent < MAX_SENT
    assert files_open(server) == before
    assert round_trip(server.port, b"still") == b"still"
    url = f"http://{HOST}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as scrape:
        assert b"echotwist_connections_total" in scrape.read()


def test_scrapes_not_logged(server: Server) -> None:
    """
    Scrapes add no line to the log.
    """
    port = metrics_port(server)
    url = f"http://{HOST}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as scrape:
        scrape.read()
    lines = server.output().count("\n")
    for _ in range(20):
        with urllib.request.urlopen(url, timeout=TIMEOUT) as scrape:
            scrape.read()
    assert server.output().count("\n") == lines


def test_hanging_metrics_clients_do_not_starve_echo() -> None:
    """
    With RLIMIT_NOFILE at 256, 600 metrics connections that send part of a
    request and hang hold at most 16 descriptors (the rest are closed at
    once), echo clients are all served meanwhile, the log gets a line or
    two rather than one per connection, and the hanging ones are aborted
    at the deadline.
    """
    with (
        twistd_echo("--metrics", LOOPBACK, prefix=WITH_LIMIT) as server,
        ExitStack() as stack,
    ):
        port = metrics_port(server)
        lines = server.output().count("\n")
        hanging = []
        for _ in range(FLOOD):
            try:
                sock = stack.enter_context(connect(port))
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                continue
            hanging.append(sock)
        held = metrics_connections(server, port)
        echoed = [round_trip(server.port, b"echo %d" % i) for i in range(50)]
        print(
            f"{len(hanging)} metrics connections opened; the server holds "
            f"{held}; {psutil.Process(server.process.pid).num_fds()} descriptors"
        )
        assert echoed == [b"echo %d" % i for i in range(50)]
        assert held <= 16
        deadline = time.monotonic() + TIMEOUT
        while metrics_connections(server, port):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        log = [
            line
            for line in server.output().splitlines()[lines:]
            if "echotwist.server.protocol.Echo#" not in line  # the echo clients
        ]
        print("\n".join(log))
        assert len(log) <= 4
        assert "Traceback" not in server.output()
