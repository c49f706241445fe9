"""
A client that sends and never reads must not grow the server's memory, nor
slow down anybody else.
"""

from __future__ import annotations

import select
import socket
import time
from contextlib import suppress

from sockets import connect, round_trip
from twistd_support import twistd_echo

MiB = 1 << 20
#: What the slow reader tries to push.
PUSH = 256 * MiB
#: The growth of the server's memory the test allows.
MAX_GROWTH = 64 * MiB
#: How long the slow reader keeps trying, at most.
PUSH_SECONDS = 4.0


def test_slow_reader_bounded_memory() -> None:
    """
    While one client pushes (up to 256 MiB) and never reads, the server's
    RSS grows by less than 64 MiB and another client's echoes keep coming.
    """
    with twistd_echo() as server:
        round_trip(server.port)
        before = server.rss()
        chunk = b"\xa5" * MiB
        pushed = 0
        echoes = 0
        with connect(server.port) as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.setblocking(False)
            deadline = time.monotonic() + PUSH_SECONDS
            while pushed < PUSH and time.monotonic() < deadline:
                _, writable, _ = select.select([], [slow], [], 0.05)
                if writable:
                    with suppress(BlockingIOError):
                        pushed += slow.send(chunk)
                else:
                    assert round_trip(server.port, b"still there?") == b"still there?"
                    echoes += 1
            growth = server.rss() - before
        print(
            f"slow reader pushed {pushed / MiB:.1f} MiB; "
            f"RSS growth {growth / MiB:.1f} MiB"
        )
        assert growth < MAX_GROWTH
        assert echoes > 0
        assert round_trip(server.port, b"after") == b"after"
