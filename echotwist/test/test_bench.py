"""
Tests for the pure parts of L{echotwist.bench}: percentiles, merging worker
results, medians, endpoint and argument parsing, the table.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from unittest.mock import patch

from twisted.trial.unittest import SynchronousTestCase

from echotwist import __version__
from echotwist.bench import __main__ as bench_main
from echotwist.bench import burst as burst_module
from echotwist.bench import load, native, storm
from echotwist.bench.burst import BurstResult
from echotwist.bench.load import (
    Job,
    Stream,
    Target,
    _Shared,
    collect,
    parse_target,
    split,
    worker_count,
)
from echotwist.bench.native import NativeUnavailable
from echotwist.bench.options import Storm, Workload, parse, parser, program_name
from echotwist.bench.report import (
    Row,
    StormRow,
    describe_conns,
    error_notes,
    plot,
    ratios,
    storm_table,
    table,
)
from echotwist.bench.servers import Running, ServerSpec
from echotwist.bench.stats import (
    RunResult,
    WorkerResult,
    combine,
    median_result,
    percentile,
)


def never_accepting(case: SynchronousTestCase, backlog: int) -> Target:
    """
    @param case: closes the listener once the test is done.
    @param backlog: how many connections its queue holds.
    @return: a loopback listener that never accepts (nor echoes).
    """
    listener = socket.socket()
    case.addCleanup(listener.close)
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    return Target(host="127.0.0.1", port=listener.getsockname()[1])


class PercentileTests(SynchronousTestCase):
    """
    Tests for L{percentile}.
    """

    def test_nearestRank(self) -> None:
        """
        The nearest-rank percentile of 1..100 is the rank itself.
        """
        values = [float(v) for v in range(1, 101)]
        self.assertEqual(
            [percentile(values, f) for f in (0.5, 0.9, 0.99, 1.0)],
            [50.0, 90.0, 99.0, 100.0],
        )

    def test_small(self) -> None:
        """
        With few values the percentile is still one of them.
        """
        self.assertEqual(percentile([3.0], 0.99), 3.0)
        self.assertEqual(percentile([1.0, 2.0], 0.5), 1.0)

    def test_empty(self) -> None:
        """
        No values give C{nan}, not an error.
        """
        self.assertTrue(math.isnan(percentile([], 0.5)))


class CombineTests(SynchronousTestCase):
    """
    Tests for L{combine} and L{median_result}.
    """

    def test_rates(self) -> None:
        """
        Echoes and bytes from all workers are summed and divided by the
        window; server CPU is given per echo in microseconds.
        """
        a = WorkerResult(
            echoes=300,
            bytes_echoed=300 * 1024,
            latencies=[0.001] * 3,
            cpu=0.5,
            wall=2.0,
        )
        b = WorkerResult(
            echoes=100,
            bytes_echoed=100 * 1024,
            latencies=[0.003],
            errors=["bad"],
            cpu=1.9,
            wall=2.0,
        )
        result = combine([a, b], server_cpu=0.004, stream=False)
        self.assertEqual(result.echoes_per_s, 200.0)
        self.assertAlmostEqual(result.mib_per_s, 400 / 1024 / 2)
        self.assertAlmostEqual(result.server_us_per_echo or 0, 10.0)
        self.assertEqual((result.p50_ms, result.max_ms), (1.0, 3.0))
        self.assertEqual((result.errors, result.error_lines), (1, ["bad"]))
        self.assertAlmostEqual(result.loadgen_share, 0.95)
        self.assertTrue(result.loadgen_saturated)

    def test_streamPerKiB(self) -> None:
        """
        In stream mode server CPU is per KiB echoed; without a server process
        there is none.
        """
        w = WorkerResult(bytes_echoed=4096, cpu=0.1, wall=1.0)
        self.assertAlmostEqual(combine([w], 0.002, True).server_us_per_echo or 0, 500.0)
        self.assertIsNone(combine([w], None, True).server_us_per_echo)
        self.assertFalse(combine([w], None, True).loadgen_saturated)

    def test_median(self) -> None:
        """
        Each figure is the median of the rounds; errors are summed.
        """
        runs = [
            combine(
                [
                    WorkerResult(
                        echoes=n,
                        latencies=[n / 1000],
                        wall=1.0,
                        errors=["e"] * (n == 3),
                    )
                ],
                n / 1e6,
                False,
            )
            for n in (1, 5, 3)
        ]
        median = median_result(runs)
        self.assertEqual(median.echoes_per_s, 3.0)
        self.assertEqual(median.p99_ms, 3.0)
        self.assertEqual(median.errors, 1)
        self.assertAlmostEqual(median.server_us_per_echo or 0, 1.0)


class ParseTargetTests(SynchronousTestCase):
    """
    Tests for L{parse_target}.
    """

    def test_tcp(self) -> None:
        """
        Named and positional TCP descriptions are read.
        """
        self.assertEqual(
            parse_target("tcp:host=127.0.0.1:port=9000"), Target("127.0.0.1", 9000)
        )
        self.assertEqual(parse_target("tcp:localhost:80"), Target("localhost", 80))

    def test_unix(self) -> None:
        """
        UNIX descriptions give a path.
        """
        self.assertEqual(parse_target("unix:path=/tmp/s"), Target(path="/tmp/s"))

    def test_bad(self) -> None:
        """
        Missing fields, bad ports and other endpoint types are refused with
        a reason.
        """
        for bad in ("tcp:host=h", "tcp:h:99999", "tcp:h:x", "unix:", "ssl:h:1", "9000"):
            self.assertRaises(ValueError, parse_target, bad)


class UsageErrorTestCase(SynchronousTestCase):
    """
    A test case that can assert that options are a usage error.
    """

    def assertUsageError(self, argv: list[str], text: str) -> None:
        """
        Assert that C{argv} exits with status 2 and one error line
        containing C{text}.
        """
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit) as raised:
            parse(argv)
        self.assertEqual(raised.exception.code, 2, argv)
        last = err.getvalue().splitlines()[-1]
        self.assertIn("error:", last)
        self.assertIn(text, last)


class OptionsTests(UsageErrorTestCase):
    """
    Tests for L{echotwist.bench.options.parse} and the worker split.
    """

    def test_connect(self) -> None:
        """
        C{--connect} runs one workload from C{--connections} and C{--size}.
        """
        options = parse(["--connect", "tcp:h:1", "--connections", "7", "--size", "2K"])
        self.assertEqual(options.workloads, [Workload(7, 2048)])
        self.assertEqual(str(options.workloads[0]), "7x2K")

    def test_compareDefaults(self) -> None:
        """
        C{--compare} runs the issue's twelve workloads on every server.
        """
        options = parse(["--compare"])
        self.assertEqual(len(options.workloads), 12)
        self.assertIn(Workload(1000, 65536), options.workloads)
        self.assertIn("echotwist", options.servers)

    def test_workloadsAndServers(self) -> None:
        """
        C{--workloads} and C{--servers} pick a subset.
        """
        options = parse(
            ["--compare", "--workloads", "1x64,100x1k", "--servers", "asyncio"]
        )
        self.assertEqual(options.workloads, [Workload(1, 64), Workload(100, 1024)])
        self.assertEqual(options.servers, ["asyncio"])

    def test_workloadOnce(self) -> None:
        """
        A workload named twice (here as C{1K} and C{1024}) is run once.
        """
        options = parse(["--compare", "--workloads", "10x1K,1x64,10x1024"])
        self.assertEqual(options.workloads, [Workload(10, 1024), Workload(1, 64)])

    def test_badInput(self) -> None:
        """
        Bad values exit with status 2 and a one-line error naming them.
        """
        for argv in (
            [],
            ["--connect", "ssl:h:1"],
            ["--compare", "--servers", "nginx"],
            ["--compare", "--workloads", "100"],
            ["--connect", "tcp:h:1", "--duration", "-1"],
            ["--connect", "tcp:h:1", "--size", "0"],
            ["--compare", "--server-pid", "1"],
            ["--compare", "--burst", "10"],
            ["--connect", "tcp:h:1", "--burst", "0"],
        ):
            self.assertUsageError(argv, "error:")

    def test_psutilMissing(self) -> None:
        """
        Without psutil, C{--burst --server-pid} (which reads the server's
        memory with it) is a usage error that says what to install, not an
        L{ImportError} later; server CPU time comes from C{/proc}, so
        C{--compare} and C{--server-pid} need no psutil.
        """
        with patch.dict(sys.modules, {"psutil": None}):
            self.assertUsageError(
                ["--connect", "tcp:h:1", "--burst", "5", "--server-pid", "1"],
                "pip install 'echotwist[bench]'",
            )
            self.assertTrue(parse(["--compare"]).compare)
            pid = str(os.getpid())
            self.assertEqual(
                parse(["--connect", "tcp:h:1", "--server-pid", pid]).server_pid,
                os.getpid(),
            )

    def test_noSuchProcess(self) -> None:
        """
        A C{--server-pid} naming no process is a usage error, not
        L{psutil.NoSuchProcess} later; this process's own pid is fine.
        """
        beyond_pid_max = 2**22 + 1
        self.assertUsageError(
            ["--connect", "tcp:h:1", "--server-pid", str(beyond_pid_max)],
            "no such process",
        )
        options = parse(["--connect", "tcp:h:1", "--server-pid", str(os.getpid())])
        self.assertEqual(options.server_pid, os.getpid())

    def test_split(self) -> None:
        """
        Connections are shared out evenly over the workers.
        """
        self.assertEqual(split(10, 3), [4, 3, 3])
        self.assertEqual(split(1, 2), [1, 0])
        self.assertEqual(worker_count(1, 4), 1)
        self.assertEqual(worker_count(100, 3), 3)
        self.assertGreaterEqual(worker_count(100, None), 1)


class TableTests(SynchronousTestCase):
    """
    Tests for L{table}.
    """

    def test_ratioAndNotes(self) -> None:
        """
        The ratio column divides server CPU per echo by the baseline's, and a
        saturated load generator is called out under the table.
        """
        fast = combine(
            [WorkerResult(echoes=100, latencies=[0.001], cpu=0.1, wall=1.0)],
            0.0005,
            False,
        )
        slow = combine(
            [WorkerResult(echoes=100, latencies=[0.001], cpu=1.0, wall=1.0)],
            0.001,
            False,
        )
        text = table(
            [
                Row("1x64", "uvloop", fast, (fast,)),
                Row("1x64", "echotwist", slow, (slow,)),
            ],
            "uvloop",
        )
        lines = text.splitlines()
        self.assertTrue(lines[2].rstrip().endswith("1.00x"))
        self.assertTrue(lines[3].rstrip().endswith("2.00x"))
        self.assertIn("1x64 echotwist: load generator saturated", text)
        self.assertNotIn("uvloop: load generator saturated", text)


def cpu_run(us_per_echo: float) -> RunResult:
    """
    @return: a run of one echo whose server CPU per echo is C{us_per_echo}.
    """
    return combine(
        [WorkerResult(echoes=1, latencies=[0.001], wall=1.0)],
        us_per_echo / 1e6,
        False,
    )


class RatiosTests(SynchronousTestCase):
    """
    Tests for L{ratios}.
    """

    def test_pairedRounds(self) -> None:
        """
        Each round is divided by the baseline's in the same round, and the
        median of those ratios reported: a round in which the machine was
        busy for one server and not the other moves it less than a ratio of
        medians (here 1.5).
        """
        base = tuple(cpu_run(us) for us in (1.0, 2.0, 10.0))
        mine = tuple(cpu_run(us) for us in (3.0, 2.2, 11.0))
        rows = [
            Row("100x1K", "uvloop", median_result(base), base),
            Row("100x1K", "echotwist", median_result(mine), mine),
            Row("1x64", "echotwist", mine[0], mine[:1]),
        ]
        found = ratios(rows, "uvloop")
        self.assertEqual(found[0], 1.0)
        self.assertAlmostEqual(found[1], 1.1)
        self.assertIsNone(found[2])
        self.assertEqual(ratios(rows, None), [None, None, None])


class FakeProcess:
    """
    What L{compare} reads of a started server's process.

    @ivar pid: its process id.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid


