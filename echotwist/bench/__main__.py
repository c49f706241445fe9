"""
C{python -m echotwist.bench}: load one echo server, or compare several.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict

from echotwist.bench.burst import BURST_TIMEOUT, burst
from echotwist.bench.load import Job, LoadPool, Target, worker_count
from echotwist.bench.options import parse
from echotwist.bench.report import Row, plot, ratios, table
from echotwist.bench.servers import SERVERS, Running, started
from echotwist.bench.stats import RunResult, combine, median_result


class ServerClock:
    """
    Read a process's CPU time (user and system) at the window's edges.
    """

    def __init__(self, pid: int | None) -> None:
        self.process = None
        self.readings: list[float] = []
        if pid is not None:
            import psutil

            self.process = psutil.Process(pid)

    def __call__(self) -> None:
        if self.process is not None:
            times = self.process.cpu_times()
            self.readings.append(times.user + times.system)

    def spent(self) -> float | None:
        """
        @return: CPU seconds between the last two readings, if any.
        """
        if self.process is None or len(self.readings) < 2:
            return None
        return self.readings[-1] - self.readings[-2]


def measure(pool: LoadPool, job: Job, pid: int | None) -> RunResult:
    """
    Run one job and turn what the workers and the server's CPU say into
    figures.
    """
    clock = ServerClock(pid)
    results, failures = pool.run(job, clock)
    result = combine(results, clock.spent(), job.stream)
    if failures:
        result.errors += len(failures)
        result.error_lines = failures[:5] + result.error_lines
    return result


@contextmanager
def progress(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """
    A progress bar on a terminal (rich), nothing otherwise.

    @return: a function to call with a description once per step done.
    """
    if not enabled or importlib.util.find_spec("rich") is None:
        yield lambda description: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def step(description: str) -> None:
            bar.update(task, advance=1, description=description)

        yield step


def compare(
    options: argparse.Namespace, pool: LoadPool, step: Callable[[str], None]
) -> list[Row]:
    """
    Start every server, then load them in turn, workload by workload,
    interleaved over the rounds; report medians.
    """
    specs = [s for s in SERVERS if s.name in options.servers]
    runs: dict[tuple[str, str], list[RunResult]] = {}
    with ExitStack() as stack:
        running: list[Running] = []
        for spec in specs:
            if why := spec.missing():
                print(why, file=sys.stderr)
                continue
            try:
                running.append(stack.enter_context(started(spec)))
            except RuntimeError as e:
                print(f"{spec.name}: skipped, {e}", file=sys.stderr)
        for round_number in range(options.rounds):
            # Each round starts one server further on, so that no server is
            # always the one run first, or after the same other.
            turn = round_number % len(running) if running else 0
            order = running[turn:] + running[:turn]
            for workload in options.workloads:
                for server in order:
                    target = Target(host="127.0.0.1", port=server.port)
                    job = Job(
                        target,
                        workload.connections,
                        workload.size,
                        options.duration,
                        options.stream,
                    )
                    result = measure(pool, job, server.process.pid)
                    runs.setdefault((str(workload), server.spec.name), []).append(
                        result
                    )
                    step(f"round {round_number + 1} {workload} {server.spec.name}")
    # The first round ran every workload on every server in the table's
    # order, so the runs are already in it.
    return [Row(w, s, median_result(r), tuple(r)) for (w, s), r in runs.items()]


def describe_machine() -> str:
    """
    @return: the CPU model, core count, OS and Python the figures came from.
    """
    model = platform.machine()
    with suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def run_burst(options: argparse.Namespace) -> int:
    """
    Run C{--burst} and print what it found.

    @return: 0 if every connection was served, else 1.
    """
    try:
        result = burst(options.connect, options.burst, options.server_pid)
    except asyncio.TimeoutError:
        print(
            f"--burst: {options.connect} did not accept and echo all "
            f"{options.burst} connections within {BURST_TIMEOUT:g} s",
            file=sys.stderr,
        )
        return 1
    if options.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(
            f"{result.served} of {result.connections} connections accepted and "
            f"echoed in {result.seconds:.3f} s"
        )
        if result.server_bytes_per_connection is not None:
            per = result.server_bytes_per_connection
            print(f"server memory per idle connection: {per:,.0f} bytes")
        for line in result.errors:
            print(line)
    return 0 if result.served == result.connections else 1


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark from the command line.

    @return: 0, or 1 when the server could not be reached or echoed wrong.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    options = parse(args)
    if options.burst:
        return run_burst(options)
    biggest = max(w.connections for w in options.workloads)
    pool = LoadPool(worker_count(biggest, options.processes))
    try:
        if options.compare:
            steps = options.rounds * len(options.workloads) * len(options.servers)
            with progress(steps, sys.stderr.isatty() and not options.json) as step:
                rows = compare(options, pool, step)
            baseline = next(
                (b for b in ("uvloop", "asyncio") if any(r.server == b for r in rows)),
                None,
            )
        else:
            workload = options.workloads[0]
            job = Job(
                options.connect,
                workload.connections,
                workload.size,
                options.duration,
                options.stream,
            )
            with progress(1, sys.stderr.isatty() and not options.json) as step:
                result = measure(pool, job, options.server_pid)
                rows = [Row(str(workload), str(options.connect), result, (result,))]
                step("done")
            baseline = None
    finally:
        pool.close()
    machine = describe_machine()
    command = "python -m echotwist.bench " + shlex.join(args)
    if options.json:
        print(
            json.dumps(
                {
                    "command": command,
                    "machine": machine,
                    "mode": "stream" if options.stream else "ping-pong",
                    "duration_s": options.duration,
                    "baseline": baseline,
                    "rows": [
                        {
                            "workload": r.workload,
                            "server": r.server,
                            **r.result.as_dict(),
                            "vs_baseline": ratio,
                        }
                        for r, ratio in zip(rows, ratios(rows, baseline), strict=True)
                    ],
                },
                indent=2,
            )
        )
    else:
        print(table(rows, baseline))
    if options.plot:
        plot(rows, options.plot, f"{command}\n{machine}")
    return 1 if any(r.result.errors for r in rows) or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
