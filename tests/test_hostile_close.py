"""
Half-close and abrupt close: everything is echoed before the server closes,
and a reset costs one log line and leaks nothing.
"""

from __future__ import annotations

import socket
import struct
import time

from sockets import TIMEOUT, connect, recv_exactly
from twistd_support import twistd_echo


def test_half_close_echoes_everything() -> None:
    """
    A client that shuts its sending side gets all of its bytes back, then
    the server closes.
    """
    data = bytes(range(256)) * 4096
    with twistd_echo() as server, connect(server.port) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, len(data) + 1) == data


def test_reset_mid_stream() -> None:
    """
    A client that resets mid-stream costs one log line (its C{Disconnected}
    line, after its C{Connected by} line: nothing else names it), no
    traceback, and the server's count of open connections goes back to zero.
    """
    with twistd_echo() as server:
        peers = []
        for _ in range(5):
            sock = connect(server.port)
            peers.append(repr(sock.getsockname()))
            sock.sendall(b"x" * 100_000)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            sock.close()
        server.wait_for("Disconnected", count=len(peers))
        deadline = time.monotonic() + TIMEOUT
        while server.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.open_connections() == 0
        output = server.output()
        for peer in peers:
            about = [line for line in output.splitlines() if peer in line]
            assert len(about) == 2, about
            assert f"Connected by {peer}" in about[0]
            assert f"Disconnected {peer}" in about[1]
        assert "Traceback" not in output
        assert "Unhandled" not in output