class CompareTests(SynchronousTestCase):
    """
    Tests for L{bench_main.compare}, with the servers and the load stubbed
    out.
    """

    def test_roundsRotateAndRowsKeepThem(self) -> None:
        """
        Every server is loaded once per workload and round, each round
        starting one server further on; each row keeps its rounds.
        """
        loaded: list[int] = []
        pids = iter(range(100, 200))

        @contextmanager
        def fake_started(spec: ServerSpec) -> Iterator[Running]:
            pid = next(pids)
            yield Running(spec, FakeProcess(pid), pid)  # type: ignore[arg-type]

        def fake_measure(pool: object, job: object, pid: int) -> RunResult:
            loaded.append(pid)
            return cpu_run(float(len(loaded)))

        self.patch(bench_main, "started", fake_started)
        self.patch(bench_main, "measure", fake_measure)
        options = parse(
            [
                "--compare",
                "--servers",
                "echotwist,asyncio,uvloop",
                "--workloads",
                "1x64",
                "--rounds",
                "3",
            ]
        )
        rows, storms = bench_main.compare(options, FakePool(1), lambda step: None)  # type: ignore[arg-type]
        self.assertEqual(storms, [])
        first, second, third = loaded[:3], loaded[3:6], loaded[6:]
        self.assertEqual(first, [100, 101, 102])
        self.assertEqual(second, first[1:] + first[:1])
        self.assertEqual(third, first[2:] + first[:2])
        self.assertEqual([r.server for r in rows], ["echotwist", "asyncio", "uvloop"])
        self.assertEqual([len(r.rounds) for r in rows], [3, 3, 3])


