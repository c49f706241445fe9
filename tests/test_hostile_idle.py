"""
C{--idle-timeout} counts inactivity: a silent connection is closed, a
trickling one is served, and one that never reads its echo is aborted.
"""

from __future__ import annotations

import select
import socket
import time
from contextlib import suppress

from sockets import HOST, connect, recv_exactly, round_trip
from twistd_support import twistd_echo

TIMEOUT = 1.0
#: Seconds a socket must stay unwritable to count as stalled.
STALL = 2.0
#: The idle timeout of the trickling test, and the pause between its bytes:
#: a third of the timeout, so that a pause stretched twice over by a busy
#: machine still leaves the connection active.
TRICKLE_TIMEOUT = 3.0
TRICKLE_PAUSE = TRICKLE_TIMEOUT / 3


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
    A client sending one byte every third of the idle timeout, for more
    than twice the idle timeout in all, gets every byte back and is not
    closed: only inactivity counts.
    """
    with twistd_echo("--idle-timeout", str(TRICKLE_TIMEOUT)) as server:
        with connect(server.port) as sock:
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < TRICKLE_TIMEOUT * 2.5:
                sock.sendall(b"%d" % (sent % 10))
                assert recv_exactly(sock, 1) == b"%d" % (sent % 10)
                sent += 1
                time.sleep(TRICKLE_PAUSE)
            sock.sendall(b"!")
            assert recv_exactly(sock, 1) == b"!"
        server.wait_for("Disconnected")
        assert "idle for" not in server.output()


def test_non_reading_client_aborted_at_idle_timeout() -> None:
    """
    A client that sends until the server stops reading from it, and never
    reads its echo, is aborted at C{--idle-timeout}, which frees its slot:
    at C{--max-connections 1} the next client is served.
    """
    options = ["--idle-timeout", str(TIMEOUT), "--max-connections", "1"]
    with twistd_echo(*options) as server, socket.socket() as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((HOST, server.port))
        stuck.setblocking(False)
        chunk = b"x" * 65536
        # Fill every buffer on the way, until the server stops reading (or
        # has already aborted the connection).
        with suppress(ConnectionResetError, BrokenPipeError):
            while select.select([], [stuck], [], STALL)[1]:
                with suppress(BlockingIOError):
                    stuck.send(chunk)
        server.wait_for(r"Aborting .*: nothing received for 1.0 s")
        assert round_trip(server.port, b"next") == b"next"
