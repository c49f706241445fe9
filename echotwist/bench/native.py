"""
The native driver: C{driver.c}, built by the bench with the system's C
compiler into a cache folder, and run as a child process that the bench
talks to one line at a time.

On a 2-core machine the Python driver (L{echotwist.bench.load}) needs about
as much CPU per echo as the server it measures, so the two share the cores
and the server never runs flat out.  The native driver needs a fraction of
that: with it the server can be driven to saturation, and its CPU per echo
is then the server's own cost rather than a share of an idle loop.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path

from echotwist.bench.load import (
    SETTLE_TIMEOUT,
    Job,
    Progress,
    Target,
    collect,
    split,
)
from echotwist.bench.stats import WorkerResult

#: Where the source is, in this package.
SOURCE = "driver.c"


class NativeUnavailable(Exception):
    """
    The native driver can't be built here; the message says why, in one line.
    """


def cache_folder() -> Path:
    """
    @return: where built drivers are kept: C{$XDG_CACHE_HOME/echotwist}, or
        C{~/.cache/echotwist}.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "echotwist"


def compiler() -> str | None:
    """
    @return: the C compiler's path (C{$CC}, else C{cc}), or L{None} if there
        is none.
    """
    return shutil.which(os.environ.get("CC") or "cc")


def build() -> Path:
    """
    Build the driver once per version of its source (the cache file is named
    after the source's hash), or find it built.

    @return: the executable.
    @raise NativeUnavailable: if there is no compiler, or it fails.
    """
    source = resources.files("echotwist.bench").joinpath(SOURCE).read_bytes()
    cc = compiler()
    if cc is None:
        raise NativeUnavailable(
            f"no C compiler ({os.environ.get('CC') or 'cc'}) found to build it"
        )
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    folder = cache_folder()
    target = folder / f"driver-{digest}"
    if os.access(target, os.X_OK):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as work:
            c_file = Path(work) / SOURCE
            c_file.write_bytes(source)
            built = Path(work) / "driver"
            done = subprocess.run(
                [cc, "-O2", "-o", str(built), str(c_file), "-lm"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode != 0:
                first = (done.stderr.strip().splitlines() or ["no output"])[0]
                raise NativeUnavailable(f"{cc} failed to build it: {first}")
            os.replace(built, target)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NativeUnavailable(f"could not build it in {folder}: {e}") from None
    return target


def address(target: Target) -> list[str]:
    """
    @return: the driver's C{tcp|unix ADDRESS PORT} arguments for C{target}.
    """
    if target.path:
        return ["unix", target.path, "0"]
    return ["tcp", target.host, str(target.port)]


class Driver:
    """
    One running driver process, its output lines read by a thread into a
    queue shared with the other drivers of the same run.

    @ivar index: this driver's number in the run, put with each line.
    @ivar process: the child process.
    """

    def __init__(
        self,
        executable: Path,
        arguments: list[str],
        index: int,
        lines: queue.Queue[tuple[int, str]],
    ) -> None:
        self.index = index
        self.process = subprocess.Popen(
            [str(executable), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines = lines
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((self.index, line.rstrip("\n")))
        self.lines.put((self.index, "eof"))

    def tell(self, line: str) -> None:
        """
        Write one line to the driver (it waits for one to go on).
        """
        assert self.process.stdin is not None
        with suppress(OSError):
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()

    def stop(self) -> None:
        """
        End the process, if it has not ended.
        """
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()


@contextmanager
def drivers(
    executable: Path, argument_lists: list[list[str]]
) -> Iterator[tuple[list[Driver], queue.Queue[tuple[int, str]]]]:
    """
    Start one driver per argument list; stop them all when the block ends.
    """
    lines: queue.Queue[tuple[int, str]] = queue.Queue()
    started: list[Driver] = []
    try:
        for i, arguments in enumerate(argument_lists):
            started.append(Driver(executable, arguments, i, lines))
        yield started, lines
    finally:
        for d in started:
            d.stop()


def read_doubles(path: str) -> list[float]:
    """
    @return: the float64 values the driver wrote to C{path}.
    """
    values = array("d")
    with open(path, "rb") as f:
        data = f.read()
    values.frombytes(data[: len(data) - len(data) % values.itemsize])
    return values.tolist()


def error_list(lines: list[str], count: int) -> list[str]:
    """
    The driver prints at most a few error lines and the count of all: give
    one line per error, the last line standing for those not printed.
    """
    if not lines:
        return ["error"] * count
    return lines + [lines[-1]] * (count - len(lines))


class NativePool:
    """
    Ping-pong load from native driver processes, in the same shape as
    L{echotwist.bench.load.LoadPool}: the same jobs, the same window, the
    same L{WorkerResult}s.

    @ivar processes: how many driver processes share the connections.
    """

    def __init__(self, processes: int, executable: Path) -> None:
        self.processes = processes
        self.executable = executable

    def run(
        self,
        job: Job,
        window: Callable[[], object],
        progress: Progress | None = None,
    ) -> tuple[list[WorkerResult], list[str]]:
        """
        Spread C{job.connections} over the drivers and run them together.

        @see: L{echotwist.bench.load.LoadPool.run}.
        """
        if job.stream:
            raise ValueError("the native driver does not stream")
        shares = [n for n in split(job.connections, self.processes) if n]
        with tempfile.TemporaryDirectory(prefix="echotwist-bench-") as work:
            files = [os.path.join(work, f"latencies-{i}") for i in range(len(shares))]
            arguments = [
                [
                    "pingpong",
                    *address(job.target),
                    str(n),
                    str(job.size),
                    repr(job.duration),
                    path,
                ]
                for n, path in zip(shares, files, strict=True)
            ]
            with drivers(self.executable, arguments) as (running, lines):
                failures: list[str] = []
                failed: set[int] = set()
                waiting = set(range(len(running)))
                while waiting:
                    try:
                        i, line = lines.get(timeout=SETTLE_TIMEOUT)
                    except queue.Empty:
                        failures.append("native driver: no connection within 30 s")
                        failed |= waiting
                        break
                    if line == "ready":
                        waiting.discard(i)
                    elif line.startswith("failed ") or line == "eof":
                        failures.append(line.removeprefix("failed "))
                        failed.add(i)
                        waiting.discard(i)
                window()
                for d in running:
                    d.tell("go")
                parsers = {
                    i: _Parsed(files[i]) for i in range(len(running)) if i not in failed
                }

                def receive(timeout: float) -> list[tuple[int, object]]:
                    found: list[tuple[int, object]] = [
                        (i, WorkerResult()) for i in failed
                    ]
                    failed.clear()
                    try:
                        i, line = lines.get(timeout=timeout)
                    except queue.Empty:
                        return found
                    if i in parsers:
                        message = parsers[i].feed(line, running[i])
                        if message is not None:
                            found.append((i, message))
                    return found

                results = collect(len(running), receive, job.duration, window, progress)
        return results, failures


class _Parsed:
    """
    Read one ping-pong driver's output lines into ticks and its result.
    """

    def __init__(self, latencies_file: str) -> None:
        self.latencies_file = latencies_file
        self.result = WorkerResult()
        self.error_lines: list[str] = []
        self.done = False

    def feed(self, line: str, driver: Driver) -> object:
        """
        @return: a L{Tick}, the L{WorkerResult} once the driver is done, or
            L{None}.
        """
        word, _, rest = line.partition(" ")
        fields = rest.split()
        if self.done:
            return None
        if word == "tick":
            return ("tick", int(fields[0]), int(fields[1]), int(fields[2]))
        if word == "result":
            self.result.echoes = int(fields[0])
            self.result.bytes_echoed = int(fields[1])
            self.result.cpu = float(fields[2])
            self.result.wall = float(fields[3])
        elif word == "error":
            self.error_lines.append(rest)
        elif word == "errors":
            self.result.errors = error_list(self.error_lines, int(fields[0]))
        elif word == "end":
            self.result.latencies = read_doubles(self.latencies_file)
            self.done = True
            return self.result
        elif word == "eof":
            status = driver.process.wait()
            self.result.errors.append(f"native driver exited with status {status}")
            self.done = True
            return self.result
        return None