class MainTests(SynchronousTestCase):
    """
    Tests for L{echotwist.bench.__main__.main} with the load and the burst
    stubbed out.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()

    def main(self, argv: list[str]) -> int:
        """
        @return: the exit status of the bench run with C{argv}.
        """
        with redirect_stdout(self.stdout), redirect_stderr(self.stderr):
            return bench_main.main(argv)

    def test_labelFromOptions(self) -> None:
        """
        A run is labelled with the server's endpoint however C{--connect}
        was written (C{--connect=...} too).
        """
        result = combine(
            [WorkerResult(echoes=1, latencies=[0.001], wall=1.0)], None, False
        )
        self.patch(bench_main, "LoadPool", FakePool)
        self.patch(bench_main, "build", no_compiler)
        self.patch(bench_main, "measure", lambda pool, job, pid, progress: result)
        for argv, label in [
            (["--connect=tcp:127.0.0.1:9"], "tcp:127.0.0.1:9"),
            (["--connect", "tcp:host=h:port=9"], "tcp:h:9"),
            (["--connect=unix:path=/run/echo.sock"], "unix:/run/echo.sock"),
        ]:
            self.stdout = io.StringIO()
            self.assertEqual(self.main([*argv, "--json"]), 0)
            [row] = json.loads(self.stdout.getvalue())["rows"]
            self.assertEqual(row["server"], label)

    def test_burstTimeout(self) -> None:
        """
        A burst the server never finishes ends with one line on standard
        error and status 1, not a traceback.
        """

        def never_served(*args: object) -> BurstResult:
            raise asyncio.TimeoutError()

        self.patch(bench_main, "burst", never_served)
        self.assertEqual(self.main(["--connect", "tcp:h:9", "--burst", "5"]), 1)
        self.assertEqual(
            self.stderr.getvalue(),
            "--burst: tcp:h:9 did not accept and echo all 5 connections within 120 s\n",
        )
        self.assertEqual(self.stdout.getvalue(), "")


class FakePool:
    """
    A L{LoadPool} that starts no processes.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def close(self) -> None:
        """
        Nothing to stop.
        """


