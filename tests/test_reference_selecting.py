"""
Live tests of what sets the select server apart: many clients at once,
clients that do not read, and more connections than select() can watch.
"""

from __future__ import annotations

import io
import resource
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from reference_support import (
    HOST,
    TIMEOUT,
    RunningServer,
    connect,
    recv_exactly,
    running_server,
)

from echotwist.reference.client import client
from echotwist.reference.selecting import FD_SETSIZE

MODULE = "echotwist.reference.selecting"


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """
    A select server with its default options.
    """
    with running_server(MODULE) as running:
        yield running


def test_many_concurrent_clients_with_interleaved_sends(server: RunningServer) -> None:
    """
    200 clients are connected at once, each sends its message in three parts
    taking turns with the others, and each gets its own message back.

    A server that serves one client at a time fails this: it never gets to
    the second client while the first stays connected.
    """
    count, parts = 200, 3
    with ExitStack() as stack:
        sockets = [stack.enter_context(connect(server.port)) for _ in range(count)]
        for part in range(parts):
            for n, sock in enumerate(sockets):
                sock.sendall(f"<client {n} part {part}>".encode())
        for n, sock in enumerate(sockets):
            expected = "".join(f"<client {n} part {part}>" for part in range(parts))
            assert recv_exactly(sock, len(expected)).decode() == expected


def test_client_that_never_reads_stalls_nobody(server: RunningServer) -> None:
    """
    A client that sends without reading is eventually not read from (its
    sends stop going through, so the server's memory for it is bounded),
    other clients are served meanwhile, and it gets every byte back in order
    once it reads.
    """
    # Byte i of the stream is i % 256, so any piece of it is a slice of this
    # pattern starting at (its offset % 256); it covers pieces up to 1 MiB.
    piece = 1024 * 1024
    pattern = bytes(range(256)) * (piece // 256 + 1)
    limit = 256 * 1024 * 1024  # far beyond what the kernel buffers
    with connect(server.port) as hog:
        hog.settimeout(2.0)
        sent = 0
        while sent < limit:
            try:
                sent += hog.send(pattern[sent % 256 : sent % 256 + 65536])
            except TimeoutError:
                break
        assert sent < limit, "the server kept reading from a client that never reads"

        reply = client("not stalled", HOST, server.port, io.StringIO(), timeout=TIMEOUT)
        assert reply == "not stalled"

        hog.settimeout(TIMEOUT)
        received = 0
        while received < sent:
            chunk = hog.recv(piece)
            assert chunk, f"connection closed after {received} of {sent} bytes"
            start = received % 256
            assert chunk == pattern[start : start + len(chunk)]
            received += len(chunk)
    assert server.process.poll() is None


@pytest.fixture
def many_files() -> Iterator[int]:
    """
    Raise this process's soft limit on open files so that it, and a server it
    starts, can go past C{FD_SETSIZE}; restore it afterwards.
    """
    needed = 2 * FD_SETSIZE + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(
            f"the hard limit on open files is {hard}; going past select()'s "
            f"FD_SETSIZE ({FD_SETSIZE}) needs {needed}"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        yield needed
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _served_and_refused(sockets: list[socket.socket]) -> tuple[int, int]:
    """
    Try one echo on each connection.

    @param sockets: The connections.
    @return: How many were echoed and how many were closed by the server.
    """
    served = refused = 0
    for n, sock in enumerate(sockets):
        message = f"#{n}".encode()
        try:
            sock.sendall(message)
            reply = sock.recv(len(message))
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        if reply:
            assert reply + recv_exactly(sock, len(message) - len(reply)) == message
            served += 1
        else:
            refused += 1
    return served, refused


def _serves_again_once_closed(
    server: RunningServer, clients: ExitStack, served: int
) -> None:
    """
    Close the clients, and check that a new client is served once the server
    has seen the ones it served go, and that the server still runs.

    @param server: the server, out of room while the clients are open.
    @param clients: the clients' sockets.
    @param served: how many of them the server served.
    """
    clients.close()
    # Until the server has seen them go, it still has no room.
    server.wait_for_output("Closed by", served)
    reply = client("still serving", HOST, server.port, io.StringIO(), timeout=TIMEOUT)
    assert reply == "still serving"
    assert server.process.poll() is None


def test_more_connections_than_select_can_watch(many_files: int) -> None:
    """
    Connections whose descriptors select() cannot watch are accepted, logged
    and closed; the others are served, and so are new clients later.
    """
    extra = 50
    with running_server(MODULE, "--quiet") as server, ExitStack() as stack:
        sockets = [
            stack.enter_context(connect(server.port)) for _ in range(FD_SETSIZE + extra)
        ]
        served, refused = _served_and_refused(sockets)
        assert refused >= extra
        assert served >= FD_SETSIZE - 64
        assert "beyond what select() can watch" in server.output()
        _serves_again_once_closed(server, stack, served)


def test_out_of_file_descriptors() -> None:
    """
    A server that runs out of descriptors (a low limit on open files) refuses
    the extra connections with a log line instead of crashing or spinning,
    and serves again once clients leave.
    """
    nofile, total = 48, 80
    with (
        running_server(MODULE, "--quiet", nofile=nofile) as server,
        ExitStack() as stack,
    ):
        sockets = [stack.enter_context(connect(server.port)) for _ in range(total)]
        served, refused = _served_and_refused(sockets)
        assert served > 0
        assert refused >= total - nofile
        assert "out of file descriptors" in server.output()
        _serves_again_once_closed(server, stack, served)
