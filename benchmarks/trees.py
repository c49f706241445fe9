"""
Server CPU per echo of C{twistd echo} from several source trees, paired in
one run: each tree is a checkout of echotwist with its own virtual
environment in C{.venv} (so that a change is measured against the commit
before it, on the same machine, at the same time).

For each round and workload, every tree's server is started in turn
(rotating the order each round), loaded by the bench's native driver for
C{--duration} seconds (or stormed, for a C{storm:N} workload), and stopped.
Printed per run: echoes/s, the server's CPU time per echo and its share of
a core, only a run near 100 % measuring the server rather than the load
generator (for a storm: connections/s and CPU per connection); then, per
workload, the median of each tree's per-round ratio to the first tree's.

Run: C{python benchmarks/trees.py --tree before=/tmp/before --tree
after=. [--workloads 100x1K,1000x1K] [--rounds 5] [--duration 5]}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

STARTED = re.compile(rb"starting on (\d+)")


def start(tree: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """
    Start C{twistd echo} from C{tree} on a free loopback port, logging to
    C{log}.

    @return: the process and its port.
    """
    env = dict(os.environ, PYTHONPATH=str(tree))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(tree / ".venv" / "bin" / "twistd"),
                "-n",
                "--pidfile=",
                "echo",
                "--port",
                "tcp:0:interface=127.0.0.1",
            ],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        found = STARTED.search(log.read_bytes())
        if found:
            return process, int(found.group(1))
        time.sleep(0.1)
    process.kill()
    process.wait()
    last = log.read_text(errors="replace").strip().splitlines()[-1:]
    raise SystemExit(f"{tree}: twistd echo did not start: {''.join(last)}")


def load(port: int, pid: int, workload: str, duration: float) -> dict[str, float]:
    """
    Load the server with the bench's native driver: ping-pong (C{CxS}) or a
    storm (C{storm:N}).

    @return: the bench's row for the run (for a storm: connections echoed
        a second, and server CPU per connection as per echo).
    """
    if workload.startswith("storm:"):
        how = ["--storm", workload.removeprefix("storm:")]
    else:
        connections, size = workload.split("x")
        how = ["--connections", connections, "--size", size]
        how += ["--duration", str(duration)]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "echotwist.bench",
            "--connect",
            f"tcp:127.0.0.1:{port}",
            "--server-pid",
            str(pid),
            *how,
            "--driver",
            "native",
            "--interval",
            "0",
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    found = json.loads(out.stdout)
    if "rows" not in found:  # a storm
        return {
            "echoes_per_s": found["accepted_per_s"],
            "server_us_per_echo": found["server_us_per_connection"],
            "server_share": found["server_share"],
        }
    row: dict[str, float] = found["rows"][0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--workloads", default="100x1K,1000x1K")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    args = parser.parse_args()
    trees = []
    for tree in args.tree:
        name, equals, path = tree.partition("=")
        if not (name and equals and path):
            parser.error(f"--tree {tree!r}: give NAME=PATH")
        if not (Path(path) / ".venv" / "bin" / "twistd").exists():
            parser.error(f"--tree {tree!r}: no .venv/bin/twistd under {path}")
        trees.append((name, Path(path).resolve()))
    with tempfile.TemporaryDirectory() as directory:
        ratios = compare(trees, args, Path(directory) / "twistd.log")
    for (workload, name), found in ratios.items():
        print(
            f"{workload}: {name}/{trees[0][0]} median {statistics.median(found):.3f}"
            f" (min {min(found):.3f}, max {max(found):.3f}, {len(found)} rounds)"
        )


def compare(
    trees: list[tuple[str, Path]], args: argparse.Namespace, log: Path
) -> dict[tuple[str, str], list[float]]:
    """
    Run every round, printing a line per run.

    @return: each workload's and tree's per-round ratios to the first tree.
    """
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    print("round  workload  tree          echoes/s  srv us/echo  srv %")
    for r in range(args.rounds):
        for workload in args.workloads.split(","):
            per_echo = {}
            order = trees[r % len(trees) :] + trees[: r % len(trees)]
            for name, tree in order:
                process, port = start(tree, log)
                try:
                    row = load(port, process.pid, workload, args.duration)
                finally:
                    process.terminate()
                    process.wait()
                per_echo[name] = row["server_us_per_echo"]
                print(
                    f"{r + 1:5}  {workload:8}  {name:12}  {row['echoes_per_s']:8,.0f}"
                    f"  {row['server_us_per_echo']:11.2f}"
                    f"  {row['server_share'] * 100:5.0f}",
                    flush=True,
                )
            first = trees[0][0]
            for name, _ in trees[1:]:
                ratios[workload, name].append(per_echo[name] / per_echo[first])
    return ratios


if __name__ == "__main__":
    main()
