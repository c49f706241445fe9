"""
Aggregate echoes per second of C{twistd echo --workers N}, for several N.

Each run starts the server on a loopback port, then C{--clients} load
processes, each keeping C{--connections} connections busy with one 64-byte
message in flight apiece for C{--seconds}; it prints a table of echoes/s per
N and the ratio to N times the one-worker figure (the issue's target: at
least 0.7 up to N = 8).  The load processes need cores too: give the machine
at least N + clients cores for a fair figure.

With C{--reuseport}, instead of C{twistd echo --workers N} (which now gives
each worker its own C{SO_REUSEPORT} socket on TCP ports), each of N C{python
-m echotwist.server.workers} gets its own socket bound to the same port with
C{SO_REUSEPORT} by this script: the alternative measured when the workers
still shared one socket.

Run: C{python benchmarks/scaling.py [--workers 1,2,4,8] [--clients 8]
[--connections 32] [--seconds 10] [--reuseport]}
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from twistd_support import twistd_echo

HOST = "127.0.0.1"
MESSAGE = b"x" * 64


def load(port: int, connections: int, seconds: float) -> int:
    """
    Keep C{connections} connections echoing one message each, for
    C{seconds}.

    @return: echoes completed.
    """
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, int] = {}
    for _ in range(connections):
        sock = socket.create_connection((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        sock.send(MESSAGE)
        pending[sock] = len(MESSAGE)
        selector.register(sock, selectors.EVENT_READ)
    echoes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            data = ready.recv(65536)
            if not data:
                raise SystemExit("server closed a connection")
            pending[ready] -= len(data)
            if pending[ready] == 0:
                echoes += 1
                ready.send(MESSAGE)
                pending[ready] = len(MESSAGE)
    for sock in pending:
        sock.close()
    return echoes


@contextmanager
def reuseport_workers(count: int) -> Iterator[int]:
    """
    Run C{count} workers, each on its own C{SO_REUSEPORT} socket.

    @return: the port they share.
    """
    port = 0
    sockets, processes = [], []
    try:
        for index in range(1, count + 1):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((HOST, port))
            sock.listen(1024)
            port = sock.getsockname()[1]
            sockets.append(sock)
            argv = [
                sys.executable,
                "-m",
                "echotwist.server.workers",
                "--worker",
                str(index),
            ]
            # The reactor twistd echo and its --workers run on.
            argv += ["--reactor", "echotwist.server.reactor"]
            argv += ["--fd", f"{sock.fileno()}:AF_INET", "--", "--idle-timeout", "0"]
            processes.append(
                subprocess.Popen(
                    argv,
                    pass_fds=[sock.fileno()],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(2.0)  # let every worker import and adopt its socket
        yield port
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        for sock in sockets:
            sock.close()


@contextmanager
def shared_socket_workers(count: int) -> Iterator[int]:
    """
    Run C{twistd echo --workers count}.

    @return: its port.
    """
    with twistd_echo("--idle-timeout", "0", "--workers", str(count)) as server:
        if count > 1:
            server.wait_for(r"worker \d+: \[-\] EchoFactory starting", count)
        yield server.port


def measure(port: int, clients: int, connections: int, seconds: float) -> float:
    """
    @return: echoes per second over C{clients} load processes.
    """
    argv = [sys.executable, __file__, "--load", str(port)]
    argv += ["--connections", str(connections), "--seconds", str(seconds)]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE) for _ in range(clients)]
    total = 0
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        if process.returncode:
            raise SystemExit(f"load process failed ({process.returncode})")
        total += int(out)
    return total / seconds


def main() -> None:
    """
    Measure and print the table.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reuseport", action="store_true")
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        print(load(args.load, args.connections, args.seconds))
        return
    run = reuseport_workers if args.reuseport else shared_socket_workers
    mode = "SO_REUSEPORT" if args.reuseport else "twistd echo --workers"
    print(
        f"# {mode}; {args.clients} load processes x {args.connections} "
        f"connections, {len(MESSAGE)}-byte messages, {args.seconds:g} s each; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'workers':>7} {'echoes/s':>10} {'vs N x 1 worker':>16}")
    single = None
    for count in [int(n) for n in args.workers.split(",")]:
        with run(count) as port:
            rate = measure(port, args.clients, args.connections, args.seconds)
        single = single or rate / count
        print(f"{count:>7} {rate:>10.0f} {rate / (count * single):>16.2f}")


if __name__ == "__main__":
    main()
