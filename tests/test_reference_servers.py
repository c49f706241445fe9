"""
Live tests of both reference servers with the raw client: what they share.
"""

from __future__ import annotations

import io
import signal
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from reference_support import (
    HOST,
    SERVERS,
    TIMEOUT,
    RunningServer,
    connect,
    recv_exactly,
    running_server,
)

from echotwist.reference.client import client


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """
    Each reference server in turn, with its default options.
    """
    with running_server(request.param) as running:
        yield running


@pytest.fixture(params=SERVERS)
def chunking_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """
    Each reference server in turn, reading 16 bytes at a time like the course's.
    """
    with running_server(request.param, "--buffer-size", "16") as running:
        yield running


def test_echoes_a_message(server: RunningServer) -> None:
    """
    The raw client gets its message back, and the server logs the client and
    the message.
    """
    reply = client("Demo Message", HOST, server.port, io.StringIO(), timeout=TIMEOUT)
    assert reply == "Demo Message"
    output = server.wait_for_output("Closed by")
    assert "Connected by ('127.0.0.1', " in output
    assert "Received b'Demo Message' from ('127.0.0.1', " in output


def test_echoes_non_ascii_text(server: RunningServer) -> None:
    """
    Text whose UTF-8 encoding is longer than its characters comes back whole.
    """
    message = "héllo wörld ✓ 🐍"
    assert client(message, HOST, server.port, io.StringIO(), timeout=TIMEOUT) == message


@pytest.mark.parametrize("size", [16, 32, 10_000])
def test_echoes_in_16_byte_chunks(chunking_server: RunningServer, size: int) -> None:
    """
    With C{--buffer-size 16} the echo comes back in many chunks, and the
    client still gets all of it, including when the length is a multiple of
    16 (where "stop at a short chunk" would wait forever).
    """
    message = "".join(chr(ord("a") + i % 26) for i in range(size))
    reply = client(message, HOST, chunking_server.port, io.StringIO(), timeout=TIMEOUT)
    assert reply == message
    output = chunking_server.wait_for_output("Closed by")
    assert "Received b'abcdefghijklmnop' from" in output


def test_serves_clients_one_after_another(server: RunningServer) -> None:
    """
    A client that has left does not stop the server from serving the next.
    """
    for n in range(5):
        message = f"message {n}"
        reply = client(message, HOST, server.port, io.StringIO(), timeout=TIMEOUT)
        assert reply == message


def test_half_closed_client_gets_everything_back(server: RunningServer) -> None:
    """
    A client that sends, then shuts down its sending side, still receives the
    whole echo before the server closes the connection.
    """
    data = bytes(range(256)) * 4 * 1024  # 1 MiB: more than one buffer's worth
    with connect(server.port) as sock:

        def send_then_shut_down() -> None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        # Send from a thread: reading at the same time keeps the echo flowing.
        sender = threading.Thread(target=send_then_shut_down)
        sender.start()
        received = bytearray()
        try:
            while chunk := sock.recv(1024 * 1024):
                received += chunk
        finally:
            sender.join(TIMEOUT)
    assert len(received) == len(data)
    assert received == data


def test_survives_a_reset_connection(server: RunningServer) -> None:
    """
    A client that resets its connection (RST instead of a normal close)
    costs the server that client only.
    """
    for _ in range(3):
        with connect(server.port) as sock:
            sock.sendall(b"x" * 100_000)
            # Linger on, with a timeout of 0: close() sends RST at once.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    assert client("still here", HOST, server.port, io.StringIO(), timeout=TIMEOUT) == (
        "still here"
    )
    assert server.process.poll() is None


def test_quiet_leaves_out_message_lines() -> None:
    """
    With C{--quiet} the server logs connections but not each message.
    """
    for module in SERVERS:
        with running_server(module, "--quiet") as server:
            client("secret", HOST, server.port, io.StringIO(), timeout=TIMEOUT)
            output = server.wait_for_output("Closed by")
            assert "Connected by" in output
            assert "secret" not in output


def test_ctrl_c_stops_cleanly(server: RunningServer) -> None:
    """
    Ctrl-C (SIGINT) stops the server with status 0, a last log line and no
    traceback, even while a client is connected; the client sees its
    connection closed.
    """
    with connect(server.port) as sock:
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(TIMEOUT) == 0
        assert sock.recv(1) == b""
    output = server.output()
    assert output.rstrip().endswith("Shutting down")
    assert "Traceback" not in output
