"""
Echo over a PROXY protocol port against a plain one, paired in one run: one
C{twistd echo} serves both (C{--port tcp:0} and C{--port haproxy:tcp:0}), and
a second plain port as a control (plain against plain: the noise of the
measurement); each round echoes the same number of small messages, one at a
time, on a connection to each, in rotating order.

After its header a PROXY connection is handed to the echo protocol itself
(L{echotwist.server.proxy}), so it should take the same fast path and cost
the same per echo.  Printed per round: the server's CPU time per echo (from
its own process's user + system time, in clock ticks: use enough echoes)
and the client's round trip per echo on each port; then the median and the
spread (min-max) of the PROXY/plain and control/plain ratios.

Run: C{python benchmarks/proxy_fastpath.py [--echoes N] [--size BYTES]
[--rounds R]}.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sockets import HOST, connect, recv_exactly
from twistd_support import LOOPBACK, twistd_echo

HEADER = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 9000\r\n"


def run(
    port: int, header: bytes, echoes: int, size: int, server: psutil.Process
) -> tuple[float, float]:
    """
    Echo C{echoes} messages of C{size} bytes, one at a time, on a new
    connection to C{port} that starts with C{header}.

    @return: the server's CPU seconds and the client's wall seconds, per
        echo.
    """
    message = b"x" * size
    with connect(port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(header + message)
        assert recv_exactly(sock, size) == message
        cpu = server.cpu_times()
        started = time.perf_counter()
        for _ in range(echoes):
            sock.sendall(message)
            if recv_exactly(sock, size) != message:
                raise SystemExit(f"port {port}: echo differs")
        wall = time.perf_counter() - started
        after = server.cpu_times()
    used = (after.user - cpu.user) + (after.system - cpu.system)
    return used / echoes, wall / echoes


def main() -> None:
    """
    Run the rounds and print the figures.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--echoes", type=int, default=20000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    proxy_port = f"haproxy:tcp:0:interface={HOST}"
    with twistd_echo(ports=[LOOPBACK, proxy_port, LOOPBACK]) as server:
        plain, control = (
            int(m.group(1))
            for m in re.finditer(r"EchoFactory starting on (\d+)", server.output())
        )
        proxied = int(
            server.wait_for(r"EchoFactory \(PROXY\) starting on (\d+)").group(1)
        )
        process = psutil.Process(server.process.pid)
        ports = {
            "plain": (plain, b""),
            "PROXY": (proxied, HEADER),
            "control": (control, b""),
        }
        kinds = list(ports)
        print(
            f"{args.rounds} rounds of {args.echoes} echoes of {args.size} bytes, "
            "one at a time, per port (order rotating)"
        )
        print(
            "round  server us/echo: plain  PROXY control   "
            "round trip us: plain  PROXY control"
        )
        ratios: dict[str, list[float]] = {}
        for round_number in range(args.rounds):
            shift = round_number % len(kinds)
            results = {}
            for kind in kinds[shift:] + kinds[:shift]:
                port, header = ports[kind]
                results[kind] = run(port, header, args.echoes, args.size, process)
            cpu = {kind: results[kind][0] * 1e6 for kind in kinds}
            wall = {kind: results[kind][1] * 1e6 for kind in kinds}
            for name, figures in [("server CPU", cpu), ("round trip", wall)]:
                for kind in ("PROXY", "control"):
                    values = ratios.setdefault(f"{kind}/plain {name}", [])
                    # CPU time comes in clock ticks: a short run may see none.
                    if figures["plain"] > 0:
                        values.append(figures[kind] / figures["plain"])
            print(
                f"{round_number + 1:5}  "
                + " ".join(f"{cpu[k]:6.2f}" for k in kinds)
                + "                  "
                + " ".join(f"{wall[k]:6.2f}" for k in kinds)
            )
        for name, values in ratios.items():
            if not values:
                print(f"{name} per echo: not measured (too few echoes)")
                continue
            print(
                f"{name} per echo: median {statistics.median(values):.3f}"
                f" (min {min(values):.3f}, max {max(values):.3f})"
            )


if __name__ == "__main__":
    main()