class BurstTests(SynchronousTestCase):
    """
    Tests for L{echotwist.bench.burst.burst}.
    """

    def test_timeout(self) -> None:
        """
        Against a server that accepts but never echoes, the burst fails with
        L{asyncio.TimeoutError} after L{BURST_TIMEOUT}.
        """
        self.patch(burst_module, "BURST_TIMEOUT", 0.1)
        target = never_accepting(self, 5)
        self.assertRaises(asyncio.TimeoutError, burst_module.burst, target, 2, None)


class ClosingTransport:
    """
    Record how a protocol closes its transport.

    @ivar calls: C{"close"} or C{"abort"}, in order.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def close(self) -> None:
        """
        Record a graceful close.
        """
        self.calls.append("close")

    def abort(self) -> None:
        """
        Record an abort.
        """
        self.calls.append("abort")


class StreamTests(SynchronousTestCase):
    """
    Tests for L{Stream}, the C{--stream} load.
    """

    def test_finishAborts(self) -> None:
        """
        A stream connection is aborted when the window ends, once: a graceful
        close stops reading, and the server stops reading from a client that
        doesn't read its echoes, so the unsent rest would never drain and
        the run would wait out the settle time.
        """
        stream = Stream(_Shared(), b"x" * 16)
        transport = ClosingTransport()
        stream.connection_made(transport)  # type: ignore[arg-type]
        stream.finish()
        stream.finish()
        self.assertEqual(transport.calls, ["abort"])


def no_compiler() -> Path:
    """
    Stand in for L{echotwist.bench.native.build} where there is no compiler.
    """
    raise NativeUnavailable("no C compiler (cc) found to build it")


class HelpTests(SynchronousTestCase):
    """
    Tests for C{--help}, C{--version} and the program's name in usage lines.
    """

    def test_defaultsShown(self) -> None:
        """
        C{--help} shows the defaults of C{--connections}, C{--size},
        C{--duration}, C{--driver} and C{--interval}.
        """
        text = " ".join(parser().format_help().split())
        for shown in (
            "ping-pong (default: 100)",
            "64K (default: 1024)",
            "seconds per run (default: 10)",
            "(default: auto)",
            "0 for none (default: 1)",
        ):
            self.assertIn(shown, text)

    def test_programName(self) -> None:
        """
        Usage names the program as it was invoked: the console script by its
        name, the module as C{python -m echotwist.bench}.
        """
        self.assertEqual(program_name("/venv/bin/echotwist-bench"), "echotwist-bench")
        self.assertEqual(
            program_name("/src/echotwist/bench/__main__.py"),
            "python -m echotwist.bench",
        )
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit):
            parse(["--connect", "ssl:h:1"], "echotwist-bench")
        self.assertTrue(err.getvalue().splitlines()[-1].startswith("echotwist-bench:"))

    def test_version(self) -> None:
        """
        C{--version} prints the program and echotwist's version, status 0.
        """
        out = io.StringIO()
        with redirect_stdout(out), self.assertRaises(SystemExit) as raised:
            parse(["--version"], "echotwist-bench")
        self.assertEqual(raised.exception.code, 0)
        self.assertEqual(out.getvalue(), f"echotwist-bench {__version__}\n")


class NewOptionsTests(UsageErrorTestCase):
    """
    Tests for the storm, connect-rate, driver and plot options.
    """

    def test_plotMissingFolder(self) -> None:
        """
        C{--plot} into a folder that does not exist is a usage error, found
        before any run.
        """
        self.assertUsageError(
            ["--connect", "tcp:h:1", "--plot", "/no/such/folder/b.png"],
            "no such folder /no/such/folder",
        )

    def test_conflicts(self) -> None:
        """
        Storms, connect rates and bursts exclude each other and C{--stream};
        the native driver does not stream.
        """
        for argv, text in [
            (["--connect", "tcp:h:1", "--storm", "5", "--burst", "5"], "together"),
            (["--connect", "tcp:h:1", "--storm", "5", "--stream"], "--stream"),
            (["--connect", "tcp:h:1", "--connect-rate", "0"], "per second"),
            (["--compare", "--connect-rate", "5"], "is for --connect"),
            (["--connect", "tcp:h:1", "--stream", "--driver", "native"], "stream"),
            (["--connect", "tcp:h:1", "--interval", "x"], "seconds"),
        ]:
            self.assertUsageError(argv, text)

    def test_compareStorms(self) -> None:
        """
        C{--compare} runs a storm of 10,000 by default, a given C{--storm},
        or C{storm:N} items of C{--workloads}.
        """
        self.assertEqual(parse(["--compare"]).storms, [Storm(10000)])
        options = parse(["--compare", "--storm", "50"])
        self.assertEqual(options.storms, [Storm(50)])
        self.assertEqual(len(options.workloads), 12)
        options = parse(["--compare", "--workloads", "1x64,storm:20"])
        self.assertEqual(
            (options.workloads, options.storms), ([Workload(1, 64)], [Storm(20)])
        )
        self.assertEqual(parse(["--compare", "--workloads", "1x64"]).storms, [])


class IntervalsTests(SynchronousTestCase):
    """
    Tests for L{bench_main.Intervals}, the per-interval progress lines.
    """

    def test_lines(self) -> None:
        """
        One line per interval: its seconds, echoes/s, MiB/s and errors; the
        last, partial one when the run ends.
        """
        out = io.StringIO()
        intervals = bench_main.Intervals(1.0, out)
        intervals(0.5, 100, 1024 * 1024, 0)
        intervals(1.0, 2000, 2 * 1024 * 1024, 0)
        intervals(2.0, 5000, 6 * 1024 * 1024, 1)
        intervals.finish(2.5, 6000, 7 * 1024 * 1024, 1)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0].split()[:3], ["interval", "s", "echoes/s"])
        self.assertEqual(
            [line.split() for line in lines[1:]],
            [
                ["0.00-", "1.00", "2,000", "2.0", "0"],
                ["1.00-", "2.00", "3,000", "4.0", "1"],
                ["2.00-", "2.50", "2,000", "2.0", "1"],
            ],
        )

    def test_off(self) -> None:
        """
        An interval of 0 prints nothing.
        """
        out = io.StringIO()
        intervals = bench_main.Intervals(0, out)
        intervals(5.0, 1, 1, 0)
        intervals.finish(6.0, 1, 1, 0)
        self.assertEqual(out.getvalue(), "")


class CollectTests(SynchronousTestCase):
    """
    Tests for L{collect}, which gathers the workers' ticks and results.
    """

    def test_endsWhenWorkersEnd(self) -> None:
        """
        When every worker has ended (a server that does not echo) the window
        closes then, not after the whole duration; ticks reach progress.
        """
        messages: list[list[tuple[int, object]]] = [
            [(0, ("tick", 5, 50, 0)), (1, ("tick", 7, 70, 1))],
            [(0, WorkerResult(echoes=5))],
            [(1, WorkerResult(echoes=7))],
        ]
        windows: list[str] = []
        seen: list[tuple[int, int, int]] = []

        def receive(timeout: float) -> list[tuple[int, object]]:
            return messages.pop(0) if messages else []

        results = collect(
            2,
            receive,
            3600.0,
            lambda: windows.append("read"),
            lambda elapsed, a, b, e: seen.append((a, b, e)),
        )
        self.assertEqual([r.echoes for r in results], [5, 7])
        self.assertEqual(windows, ["read"])
        self.assertEqual(seen[0], (12, 120, 1))


class NoEchoTests(SynchronousTestCase):
    """
    The Python driver against a server that reads but never echoes.
    """

    def test_noEcho(self) -> None:
        """
        The run ends after L{load.NO_ECHO} seconds without an echo, not at
        the end of the window plus the settle time, with one error per
        connection saying so.
        """
        self.patch(load, "NO_ECHO", 0.3)
        target = never_accepting(self, 5)
        job = Job(target, 2, 64, 3600.0, False)
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        result = loop.run_until_complete(
            load._run(job, lambda line: None, lambda: None)
        )
        self.assertEqual(result.errors, [load.NO_ECHO_LINE] * 2)
        self.assertLess(result.wall, 60)


class DriverChoiceTests(SynchronousTestCase):
    """
    Tests for L{bench_main.choose_driver}.
    """

    def test_noCompiler(self) -> None:
        """
        Without a compiler, auto falls back to the Python driver with a note;
        C{--driver native} is an error.
        """
        self.patch(bench_main, "build", no_compiler)
        executable, notes = bench_main.choose_driver(parse(["--connect", "tcp:h:1"]))
        self.assertIsNone(executable)
        self.assertIn("native driver skipped, no C compiler (cc) found", notes[0])
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit) as raised:
            bench_main.choose_driver(
                parse(["--connect", "tcp:h:1", "--driver", "native"])
            )
        self.assertEqual(raised.exception.code, 2)
        self.assertEqual(
            err.getvalue(), "--driver native: no C compiler (cc) found to build it\n"
        )

    def test_noUvloop(self) -> None:
        """
        The Python driver without uvloop says so.
        """
        self.patch(bench_main, "have_uvloop", lambda: False)
        options = parse(["--connect", "tcp:h:1", "--driver", "python"])
        self.assertEqual(
            bench_main.choose_driver(options), (None, [bench_main.NO_UVLOOP])
        )
        self.patch(bench_main, "have_uvloop", lambda: True)
        self.assertEqual(bench_main.choose_driver(options), (None, []))

    def test_noUvloopInJSON(self) -> None:
        """
        C{--json} records the driver, whether uvloop is there, and the notes.
        """
        result = combine(
            [WorkerResult(echoes=1, latencies=[0.001], wall=1.0)], None, False
        )
        self.patch(bench_main, "LoadPool", FakePool)
        self.patch(bench_main, "have_uvloop", lambda: False)
        self.patch(bench_main, "measure", lambda pool, job, pid, progress: result)
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            bench_main.main(["--connect", "tcp:h:9", "--driver", "python", "--json"])
        document = json.loads(out.getvalue())
        self.assertEqual(
            (document["driver"], document["uvloop"], document["notes"]),
            ("python", False, [bench_main.NO_UVLOOP]),
        )

    def test_compilerMissing(self) -> None:
        """
        L{build} says there is no compiler when C{$CC} names none.
        """
        self.patch(os, "environ", {**os.environ, "CC": "no-such-cc-here"})
        exception = self.assertRaises(NativeUnavailable, native.build)
        self.assertEqual(
            str(exception), "no C compiler (no-such-cc-here) found to build it"
        )


class NativeParseTests(SynchronousTestCase):
    """
    Tests for reading the native driver's output.
    """

    def test_pingPong(self) -> None:
        """
        Ticks, the result, errors and latencies become a L{WorkerResult}.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(array("d", [0.001, 0.002]).tobytes())
        parsed = native._Parsed(path)
        driver = object()
        self.assertEqual(parsed.feed("tick 10 1024 0", driver), ("tick", 10, 1024, 0))  # type: ignore[arg-type]
        for line in ["stop", "result 2 2048 0.5 1.0", "error echo differs", "errors 3"]:
            self.assertIsNone(parsed.feed(line, driver))  # type: ignore[arg-type]
        result = parsed.feed("end", driver)  # type: ignore[arg-type]
        assert isinstance(result, WorkerResult)
        self.assertEqual(
            (result.echoes, result.bytes_echoed, result.cpu, result.wall),
            (2, 2048, 0.5, 1.0),
        )
        self.assertEqual(result.latencies, [0.001, 0.002])
        self.assertEqual(result.errors, ["echo differs"] * 3)
        self.assertIsNone(parsed.feed("eof", driver))  # type: ignore[arg-type]


