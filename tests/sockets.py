"""
Plain blocking client sockets for the live tests, on loopback only.
"""

from __future__ import annotations

import socket
import subprocess

HOST = "127.0.0.1"
#: Seconds any single wait in the live tests may take before it fails:
#: generous, only there so that a broken test cannot hang.
TIMEOUT = 30.0


def free_port() -> int:
    """
    @return: a port on L{HOST} that the system says is free now (for a
        server that must be told its port, not bind port 0 itself).
    """
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def connect(port: int) -> socket.socket:
    """
    @param port: a port on L{HOST}.
    @return: a socket connected to it, with a L{TIMEOUT}.
    """
    return socket.create_connection((HOST, port), timeout=TIMEOUT)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """
    @param sock: the socket to read.
    @param size: how many bytes to read.
    @return: C{size} bytes from C{sock}, or fewer if it closed first.
    """
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def round_trip(port: int, data: bytes = b"ping") -> bytes:
    """
    Echo C{data} on a new connection, reading as many bytes as were sent.

    @param port: the echo server's port on L{HOST}.
    @param data: what to send.
    @return: the echo (exactly C{len(data)} bytes unless the server closed).
    """
    with connect(port) as sock:
        sock.sendall(data)
        return recv_exactly(sock, len(data))


def echo_once(port: int, data: bytes) -> bytes:
    """
    Send C{data} on a new connection, shut the sending side, read to EOF.

    @param port: the echo server's port on L{HOST}.
    @param data: what to send.
    @return: what came back.
    """
    with connect(port) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def listen_backlog(port: int) -> int:
    """
    @return: the listen queue length of the TCP socket listening on C{port}
        (C{ss}'s Send-Q for a listening socket).
    """
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    ).stdout
    return int(out.split()[2])
