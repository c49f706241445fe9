"""
Open 10,000 connections to a fresh C{twistd echo} as fast as one client can,
check each echoes, and print the server's memory per idle connection.

Run: C{python benchmarks/hostile_flood.py [COUNT]} (needs a descriptor limit
above COUNT; the soft limit is raised to the hard one).
"""

from __future__ import annotations

import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sockets import connect, recv_exactly, round_trip
from twistd_support import twistd_echo


def main(count: int) -> None:
    """
    Flood, check, and print the figures.

    @param count: connections to open.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with twistd_echo() as server, ExitStack() as stack:
        round_trip(server.port)
        before = server.rss()
        started = time.perf_counter()
        sockets = [stack.enter_context(connect(server.port)) for _ in range(count)]
        opened = time.perf_counter() - started
        for sock in sockets:
            sock.sendall(b"!")
        served = sum(recv_exactly(sock, 1) == b"!" for sock in sockets)
        after = server.rss()
        print(f"connections opened: {count} in {opened:.2f} s ({count / opened:.0f}/s)")
        print(f"connections echoed: {served}")
        print(
            f"server RSS: {before / 2**20:.1f} MiB idle -> {after / 2**20:.1f} MiB "
            f"with {count} open; {(after - before) / count / 1024:.1f} KiB per "
            "idle connection"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