class StormFiguresTests(SynchronousTestCase):
    """
    Tests for the storm's readings and figures.
    """

    def test_listenCounters(self) -> None:
        """
        The C{TcpExt} overflow and drop counters are read from the file.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(
                "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n"
                "TcpExt: 0 7 9\n"
                "IpExt: InNoRoutes\nIpExt: 0\n"
            )
        self.assertEqual(
            storm.listen_counters(path), {"ListenOverflows": 7, "ListenDrops": 9}
        )
        self.assertIsNone(storm.listen_counters(path + ".missing"))

    def test_processCPU(self) -> None:
        """
        A process's CPU time is read finer than the 10 ms clock tick, so
        that a millisecond of work shows; none for no pid.
        """
        before = storm.process_cpu(os.getpid())
        deadline = time.process_time() + 0.002
        while time.process_time() < deadline:
            pass
        after = storm.process_cpu(os.getpid())
        assert before is not None and after is not None
        self.assertGreater(before, 0)
        self.assertGreater(after - before, 0.001)
        self.assertLess(after - before, 0.009)
        self.assertIsNone(storm.process_cpu(None))
        self.assertIsNone(storm.process_cpu(2**22 + 1))

    def test_summarize(self) -> None:
        """
        Connect latency, slow connects, total time, overflows and server CPU
        per connection come out of the timeline and the readings.
        """
        nan = math.nan
        line = storm.Timeline(
            started=[0.0, 0.001, 0.002, 0.003],
            connected=[0.0001, 0.0011, 1.002, nan],
            echoed=[0.0002, 0.0012, 1.003, nan],
            errors=["connect failed: refused"],
            cpu=0.5,
            wall=2.0,
        )
        result = storm.summarize(
            line,
            mode="storm",
            rate=None,
            driver="python",
            net_before={"ListenOverflows": 3, "ListenDrops": 3},
            net_after={"ListenOverflows": 4, "ListenDrops": 5},
            server_cpu=(1.0, 1.003, 1.006),
        )
        self.assertEqual(
            (result.connections, result.connected, result.echoed), (4, 3, 3)
        )
        self.assertEqual((result.slow_connects, result.errors), (1, 1))
        self.assertEqual((result.listen_overflows, result.listen_drops), (1, 2))
        self.assertAlmostEqual(result.connect_max_ms, 1000.0)
        self.assertAlmostEqual(result.connect_p50_ms, 0.1)
        self.assertAlmostEqual(result.server_us_per_connection or 0, 1000.0)
        self.assertAlmostEqual(result.server_us_per_lifetime or 0, 2000.0)
        self.assertEqual(result.seconds, 2.0)
        self.assertEqual(result.driver_share, 0.25)

    def test_describe(self) -> None:
        """
        The text report names the driver, the slow connects and overflows.
        """
        line = storm.Timeline([0.0], [1.5], [1.6], cpu=0.0, wall=1.6)
        result = storm.summarize(
            line,
            mode="storm",
            rate=None,
            driver="native",
            net_before={"ListenOverflows": 0},
            net_after={"ListenOverflows": 1},
            server_cpu=(None, None, None),
        )
        text = describe_conns(result, "tcp:127.0.0.1:9")
        self.assertIn("1 connections to tcp:127.0.0.1:9 back to back (native", text)
        self.assertIn("1 took >= 1 s (SYN retransmissions)", text)
        self.assertIn("listen-queue overflows during the run: 1 ", text)
        self.assertIn("in 1.600 s", text)

    def test_stormTableSubMillisecond(self) -> None:
        """
        The storm table gives connect p50 and p99 to the microsecond: on
        loopback both are a few microseconds, which one decimal shows as 0.
        """
        line = storm.Timeline(
            [0.0, 0.0], [0.000007, 0.000013], [0.001, 0.001], cpu=0.0, wall=0.01
        )
        result = storm.summarize(
            line,
            mode="storm",
            rate=None,
            driver="native",
            net_before={},
            net_after={},
            server_cpu=(None, None, None),
        )
        text = storm_table([StormRow("storm:2", "x", result, (result,))], None)
        self.assertIn(" 0.007 ", text)
        self.assertIn(" 0.013 ", text)


class SaturationTests(SynchronousTestCase):
    """
    Tests for how the table says whether the server was saturated.
    """

    def test_single(self) -> None:
        """
        One run: a sentence with the server's share of a core.
        """
        busy = combine(
            [WorkerResult(echoes=100, latencies=[0.001], wall=1.0)], 0.95, False
        )
        idle = combine(
            [WorkerResult(echoes=100, latencies=[0.001], wall=1.0)], 0.5, False
        )
        self.assertTrue(busy.server_saturated)
        self.assertFalse(idle.server_saturated)
        text = table([Row("1x64", "s", busy, (busy,))], None)
        self.assertIn("server saturated: 95% of a core", text)
        self.assertIn(" 95* ", text)
        text = table([Row("1x64", "s", idle, (idle,))], None)
        self.assertIn("server not saturated: 50% of a core", text)
        none = combine(
            [WorkerResult(echoes=1, latencies=[0.001], wall=1.0)], None, False
        )
        self.assertNotIn("saturated", table([Row("1x64", "s", none, (none,))], None))


class PlotTests(SynchronousTestCase):
    """
    Tests for L{plot}.
    """

    def test_withoutServerCPU(self) -> None:
        """
        A one-run plot without server CPU (no C{--server-pid}) and a stream
        plot are drawn, not a log-scale error.
        """
        none = combine(
            [WorkerResult(echoes=1, latencies=[0.001], wall=1.0)], None, False
        )
        stream = combine([WorkerResult(bytes_echoed=2**20, wall=1.0)], None, True)
        for rows, streaming in [
            ([Row("1x64", "tcp:h:1", none, (none,))], False),
            ([Row("1x64K", "tcp:h:1", stream, (stream,))], True),
        ]:
            path = self.mktemp() + ".png"
            plot(rows, path, "a title " * 40, streaming)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class UnixStormTests(SynchronousTestCase):
    """
    A storm against a UNIX socket whose listen queue fills.
    """

    def test_refusalsAreOverflows(self) -> None:
        """
        A full UNIX socket queue refuses connects at once (C{EAGAIN}, where
        TCP drops the SYN): the Python driver marks them, and they are the
        storm's listen-queue overflows.
        """
        folder = tempfile.mkdtemp(prefix="bench-")
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "s")
        listener = socket.socket(socket.AF_UNIX)
        self.addCleanup(listener.close)
        listener.bind(path)
        listener.listen(1)
        line = storm.python_conns(
            Target(path=path), 20, 0, 1, True, 0.5, None, lambda: None
        )
        refused = line.connected.count(storm.QUEUE_FULL)
        self.assertGreater(refused, 10)
        result = storm.summarize(
            line,
            mode="storm",
            rate=None,
            driver="python",
            net_before=None,
            net_after=None,
            server_cpu=(None, None, None),
        )
        self.assertEqual(result.listen_overflows, refused)
        self.assertEqual(result.connected, 20 - refused)
        self.assertIn("not done within 0.5 s", line.errors[-1])


class ErrorNotesTests(SynchronousTestCase):
    """
    Tests for L{error_notes}.
    """

    def test_grouped(self) -> None:
        """
        Repeated lines are shown once with their count, and the total is
        given where lines were left out.
        """
        self.assertEqual(
            error_notes("1x64 s", ["no echo"] * 4 + ["closed"], 10),
            ["1x64 s: no echo (x4)", "1x64 s: closed", "1x64 s: 10 errors in all"],
        )
        self.assertEqual(error_notes("w s", ["closed"], 1), ["w s: closed"])


class InFlightTests(SynchronousTestCase):
    """
    Tests for how many handshakes a storm has under way at once.
    """

    def started(self, in_flight: int) -> int:
        """
        @return: how many of 20 connects the Python driver started within
            half a second against a listener whose queue holds one and that
            never accepts (further SYNs are dropped, their connects wait).
        """
        target = never_accepting(self, 1)
        line = storm.python_conns(
            target, 20, 0, 1, True, 0.5, None, lambda: None, in_flight
        )
        return sum(1 for s in line.started if not math.isnan(s))

    def test_oneAtATime(self) -> None:
        """
        With one in flight, the next connect waits for the handshake before
        it: a dropped SYN holds the storm up, as a blocking connect would.
        """
        self.assertLess(self.started(1), 10)

    def test_allAtOnce(self) -> None:
        """
        With no limit, every connect is started at once.
        """
        self.assertEqual(self.started(0), 20)

    def test_option(self) -> None:
        """
        C{--storm-in-flight} defaults to 1, and is only for storms.
        """
        self.assertEqual(
            parse(["--connect", "tcp:h:1", "--storm", "5"]).storm_in_flight, 1
        )
        options = parse(["--compare", "--storm-in-flight", "0"])
        self.assertEqual(options.storm_in_flight, 0)
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit):
            parse(["--connect", "tcp:h:1", "--storm-in-flight", "0"])
        self.assertIn("--storm-in-flight is for --storm", err.getvalue())


class DeadWorkerTests(SynchronousTestCase):
    """
    A load worker process that dies mid-run.
    """

    def test_reportedNotRaised(self) -> None:
        """
        The run ends with an error line for the dead worker, not an
        L{EOFError}.
        """
        parent, child = multiprocessing.Pipe()
        self.addCleanup(parent.close)
        pool = object.__new__(load.LoadPool)
        pool.pipes = [parent]
        pool.processes = []
        child.send("")  # the worker connected, then died
        child.close()
        job = Job(Target("127.0.0.1", 9), 1, 64, 60.0, False)
        results, failures = pool.run(job, lambda: None)
        self.assertEqual(failures, [])
        self.assertEqual([r.errors for r in results], [["load worker died"]])
