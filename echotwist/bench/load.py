"""
The load generator: worker processes, each running many connections on its
own asyncio loop (uvloop when installed), so that it costs the machine as
little CPU as possible and leaves the rest to the server under test.

A worker connects all its connections first, says it is ready, and starts
the timed window only when told to, so that every worker (and the server's
CPU reading) covers the same window.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from echotwist.bench.stats import WorkerResult
from echotwist.ports import MAX_PORT, connect_zero, not_a_port, port_number

#: How long connecting and finishing the last echoes may take, in seconds.
SETTLE_TIMEOUT = 30.0

#: Seconds without a single echo coming back before a run gives up on the
#: server (one that reads but does not echo, an HTTP server say).
NO_ECHO = 3.0

#: How often, in seconds, workers report their running counts.
TICK = 0.25

#: What the workers report every L{TICK}: C{("tick", echoes, bytes_echoed,
#: errors)}, running totals since the window opened.
Tick = tuple[str, int, int, int]

#: Called with the seconds since the window opened and the running totals of
#: all the workers together: echoes, bytes echoed, errors.
Progress = Callable[[float, int, int, int], None]

#: No-echo error line.
NO_ECHO_LINE = f"no echo from the server within {NO_ECHO:g} s"


@dataclass(frozen=True)
class Target:
    """
    Where the echo server listens: a TCP host and port, or a UNIX path.
    """

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        """
        @return: the target as an endpoint description, for labels.
        """
        return f"unix:{self.path}" if self.path else f"tcp:{self.host}:{self.port}"


def parse_target(description: str) -> Target:
    """
    Read a Twisted client endpoint description of a TCP or UNIX endpoint.

    @param description: C{tcp:host=H:port=P}, C{tcp:H:P} or C{unix:path=P}
        (or C{unix:P}).
    @return: the target.
    @raise ValueError: with a one-line reason, for anything else.
    """
    kind, _, rest = description.partition(":")
    positional: list[str] = []
    named: dict[str, str] = {}
    for part in rest.split(":") if rest else []:
        key, equals, value = part.partition("=")
        if equals:
            named[key] = value
        else:
            positional.append(part)
    kind = kind.lower()
    if kind == "tcp":
        fields = dict(zip(("host", "port"), positional, strict=False)) | named
        if "host" not in fields or "port" not in fields:
            raise ValueError(f"{description!r}: a tcp endpoint needs host and port")
        port = port_number(fields["port"])
        if port is None or not 0 <= port <= MAX_PORT:
            raise ValueError(f"{description!r}: {not_a_port(fields['port'])}")
        if port == 0:
            raise ValueError(f"{description!r}: {connect_zero(port)}")
        return Target(host=fields["host"], port=port)
    if kind == "unix":
        path = named.get("path") or (positional[0] if positional else "")
        if not path:
            raise ValueError(f"{description!r}: a unix endpoint needs a path")
        return Target(path=path)
    raise ValueError(f"{description!r}: only tcp: and unix: endpoints are supported")


@dataclass(frozen=True)
class Job:
    """
    One worker's share of a run.

    @ivar target: the server.
    @ivar connections: how many connections this worker opens.
    @ivar size: bytes per message.
    @ivar duration: the timed window, in seconds.
    @ivar stream: send continuously instead of ping-pong.
    """

    target: Target
    connections: int
    size: int
    duration: float
    stream: bool


class _Shared:
    """
    Counters and the stop flag all of a worker's connections share.
    """

    def __init__(self) -> None:
        self.stopping = False
        self.echoes = 0
        self.bytes_echoed = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.open = 0
        self.all_closed: asyncio.Future[None] | None = None

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.all_closed and not self.all_closed.done():
            self.all_closed.set_result(None)


class PingPong(asyncio.Protocol):
    """
    Send a message, wait for all of it back, check it, repeat.
    """

    def __init__(self, shared: _Shared, payload: bytes) -> None:
        self.shared = shared
        self.payload = payload
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes] = []
        self.count = 0
        self.sent_at = 0.0
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        """
        Send the first message.
        """
        self.received = []
        self.count = 0
        self.sent_at = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self.count += len(data)
        size = len(self.payload)
        if self.count < size:
            return
        shared = self.shared
        if self.count > size or b"".join(self.received) != self.payload:
            self.fail("echo differs from what was sent")
            return
        shared.latencies.append(time.perf_counter() - self.sent_at)
        shared.echoes += 1
        shared.bytes_echoed += size
        if shared.stopping:
            self.finish()
        else:
            self.start()

    def fail(self, why: str) -> None:
        """
        Count an error and close this connection.
        """
        self.shared.errors.append(why)
        self.finish()

    def finish(self) -> None:
        """
        Close, once.
        """
        if not self.done:
            self.done = True
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.done = True
            self.shared.errors.append(f"connection lost early: {exc or 'closed'}")
        self.shared.closed()


class Stream(PingPong):
    """
    Send continuously, as fast as the server takes it, and check that what
    comes back is the same stream in order.
    """

    def __init__(self, shared: _Shared, payload: bytes) -> None:
        super().__init__(shared, payload)
        self.paused = False
        self.offset = 0
        self.doubled = payload * 2

    def start(self) -> None:
        self.fill()

    def fill(self) -> None:
        """
        Write until the transport asks us to pause.
        """
        assert self.transport is not None
        while not self.paused and not self.shared.stopping and not self.done:
            self.transport.write(self.payload)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.fill()

    def finish(self) -> None:
        """
        Close at once, dropping what is still unsent: C{close()} stops
        reading, so an echo server that stops reading from a client that
        doesn't read its echoes would never take the rest, and the close
        would never end.
        """
        if not self.done:
            self.done = True
            assert self.transport is not None
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        size = len(self.payload)
        view = memoryview(data)
        while view:
            take = min(len(view), size - self.offset)
            if view[:take] != self.doubled[self.offset : self.offset + take]:
                self.fail("stream echo differs from what was sent")
                return
            self.offset = (self.offset + take) % size
            view = view[take:]
        if not self.shared.stopping:
            self.shared.bytes_echoed += len(data)


async def _run(
    job: Job,
    ready: Callable[[str], None],
    go: Callable[[], None],
    report: Callable[[Tick], None] = lambda tick: None,
) -> WorkerResult:
    """
    Connect, wait for the start signal, load the server for the window.

    @param job: what to do.
    @param ready: called with C{""} once connected, or with an error line.
    @param go: blocks until the window starts.
    @param report: called with a L{Tick} every L{TICK} seconds of the window.
    @return: what was measured.
    """
    loop = asyncio.get_running_loop()
    shared = _Shared()
    shared.all_closed = loop.create_future()
    kind = Stream if job.stream else PingPong
    protocols: list[PingPong] = []
    target = job.target
    try:
        for _i in range(job.connections):
            payload = (os.urandom(16) * (job.size // 16 + 1))[: job.size]
            factory = lambda p=payload: kind(shared, p)  # noqa: E731
            if target.path:
                _, proto = await loop.create_unix_connection(factory, target.path)
            else:
                _, proto = await loop.create_connection(
                    factory, target.host, target.port
                )
            shared.open += 1
            protocols.append(proto)
    except OSError as e:
        ready(f"connect failed after {len(protocols)} connections: {e}")
        for p in protocols:
            p.finish()
        go()
        return WorkerResult()
    ready("")
    go()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for p in protocols:
        p.start()
    watch = _Watch(shared, t0)
    while (elapsed := time.perf_counter() - t0) < job.duration and shared.open:
        await asyncio.sleep(min(TICK, job.duration - elapsed))
        report(("tick", shared.echoes, shared.bytes_echoed, len(shared.errors)))
        if watch.stalled():
            break
    shared.stopping = True
    result = WorkerResult(
        echoes=shared.echoes,
        bytes_echoed=shared.bytes_echoed,
        latencies=shared.latencies[:],
        cpu=time.process_time() - cpu0,
        wall=time.perf_counter() - t0,
    )
    if job.stream:
        for p in protocols:
            p.finish()
    deadline = time.perf_counter() + SETTLE_TIMEOUT
    late = False
    while shared.open and not watch.stalled():
        if time.perf_counter() > deadline:
            shared.errors.append("connections did not finish within the settle time")
            late = True
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(shared.all_closed), TICK)
    for p in protocols:
        if not p.done:
            if not late:
                shared.errors.append(NO_ECHO_LINE)
            p.finish()
    result.errors = shared.errors
    return result


class _Watch:
    """
    Notice when no echo has come back for L{NO_ECHO} seconds.
    """

    def __init__(self, shared: _Shared, start: float) -> None:
        self.shared = shared
        self.seen = (0, 0)
        self.since = start

    def stalled(self) -> bool:
        """
        @return: whether the counts have not moved for L{NO_ECHO} seconds.
        """
        now = time.perf_counter()
        counts = (self.shared.echoes, self.shared.bytes_echoed)
        if counts != self.seen:
            self.seen, self.since = counts, now
        return now - self.since >= NO_ECHO


def have_uvloop() -> bool:
    """
    @return: whether uvloop is installed (without it the Python driver is
        several times slower).
    """
    try:
        return importlib.util.find_spec("uvloop") is not None
    except (ImportError, ValueError):
        return False


def new_loop() -> asyncio.AbstractEventLoop:
    """
    @return: a uvloop loop when uvloop is installed, else asyncio's default.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _worker(pipe: Connection) -> None:
    """
    A worker process: run each job the parent sends until it sends L{None}.
    """
    while (job := pipe.recv()) is not None:
        loop = new_loop()
        try:
            result = loop.run_until_complete(_run(job, pipe.send, pipe.recv, pipe.send))
        finally:
            loop.close()
        pipe.send(result)
    pipe.close()


