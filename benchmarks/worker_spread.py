"""
How evenly C{twistd echo --workers N} spreads connections over its workers.

Each round opens C{--connections} connections, either all at once
(non-blocking connects in flight together) or one after another (each
echoes a byte before the next is opened), counts the connections each worker
process holds (with psutil), and closes them all.  It prints each round's
split and its lowest share as a percentage of the fair share (the issue's
target: no worker below 70 % in any round), for two designs side by side:

  - C{twistd}: C{twistd -n echo --workers N}, as it ships (one
    C{SO_REUSEPORT} socket per worker for TCP ports);
  - C{shared}: N C{python -m echotwist.server.workers} on one listening
    socket they share, the design C{--workers} used before (and still uses
    for UNIX and systemd ports).

With C{--startup ROUNDS}, it also starts C{twistd echo} afresh ROUNDS times
and opens C{--connections} / 2 connections at once as soon as the parent
listens, before the workers have started (where, with one shared socket,
the first worker to start took nearly all).

Run: C{python benchmarks/worker_spread.py [--workers 2] [--rounds 10]
[--connections 200] [--modes twistd,shared] [--startup 0]}
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sockets import HOST, TIMEOUT
from twistd_support import twistd_echo


@contextmanager
def twistd_workers(count: int) -> Iterator[tuple[int, list[int]]]:
    """
    Run C{twistd -n echo --workers count}.

    @return: its port and its workers' pids, once every worker listens.
    """
    with twistd_echo("--workers", str(count), "--idle-timeout", "0") as server:
        server.wait_for(r"worker \d+: \[-\] EchoFactory starting on", count)
        pids = [c.pid for c in psutil.Process(server.process.pid).children()]
        yield server.port, pids


@contextmanager
def shared_workers(count: int) -> Iterator[tuple[int, list[int]]]:
    """
    Run C{count} workers on one listening socket they share.

    @return: its port and the workers' pids, once every worker listens.
    """
    with ExitStack() as stack:
        sock = stack.enter_context(socket.socket())
        sock.bind((HOST, 0))
        sock.listen(1024)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        processes = []
        for index in range(1, count + 1):
            argv = [sys.executable, "-m", "echotwist.server.workers"]
            argv += ["--worker", str(index), "--reactor", "echotwist.server.reactor"]
            argv += ["--fd", f"{sock.fileno()}:AF_INET", "--", "--idle-timeout", "0"]
            with (logs / f"{index}.log").open("wb") as log:
                process = subprocess.Popen(
                    argv,
                    pass_fds=[sock.fileno()],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            stack.callback(process.wait, TIMEOUT)
            stack.callback(process.terminate)
            processes.append(process)
        deadline = time.monotonic() + TIMEOUT
        for index in range(1, count + 1):
            # A worker logs its port as it listens.
            while b"starting on" not in (logs / f"{index}.log").read_bytes():
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker {index} did not start")
                time.sleep(0.05)
        yield sock.getsockname()[1], [p.pid for p in processes]


def held(pids: list[int], port: int) -> list[int]:
    """
    @return: how many established connections to C{port} each process holds.
    """
    counts = []
    for pid in pids:
        connections = psutil.Process(pid).net_connections("tcp")
        counts.append(
            sum(
                1
                for c in connections
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )
        )
    return counts


def wait_held(pids: list[int], port: int, total: int) -> list[int]:
    """
    @return: the split, once the workers hold C{total} connections in all.
    """
    deadline = time.monotonic() + TIMEOUT
    while sum(split := held(pids, port)) != total:
        if time.monotonic() > deadline:
            raise SystemExit(f"workers hold {split}, not {total} in all")
        time.sleep(0.05)
    return split


def at_once(port: int, count: int) -> list[socket.socket]:
    """
    @return: C{count} connections, their connects all started before any
        completed.
    """
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((HOST, port))
        selector.register(sock, selectors.EVENT_WRITE)
        socks.append(sock)
    pending = len(socks)
    deadline = time.monotonic() + TIMEOUT
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit("connects did not complete")
        for key, _ in selector.select(timeout=1.0):
            selector.unregister(key.fileobj)
            pending -= 1
    selector.close()
    return socks


def one_by_one(port: int, count: int) -> list[socket.socket]:
    """
    @return: C{count} connections, each opened once the previous echoed.
    """
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        sock.sendall(b"!")
        if sock.recv(1) != b"!":
            raise SystemExit("no echo")
        socks.append(sock)
    return socks


def measure(
    pids: list[int],
    port: int,
    count: int,
    opener: Callable[[int, int], list[socket.socket]],
) -> list[int]:
    """
    Open C{count} connections with C{opener}, count them per worker, close
    them, and wait until the workers have.

    @return: the split.
    """
    socks = opener(port, count)
    try:
        return wait_held(pids, port, count)
    finally:
        for sock in socks:
            sock.close()
        wait_held(pids, port, 0)


def at_startup(workers: int, count: int) -> list[int]:
    """
    Start C{twistd echo --workers}, open C{count} connections at once as
    soon as the parent listens, and count them per worker.

    @return: the split.
    """
    with twistd_echo("--workers", str(workers), "--idle-timeout", "0") as server:
        socks = at_once(server.port, count)
        try:
            server.wait_for(r"worker \d+: \[-\] EchoFactory starting on", workers)
            pids = [c.pid for c in psutil.Process(server.process.pid).children()]
            return wait_held(pids, server.port, count)
        finally:
            for sock in socks:
                sock.close()


def main() -> None:
    """
    Measure and print the splits.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--modes", default="twistd,shared")
    parser.add_argument("--startup", type=int, default=0)
    args = parser.parse_args()
    runs = {"twistd": twistd_workers, "shared": shared_workers}
    openers = {"at once": at_once, "one by one": one_by_one}
    fair = args.connections / args.workers
    print(
        f"# --workers {args.workers}, {args.rounds} rounds of "
        f"{args.connections} connections; {os.cpu_count()} CPUs; lowest share "
        "as % of the fair share"
    )
    for mode in args.modes.split(","):
        with runs[mode](args.workers) as (port, pids):
            for name, opener in openers.items():
                splits = [
                    measure(pids, port, args.connections, opener)
                    for _ in range(args.rounds)
                ]
                lowest = [100 * min(split) / fair for split in splits]
                text = "  ".join("/".join(map(str, split)) for split in splits)
                print(f"{mode:>6} {name:>10}: {text}")
                print(
                    f"{'':>6} {'':>10}  lowest {min(lowest):.0f} %, "
                    f"median round {sorted(lowest)[len(lowest) // 2]:.0f} %"
                )
    if args.startup:
        count = args.connections // 2
        splits = [at_startup(args.workers, count) for _ in range(args.startup)]
        text = "  ".join("/".join(map(str, split)) for split in splits)
        lowest = min(100 * min(split) * args.workers / count for split in splits)
        print(f"twistd {'start-up':>10}: {text}")
        print(f"{'':>6} {'':>10}  lowest {lowest:.0f} %")


if __name__ == "__main__":
    main()
