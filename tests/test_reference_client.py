"""
Live tests of the raw client: its function against a select server and a
misbehaving server, and its command line.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from reference_support import (
    HOST,
    SERVERS,
    TIMEOUT,
    RunningServer,
    running_server,
    unused_port,
)

from echotwist.reference.client import client


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """
    A select server reading 16 bytes at a time, so replies come in chunks.
    """
    with running_server(
        "echotwist.reference.selecting", "--buffer-size", "16"
    ) as running:
        yield running


def test_logs_each_step(server: RunningServer) -> None:
    """
    The client writes a line for connecting, sending, each chunk received
    and closing to its log buffer, in that order.
    """
    log = io.StringIO()
    assert client("hi", HOST, server.port, log, timeout=TIMEOUT) == "hi"
    assert log.getvalue().splitlines() == [
        f"connecting to {HOST} port {server.port}",
        "sending b'hi'",
        "received b'hi'",
        "closing socket",
    ]


def test_counts_bytes_not_characters(server: RunningServer) -> None:
    """
    A message of 16 characters but 32 UTF-8 bytes comes back whole: the
    client waits for every encoded byte, not for 16 characters.
    """
    message = "é" * 16
    assert client(message, HOST, server.port, io.StringIO(), timeout=TIMEOUT) == message


def test_empty_message(server: RunningServer) -> None:
    """
    An empty message has an empty echo: the client returns without waiting.
    """
    assert client("", HOST, server.port, io.StringIO(), timeout=TIMEOUT) == ""


def test_server_closing_early_is_an_error() -> None:
    """
    A server that sends back only part of the message and closes makes the
    client raise C{ConnectionError} saying how much came back, and the log
    still ends with the socket being closed.
    """
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)

        def echo_half() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(connection.recv(1024)[:5])

        thread = threading.Thread(target=echo_half)
        thread.start()
        log = io.StringIO()
        try:
            with pytest.raises(ConnectionError, match="after 5 of 10 bytes"):
                client(
                    "0123456789", HOST, listener.getsockname()[1], log, timeout=TIMEOUT
                )
        finally:
            thread.join(TIMEOUT)
    assert log.getvalue().splitlines()[-1] == "closing socket"


def test_no_server_is_an_error() -> None:
    """
    Connecting where no server listens raises C{ConnectionRefusedError}.
    """
    with unused_port() as port, pytest.raises(ConnectionRefusedError):
        client("hello", HOST, port, io.StringIO(), timeout=TIMEOUT)


def run_client(*arguments: str) -> subprocess.CompletedProcess[str]:
    """
    Run the client's command line.

    @param arguments: Its arguments.
    @return: The finished process, with its output.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.reference.client", *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("module", SERVERS)
def test_command_line_prints_the_echo(module: str) -> None:
    """
    The command line prints C{Received b'...'} like the lab's example run,
    and its log lines go to stderr.
    """
    with running_server(module) as server:
        result = run_client("--host", HOST, "--port", str(server.port), "Demo Message")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Received b'Demo Message'\n"
    assert "closing socket" in result.stderr


def test_command_line_without_server() -> None:
    """
    With no server there, the command line prints one error line naming the
    address and exits with status 1, without a traceback.
    """
    with unused_port() as port:
        result = run_client("--host", HOST, "--port", str(port), "hello")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert (
        f"echotwist-reference-client: error: no echo server at {HOST}:{port}"
        in (errors[0])
    )
    assert "Traceback" not in result.stderr


def test_command_line_bad_port() -> None:
    """
    A port that is not a port number is a usage error (status 2).
    """
    result = run_client("--port", "70000", "hello")
    assert result.returncode == 2
    assert "'70000' is not a port number (0-65535)" in result.stderr


def test_command_line_port_zero() -> None:
    """
    Port 0 (a server's "any free port") is refused as a port to connect to:
    a usage error (status 2), as for any other port out of range.
    """
    result = run_client("--port", "0", "hello")
    assert result.returncode == 2
    assert (
        "'0' is not a port to connect to: 0 means any free port to a server"
        in result.stderr
    )
    assert "connecting" not in result.stderr


def test_bytes_not_utf8_sent_as_given() -> None:
    """
    A message that is not valid UTF-8 (C{"$(printf 'caf\\xe9')"} in a shell)
    is sent as the very bytes given, and its echo printed as bytes; a host
    name that is not valid is a usage error, not a traceback.
    """
    program: list[str | bytes] = [sys.executable, "-m", "echotwist.reference.client"]
    with running_server("echotwist.reference.selecting") as server:
        address = ["--host", HOST, "--port", str(server.port)]
        result = subprocess.run(
            [*program, *address, b"caf\xe9"],
            capture_output=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        assert (result.returncode, result.stdout) == (0, b"Received b'caf\\xe9'\n")
        server.wait_for_output("Received b'caf\\xe9'")
    result = subprocess.run(
        [*program, "--host", b"caf\xe9", "x"],
        capture_output=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert b"'caf\\xe9' is not a host name" in result.stderr
    assert b"Traceback" not in result.stderr


def test_silent_server_times_out() -> None:
    """
    Against a server that accepts (the kernel does, for a listening socket)
    but never answers, C{--timeout} ends the wait: one error line, status 1.
    The function raises C{TimeoutError} the same way.
    """
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_client("--host", HOST, "--port", str(port), "--timeout", "1", "x")
        with pytest.raises(TimeoutError):
            client("x", HOST, port, io.StringIO(), timeout=1)
    assert result.returncode == 1
    assert f"no echo from {HOST}:{port} within 1 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_timeout_covers_the_whole_echo() -> None:
    """
    C{timeout} bounds the whole exchange, not each C{recv}: a server that
    echoes one byte at a time, slower than the timeout allows in all, makes
    the client time out although each byte comes within it.
    """
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        done = threading.Event()

        def trickle() -> None:
            connection, _ = listener.accept()
            with connection:
                for byte in connection.recv(1024):
                    if done.wait(0.3):
                        return
                    connection.sendall(bytes([byte]))

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            with pytest.raises(TimeoutError):
                client("0123456789", HOST, listener.getsockname()[1], timeout=1)
        finally:
            done.set()
            thread.join(TIMEOUT)


def test_command_line_bad_timeout() -> None:
    """
    A timeout that is not a positive number of seconds is a usage error.
    """
    for value in ["0", "-1", "nan", "inf", "soon"]:
        result = run_client("--timeout", value, "hello")
        assert result.returncode == 2, value
        assert "argument --timeout" in result.stderr, value
