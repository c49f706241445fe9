"""
C{python -m echotwist.bench}: load one echo server, or compare several.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from echotwist.bench.burst import BURST_TIMEOUT, burst
from echotwist.bench.load import (
    Job,
    LoadPool,
    Progress,
    Target,
    have_uvloop,
    worker_count,
)
from echotwist.bench.native import NativePool, NativeUnavailable, build
from echotwist.bench.options import parse, program_name
from echotwist.bench.report import (
    Row,
    StormRow,
    describe_conns,
    per_connection,
    plot,
    ratios,
    storm_table,
    table,
)
from echotwist.bench.servers import SERVERS, Running, started
from echotwist.bench.stats import MIB, RunResult, combine, median_result
from echotwist.bench.storm import ConnProgress, ConnResult, process_cpu, run_conns

#: The figures C{--json} gives for each round of a load row, for spreads.
ROUND_FIGURES = ("echoes_per_s", "mib_per_s", "server_us_per_echo", "server_share")
#: The same for each round of a storm.
STORM_ROUND_FIGURES = (
    "seconds",
    "slow_connects",
    "listen_overflows",
    "server_us_per_connection",
)

#: The note printed (and put in C{--json}) when uvloop is missing.
NO_UVLOOP = (
    "uvloop is not installed: the Python driver runs on asyncio's own loop, "
    "several times slower (pip install 'echotwist[bench]')"
)


class ServerClock:
    """
    Read a process's CPU time (user and system, from C{/proc/PID/stat}) at
    the window's edges.
    """

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.readings: list[float] = []

    def __call__(self) -> None:
        reading = process_cpu(self.pid)
        if reading is None and self.pid is not None:
            import psutil

            times = psutil.Process(self.pid).cpu_times()
            reading = times.user + times.system
        if reading is not None:
            self.readings.append(reading)

    def spent(self) -> float | None:
        """
        @return: CPU seconds between the last two readings, if any.
        """
        if self.pid is None or len(self.readings) < 2:
            return None
        return self.readings[-1] - self.readings[-2]


Pool = LoadPool | NativePool


def measure(
    pool: Pool, job: Job, pid: int | None, progress: Progress | None = None
) -> RunResult:
    """
    Run one job and turn what the workers and the server's CPU say into
    figures.
    """
    clock = ServerClock(pid)
    results, failures = pool.run(job, clock, progress)
    if isinstance(progress, Intervals) and results:
        progress.finish(
            max(r.wall for r in results),
            sum(r.echoes for r in results),
            sum(r.bytes_echoed for r in results),
            sum(len(r.errors) for r in results),
        )
    result = combine(results, clock.spent(), job.stream)
    if failures:
        result.errors += len(failures)
        result.error_lines = failures[:5] + result.error_lines
    return result


class Intervals:
    """
    Print a line per interval as a run goes, as iperf3 does: the seconds it
    covers, echoes/s, MiB/s and errors (for storms and connect rates:
    connects/s, echoed connections/s, connections so far and errors).
    """

    def __init__(self, every: float, out: TextIO, connections: bool = False) -> None:
        """
        @param every: seconds per line; 0 prints nothing.
        @param out: where to print.
        @param connections: the counts are connections, not echoes.
        """
        self.every = every
        self.out = out
        self.connections = connections
        self.last = (0.0, 0, 0)
        self.headed = False

    def __call__(self, elapsed: float, a: int, b: int, errors: int) -> None:
        """
        Take the running totals; print a line if an interval has passed.
        """
        if elapsed >= self.last[0] + self.every:
            self.show(elapsed, a, b, errors)

    def finish(self, elapsed: float, a: int, b: int, errors: int) -> None:
        """
        Print the last, partial interval (with the final counts), if any.
        """
        if elapsed - self.last[0] > 0.05:
            self.show(elapsed, a, b, errors)

    def show(self, elapsed: float, a: int, b: int, errors: int) -> None:
        """
        Print the interval from the last line to C{elapsed}.
        """
        if self.every <= 0:
            return
        t, last_a, last_b = self.last
        span = elapsed - t
        if not self.headed:
            self.headed = True
            if self.connections:
                head = "interval s      connects/s   echoed/s   connected     errors"
            else:
                head = "interval s          echoes/s       MiB/s     errors"
            print(head, file=self.out)
        when = f"{t:6.2f}-{elapsed:6.2f}"
        if self.connections:
            line = (
                f"{when}  {(a - last_a) / span:12,.0f} {(b - last_b) / span:10,.0f}"
                f"  {a:10,} {errors:10,}"
            )
        else:
            line = (
                f"{when}  {(a - last_a) / span:14,.0f} "
                f"{(b - last_b) / MIB / span:11,.1f} {errors:10,}"
            )
        print(line, file=self.out, flush=True)
        self.last = (elapsed, a, b)


def choose_driver(options: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """
    Pick the load generator: the native driver if asked for or (auto) if
    it builds, for everything but C{--stream}; else the Python one.

    @return: the native driver's executable or L{None} for Python, and notes
        to show with the figures.
    @raise SystemExit: with status 2 when C{--driver native} can't be built.
    """
    notes: list[str] = []
    executable = None
    if options.driver != "python":
        try:
            executable = build()
        except NativeUnavailable as e:
            if options.driver == "native":
                print(f"--driver native: {e}", file=sys.stderr)
                raise SystemExit(2) from None
            notes.append(
                f"native driver skipped, {e}: using the Python driver, which "
                "may not saturate the server on a small machine"
            )
    if options.stream and executable is not None:
        notes.append("--stream runs on the Python driver")
    python_load = options.stream or executable is None
    if (
        python_load
        and not (options.storm or options.connect_rate)
        and not have_uvloop()
    ):
        notes.append(NO_UVLOOP)
    return executable, notes


def make_pool(
    options: argparse.Namespace, executable: Path | None, connections: int
) -> Pool:
    """
    @return: the native pool for C{executable}, else Python load workers.
    """
    if executable is not None:
        return NativePool(options.processes or 1, executable)
    return LoadPool(worker_count(connections, options.processes))


def compare(
    options: argparse.Namespace,
    pool: Pool | None,
    step: Callable[[str], None],
    executable: Path | None = None,
) -> tuple[list[Row], list[StormRow]]:
    """
    Start every server, then load them in turn, workload by workload,
    interleaved over the rounds; report medians.

    @param pool: the load generator (L{None} when there is no load workload).
    @param step: called with a line after each run.
    @param executable: the native driver for the storms, or L{None}.
    @return: the load rows and the storm rows.
    """
    specs = [s for s in SERVERS if s.name in options.servers]
    runs: dict[tuple[str, str], list[RunResult]] = {}
    storms: dict[tuple[str, str], list[ConnResult]] = {}
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
            where = f"round {round_number + 1}/{options.rounds}"
            loads = [(w, pool) for w in options.workloads] if pool is not None else []
            for workload, load_pool in loads:
                for server in order:
                    target = Target(host="127.0.0.1", port=server.port)
                    job = Job(
                        target,
                        workload.connections,
                        workload.size,
                        options.duration,
                        options.stream,
                    )
                    result = measure(load_pool, job, server.process.pid)
                    runs.setdefault((str(workload), server.spec.name), []).append(
                        result
                    )
                    step(
                        f"{where} {workload} {server.spec.name}: "
                        f"{result.echoes_per_s:,.0f} echoes/s, "
                        f"{result.mib_per_s:,.1f} MiB/s, {result.errors} errors"
                    )
            for storm in options.storms:
                for server in order:
                    if server.spec.no_storms:
                        if round_number == 0:
                            print(
                                f"{storm} {server.spec.name}: skipped, "
                                f"{server.spec.no_storms}",
                                file=sys.stderr,
                            )
                        continue
                    target = Target(host="127.0.0.1", port=server.port)
                    conns = run_conns(
                        target,
                        count=storm.connections,
                        rate=0,
                        size=1,
                        server_pid=server.process.pid,
                        executable=executable,
                        in_flight=options.storm_in_flight,
                    )
                    storms.setdefault((str(storm), server.spec.name), []).append(conns)
                    step(
                        f"{where} {storm} {server.spec.name}: {conns.seconds:.3f} s, "
                        f"{conns.slow_connects} connects >= 1 s, {conns.errors} errors"
                    )
    # The first round ran every workload on every server in the table's
    # order, so the runs are already in it.
    return (
        [Row(w, s, median_result(r), tuple(r)) for (w, s), r in runs.items()],
        [StormRow(w, s, median_storm(r), tuple(r)) for (w, s), r in storms.items()],
    )


def median_storm(rounds: Sequence[ConnResult]) -> ConnResult:
    """
    @return: the round whose total time is the median (the lower middle one
        for an even count), so that its figures belong together.
    """
    ordered = sorted(rounds, key=lambda r: r.seconds)
    return ordered[(len(ordered) - 1) // 2]


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


def run_connections(
    options: argparse.Namespace, executable: Path | None, notes: list[str]
) -> int:
    """
    Run C{--storm} or C{--connect-rate} and print what it found.

    @return: 0 if every connection was accepted and echoed, else 1.
    """
    rate = options.connect_rate or 0.0
    count = options.storm or max(1, round(rate * options.duration))
    progress: ConnProgress | None = None
    if not options.json:
        progress = Intervals(options.interval, sys.stderr, connections=True)
    result = run_conns(
        options.connect,
        count=count,
        rate=rate,
        size=1 if options.storm else options.size,
        server_pid=options.server_pid,
        executable=executable,
        progress=progress,
        in_flight=options.storm_in_flight,
    )
    if options.json:
        document = {
            "command": options.command,
            "machine": describe_machine(),
            "notes": notes,
            **result.as_dict(),
        }
        print(json.dumps(document, indent=2))
    else:
        print(describe_conns(result, str(options.connect)))
    return 0 if result.echoed == result.connections and not result.errors else 1


def json_rows(
    rows: Sequence[Row | StormRow],
    found: Sequence[float | None],
    figures: Sequence[str],
) -> list[dict[str, Any]]:
    """
    C{--json}'s rows, load and storm alike.

    @param rows: the rows, each with its rounds.
    @param found: each row's ratio to the baseline (see L{ratios}).
    @param figures: the figures each round gives, for spreads.
    @return: each row's figures, its ratio, and its rounds' C{figures}.
    """
    return [
        {
            "workload": r.workload,
            "server": r.server,
            **r.result.as_dict(),
            "vs_baseline": ratio,
            "rounds": [{k: each.as_dict()[k] for k in figures} for each in r.rounds],
        }
        for r, ratio in zip(rows, found, strict=True)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark from the command line.

    @return: 0, or 1 when the server could not be reached or echoed wrong.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    prog = program_name() if argv is None else program_name("__main__.py")
    options = parse(args, prog)
    options.command = f"{prog} {shlex.join(args)}"
    if options.burst:
        return run_burst(options)
    executable, notes = choose_driver(options)
    for note in notes if not options.json else ():
        print(f"note: {note}", file=sys.stderr)
    if (options.storm or options.connect_rate) and not options.compare:
        return run_connections(options, executable, notes)
    load_driver = None if options.stream else executable
    storm_rows: list[StormRow] = []
    baseline = None
    pool: Pool | None = None
    try:
        if options.compare:
            if options.workloads:
                biggest = max(w.connections for w in options.workloads)
                pool = make_pool(options, load_driver, biggest)

            def step(line: str) -> None:
                if not options.json and options.interval:
                    print(line, file=sys.stderr, flush=True)

            rows, storm_rows = compare(options, pool, step, executable)
            names = {r.server for r in rows} | {r.server for r in storm_rows}
            baseline = next((b for b in ("uvloop", "asyncio") if b in names), None)
        else:
            workload = options.workloads[0]
            pool = make_pool(options, load_driver, workload.connections)
            job = Job(
                options.connect,
                workload.connections,
                workload.size,
                options.duration,
                options.stream,
            )
            intervals = None
            if not options.json:
                intervals = Intervals(options.interval, sys.stderr)
            result = measure(pool, job, options.server_pid, intervals)
            rows = [Row(str(workload), str(options.connect), result, (result,))]
    finally:
        if isinstance(pool, LoadPool):
            pool.close()
    machine = describe_machine()
    driver = "python" if load_driver is None else "native"
    if options.json:
        document: dict[str, Any] = {
            "command": options.command,
            "machine": machine,
            "mode": "stream" if options.stream else "ping-pong",
            "driver": driver,
            "uvloop": have_uvloop(),
            "notes": notes,
            "duration_s": options.duration,
            "baseline": baseline,
            "rows": json_rows(rows, ratios(rows, baseline), ROUND_FIGURES),
        }
        if options.compare:
            found = ratios(storm_rows, baseline, per_connection)
            document["storms"] = json_rows(storm_rows, found, STORM_ROUND_FIGURES)
        print(json.dumps(document, indent=2))
    else:
        if rows:
            print(table(rows, baseline, options.stream))
            print(f"driver: {driver}")
        if storm_rows:
            if rows:
                print()
            print(storm_table(storm_rows, baseline))
    if options.plot and rows:
        plot(rows, options.plot, f"{options.command}\n{machine}", options.stream)
    failed = any(r.result.errors for r in rows) or any(
        r.result.errors for r in storm_rows
    )
    return 1 if failed or not (rows or storm_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