class LoadPool:
    """
    Long-lived load worker processes, started once for a whole benchmark.
    """

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child,), daemon=True)
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    def run(
        self,
        job: Job,
        window: Callable[[], object],
        progress: Progress | None = None,
    ) -> tuple[list[WorkerResult], list[str]]:
        """
        Spread C{job.connections} over the workers and run them together.

        @param job: the whole run; each worker gets a share of connections.
        @param window: called as the window opens and again after
            C{job.duration} (to read the server's CPU time over it), or
            sooner if every worker ended early.
        @param progress: called as the workers report their counts.
        @return: each worker's result, and the connect errors.
        """
        shares = split(job.connections, len(self.pipes))
        busy = [pipe for pipe, n in zip(self.pipes, shares, strict=True) if n]
        for pipe, n in zip(busy, shares, strict=False):
            with contextlib.suppress(OSError):  # a dead worker says so below
                pipe.send(Job(job.target, n, job.size, job.duration, job.stream))
        failures = [line for pipe in busy if (line := _ready(pipe))]
        window()
        for pipe in busy:
            with contextlib.suppress(OSError):
                pipe.send(None)
        index = {pipe: i for i, pipe in enumerate(busy)}

        gone: set[int] = set()

        def receive(timeout: float) -> list[tuple[int, object]]:
            alive = [p for p in busy if index[p] not in gone]
            ready = [p for p in alive if p in wait(alive, timeout)]
            found: list[tuple[int, object]] = []
            for p in ready:
                try:
                    found.append((index[p], p.recv()))
                except (EOFError, OSError):
                    gone.add(index[p])
                    found.append((index[p], WorkerResult(errors=["load worker died"])))
            return found

        return collect(len(busy), receive, job.duration, window, progress), failures

    def close(self) -> None:
        """
        Stop the workers.
        """
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()


