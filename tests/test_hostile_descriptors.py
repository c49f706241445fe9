"""
Running out of file descriptors: the server keeps serving what it has,
logs the condition without flooding the log, and accepts again once
descriptors are free.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack

from sockets import connect, recv_exactly, round_trip
from twistd_support import twistd_echo

LIMIT = 256
ATTEMPTS = 600
#: Log lines about descriptor exhaustion allowed for the whole flood.
MAX_LINES = 10

#: Run a command with RLIMIT_NOFILE lowered to L{LIMIT}.
WITH_LIMIT = [
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def again(port: int, deadline: float = 30.0) -> bytes:
    """
    @return: the first echo of C{again} a new connection gets, trying again
        while connections are closed at once, until C{deadline} seconds pass.
    """
    give_up = time.monotonic() + deadline
    while True:
        try:
            echo = round_trip(port, b"again")
        except OSError:
            echo = b""
        if echo == b"again" or time.monotonic() > give_up:
            return echo
        time.sleep(0.1)


def test_descriptor_exhaustion() -> None:
    """
    With RLIMIT_NOFILE at 256 and 600 connection attempts, the server stays
    up, the connections it accepted keep echoing, the condition takes a few
    log lines rather than one per refused connection, and once clients leave
    new connections are served again.
    """
    with twistd_echo(prefix=WITH_LIMIT) as server, ExitStack() as stack:
        first = stack.enter_context(connect(server.port))
        flood = []
        for _ in range(ATTEMPTS):
            try:
                flood.append(stack.enter_context(connect(server.port)))
            except OSError:
                break
        served = 0
        for sock in flood:
            sock.settimeout(2)
            try:
                sock.sendall(b"?")
                served += recv_exactly(sock, 1) == b"?"
            except OSError:
                pass
        first.sendall(b"first")
        assert recv_exactly(first, 5) == b"first"
        assert server.process.poll() is None
        assert 0 < served < LIMIT
        for sock in flood:
            sock.close()
        server.wait_for(r"Out of file descriptors \(EMFILE\)")
        # The server frees descriptors as it reads each client's close: a
        # connection that comes before it has read them all may still be
        # closed at once; poll until one is served.
        assert again(server.port) == b"again"
        output = server.output()
        lines = [
            line
            for line in output.splitlines()
            if "EMFILE" in line or "descriptor" in line
        ]
        print("\n".join(lines))
        assert 0 < len(lines) <= MAX_LINES
        assert "Traceback" not in output
