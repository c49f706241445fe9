"""
C{--idle-timeout} counts inactivity: a silent connection is closed, a
trickling one is served.
"""

from __future__ import annotations

import time

from sockets import connect, recv_exactly
from twistd_support import twistd_echo

TIMEOUT = 1.0


def test_idle_connection_closed() -> None:
    """
    A connection that sends nothing is closed by the server after
    C{--idle-timeout}, with a log line saying why.
    """
    with twistd_echo("--idle-timeout", str(TIMEOUT)) as server:
        with connect(server.port) as sock:
            sock.settimeout(TIMEOUT * 10)
            assert sock.recv(1) == b""
        server.wait_for(r"Closing .*: idle for 1.0 s")


def test_trickling_connection_served() -> None:
    """
    A client sending one byte every 0.4 s for three times the idle timeout
    gets every byte back and is not closed: only inactivity counts.
    """
    with twistd_echo("--idle-timeout", str(TIMEOUT)) as server:
        with connect(server.port) as sock:
            deadline = time.monotonic() + TIMEOUT * 3
            sent = 0
            while time.monotonic() < deadline:
                sock.sendall(b"%d" % (sent % 10))
                assert recv_exactly(sock, 1) == b"%d" % (sent % 10)
                sent += 1
                time.sleep(TIMEOUT * 0.4)
            assert sent >= 6
        assert "idle for" not in server.output()