def _ready(pipe: Connection) -> str:
    """
    @return: what a worker said once connected: C{""}, or an error line
        (also when the worker died).
    """
    try:
        line: str = pipe.recv()
    except (EOFError, OSError):
        return "load worker died"
    return line


def collect(
    count: int,
    receive: Callable[[float], list[tuple[int, object]]],
    duration: float,
    window: Callable[[], object],
    progress: Progress | None,
) -> list[WorkerResult]:
    """
    Gather what the workers (or native drivers) send once the window is
    open: L{Tick}s, then each one's L{WorkerResult}.

    @param count: how many workers there are.
    @param receive: waits up to the seconds given for messages, and returns
        them as C{(worker number, message)}.
    @param duration: the window's length.
    @param window: called when the window closes: after C{duration}, or when
        every worker has ended, whichever is first.
    @param progress: called with the running totals as ticks come in.
    @return: the results, in the workers' order.
    """
    start = time.monotonic()
    deadline = start + duration
    counts: dict[int, tuple[int, int, int]] = {}
    results: dict[int, WorkerResult] = {}
    windowed = False
    while len(results) < count:
        now = time.monotonic()
        if not windowed and now >= deadline:
            window()
            windowed = True
        timeout = TICK if windowed else max(0.0, min(TICK, deadline - now))
        for i, message in receive(timeout):
            if isinstance(message, WorkerResult):
                results[i] = message
            elif isinstance(message, tuple):
                counts[i] = (message[1], message[2], message[3])
        if progress is not None and not windowed and counts:
            progress(
                time.monotonic() - start,
                *(sum(c[k] for c in counts.values()) for k in range(3)),
            )
    if not windowed:
        window()
    return [results[i] for i in sorted(results)]


def split(total: int, parts: int) -> list[int]:
    """
    Share C{total} connections out as evenly as possible.

    @return: C{parts} counts summing to C{total}, largest first.
    """
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def worker_count(connections: int, requested: int | None) -> int:
    """
    How many load processes to use.

    @param connections: the largest number of connections any run needs.
    @param requested: C{--processes}, if given.
    @return: the request, or by default one per core but one, at least one,
        never more than the connections.
    """
    if requested is not None:
        return max(1, min(requested, connections))
    return max(1, min(connections, (os.cpu_count() or 1) - 1))
