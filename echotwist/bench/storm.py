"""
C{--storm N} and C{--connect-rate R}: how fast a server takes new
connections.

A storm opens N connections back to back without waiting for the server
(open loop: each non-blocking C{connect()} waits for nothing, the kernel
does the handshake), sends a byte on each once its handshake is done and
waits for it back.  The listen queue is what a slow accept loop loses: when
it is full the kernel drops the handshake's last step, the client's SYN is
retransmitted a second later, and that connect takes over a second.  So a
storm reports connect latency, how many connects took a second or more,
and the host's C{TcpExtListenOverflows} count over the run.

A connect rate opens R connections a second for the run's duration, each
echoing C{--size} bytes once and closing: accepted connections per second
and their latency.

Both run on the native driver when it builds, else on the Python one here
(a single process: fast enough to overflow a slow server's queue, not to
measure a fast one's limit).
"""

from __future__ import annotations

import errno
import math
import os
import queue
import select
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from echotwist.bench.load import TICK, Target
from echotwist.bench.stats import percentile, saturated

#: Where Linux counts listen-queue overflows (for this network namespace).
NETSTAT = "/proc/net/netstat"

#: A connect that took this long (seconds) waited for a SYN retransmission.
SLOW_CONNECT = 1.0

#: The handshake time a timeline gives a UNIX connect refused at once
#: because the listen queue was full (C{EAGAIN}; TCP drops the SYN instead).
QUEUE_FULL = -1.0

#: Longest a storm may take, in seconds.
STORM_TIMEOUT = 120.0

#: After the run, how long the server's CPU time may keep rising (closing
#: the connections) before it is read for the per-connection lifetime cost.
SETTLE = 5.0

#: Called with seconds since the start and the running totals: connections
#: whose handshake is done, connections echoed, errors.
ConnProgress = Callable[[float, int, int, int], None]


def listen_counters(path: str = NETSTAT) -> dict[str, int] | None:
    """
    Read the host's listen-queue counters.

    @return: C{ListenOverflows} and C{ListenDrops} from the C{TcpExt} lines
        of C{path}, or L{None} where there is no such file (not Linux).
    """
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {
                k: int(table[k])
                for k in ("ListenOverflows", "ListenDrops")
                if k in table
            }
    return None


def process_cpu(pid: int | None) -> float | None:
    """
    @return: the CPU seconds process C{pid} has used: its threads' run time
        in nanoseconds from C{/proc/PID/task/*/schedstat} where the kernel
        keeps it, else user and system clock ticks (1/100 s, too coarse for
        a short storm) from C{/proc/PID/stat}; L{None} without a pid or
        such files.
    """
    if pid is None:
        return None
    ran = _schedstat_cpu(pid)
    if ran is not None:
        return ran
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count from after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _schedstat_cpu(pid: int) -> float | None:
    """
    @return: the summed run time of process C{pid}'s threads, in seconds,
        or L{None} where C{schedstat} can't be read.
    """
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            continue  # a thread that ended since the listing
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e9


def settled_cpu(pid: int | None, limit: float = SETTLE) -> float | None:
    """
    Wait until process C{pid} stops using CPU (its reading holds still for
    a fifth of a second), at most C{limit} seconds.

    @return: its CPU seconds then.
    """
    last = process_cpu(pid)
    deadline = time.monotonic() + limit
    while last is not None and time.monotonic() < deadline:
        time.sleep(0.2)
        now = process_cpu(pid)
        if now == last:
            break
        last = now
    return last


@dataclass
class Timeline:
    """
    What happened to each connection, in seconds from the first connect
    (C{nan} for what never happened).

    @ivar started: when its C{connect()} was called.
    @ivar connected: when its handshake was done.
    @ivar echoed: when its echo was all back.
    @ivar errors: one line per failed connection.
    @ivar cpu: the driver's CPU seconds.
    @ivar wall: seconds from the first connect until every one was done.
    """

    started: list[float] = field(default_factory=list)
    connected: list[float] = field(default_factory=list)
    echoed: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0


@dataclass
class ConnResult:
    """
    The figures of a storm or a connect-rate run.

    @ivar mode: C{"storm"} or C{"connect-rate"}.
    @ivar connections: connections opened (connect called).
    @ivar connected: handshakes done.
    @ivar echoed: connections whose echo came back whole.
    @ivar errors: failed connections.
    @ivar error_lines: the first few failures.
    @ivar seconds: from the first connect to the last echo (or to the end,
        if some never echoed).
    @ivar connect_p50_ms: median connect latency (call to handshake done).
    @ivar connect_p99_ms: 99th percentile connect latency.
    @ivar connect_max_ms: slowest connect.
    @ivar slow_connects: connects that took L{SLOW_CONNECT} or more (a SYN
        retransmission).
    @ivar latency_p50_ms: median time from connect call to echo.
    @ivar latency_p99_ms: 99th percentile of that.
    @ivar latency_max_ms: the slowest.
    @ivar rate: the connections per second asked for (connect-rate).
    @ivar accepted_per_s: connections echoed per second over the run.
    @ivar listen_overflows: the host's C{TcpExtListenOverflows} increase
        over the run (it counts every listener on the host, not only this
        server's); for a UNIX socket, the connects refused because its
        queue was full (L{None} where unknown or none).
    @ivar listen_drops: the same for C{TcpExtListenDrops}.
    @ivar server_us_per_connection: server CPU microseconds per connection
        from the first connect until every connection echoed (accepting,
        setting up, echoing), with C{--server-pid}.
    @ivar server_us_per_lifetime: the same until the server was done closing
        them too.
    @ivar server_share: the server's CPU over the run as a share of a core.
    @ivar server_saturated: whether that share was at or above the
        saturation share.
    @ivar driver: C{"native"} or C{"python"}.
    @ivar driver_share: the driver's own CPU as a share of a core.
    @ivar in_flight: for a storm, how many handshakes could be under way at
        once (1: one at a time; 0: no limit).
    """

    mode: str
    connections: int
    connected: int
    echoed: int
    errors: int
    error_lines: list[str]
    seconds: float
    connect_p50_ms: float
    connect_p99_ms: float
    connect_max_ms: float
    slow_connects: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    rate: float | None
    accepted_per_s: float
    listen_overflows: int | None
    listen_drops: int | None
    server_us_per_connection: float | None
    server_us_per_lifetime: float | None
    server_share: float | None
    server_saturated: bool | None
    driver: str
    driver_share: float
    in_flight: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """
        @return: the fields, for C{--json} (C{nan} becomes C{None}).
        """
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def summarize(
    timeline: Timeline,
    *,
    mode: str,
    rate: float | None,
    driver: str,
    net_before: dict[str, int] | None,
    net_after: dict[str, int] | None,
    server_cpu: tuple[float | None, float | None, float | None],
) -> ConnResult:
    """
    Turn a driver's timeline and the readings around it into figures.

    @param server_cpu: the server's CPU seconds before the run, once every
        connection was done, and once it had closed them (each L{None}
        without C{--server-pid}).
    """
    pairs = list(
        zip(timeline.started, timeline.connected, timeline.echoed, strict=True)
    )
    connects = sorted(c - s for s, c, _ in pairs if not math.isnan(c) and c >= 0)
    refused = sum(1 for _, c, _ in pairs if c == QUEUE_FULL)
    latencies = sorted(e - s for s, _, e in pairs if not math.isnan(e))
    echoed = len(latencies)
    ends = [e for _, _, e in pairs if not math.isnan(e)]
    complete = echoed == len(pairs) and not timeline.errors
    seconds = max(ends) if complete and ends else timeline.wall
    before, done, closed = server_cpu
    per = lifetime = share = None
    if before is not None and done is not None and connects:
        per = (done - before) * 1e6 / len(connects)
        share = (done - before) / seconds if seconds > 0 else math.nan
        if closed is not None:
            lifetime = (closed - before) * 1e6 / len(connects)

    def delta(key: str) -> int | None:
        if net_before is None or net_after is None or key not in net_before:
            # No TCP counters (a UNIX socket): its refusals are the count.
            return refused or None
        return net_after[key] - net_before[key]

    return ConnResult(
        mode=mode,
        connections=len(pairs),
        connected=len(connects),
        echoed=echoed,
        errors=len(timeline.errors),
        error_lines=timeline.errors[:5],
        seconds=seconds,
        connect_p50_ms=percentile(connects, 0.5) * 1e3,
        connect_p99_ms=percentile(connects, 0.99) * 1e3,
        connect_max_ms=connects[-1] * 1e3 if connects else math.nan,
        slow_connects=sum(1 for c in connects if c >= SLOW_CONNECT),
        latency_p50_ms=percentile(latencies, 0.5) * 1e3,
        latency_p99_ms=percentile(latencies, 0.99) * 1e3,
        latency_max_ms=latencies[-1] * 1e3 if latencies else math.nan,
        rate=rate,
        accepted_per_s=echoed / timeline.wall if timeline.wall > 0 else math.nan,
        listen_overflows=delta("ListenOverflows"),
        listen_drops=delta("ListenDrops"),
        server_us_per_connection=per,
        server_us_per_lifetime=lifetime,
        server_share=share,
        server_saturated=saturated(share),
        driver=driver,
        driver_share=timeline.cpu / timeline.wall if timeline.wall > 0 else 0.0,
    )


@dataclass
class _Call:
    """
    One connection of the Python driver.
    """

    index: int
    sock: socket.socket
    state: int = 1  # 1 connecting, 2 echoing, 3 done
    got: int = 0


def _resolve(target: Target) -> tuple[int, Any]:
    """
    @return: the address family and address to connect to.
    """
    if target.path:
        return socket.AF_UNIX, target.path
    family, _, _, _, where = socket.getaddrinfo(
        target.host, target.port, type=socket.SOCK_STREAM
    )[0]
    return family, where


def python_conns(
    target: Target,
    count: int,
    rate: float,
    size: int,
    hold: bool,
    timeout: float,
    progress: ConnProgress | None,
    done: Callable[[], object],
    in_flight: int = 1,
) -> Timeline:
    """
    Open C{count} connections without waiting for the server to accept or
    echo: back to back (C{rate} 0), the next as soon as fewer than
    C{in_flight} handshakes are under way (1: one at a time, as a loop of
    blocking connects; 0: all at once), or C{rate} a second; echo C{size}
    bytes on each.

    @param hold: keep every connection open until all are done (a storm),
        rather than closing each after its echo.
    @param timeout: give up after this many seconds.
    @param progress: called every L{TICK} seconds with the running totals.
    @param done: called once every connection is done, before the held
        ones are closed.
    @return: what happened to each connection.
    """
    family, where = _resolve(target)
    payload = (os.urandom(16) * (size // 16 + 1))[:size]
    nan = math.nan
    line = Timeline([nan] * count, [nan] * count, [nan] * count)
    poller = select.epoll()
    calls: dict[int, _Call] = {}
    held: list[socket.socket] = []
    started = connected = echoed = finished = connecting = 0
    cpu0, t0 = time.process_time(), time.perf_counter()

    def may_start(now: float) -> bool:
        if started == count:
            return False
        if rate > 0:
            return t0 + started / rate <= now
        return in_flight <= 0 or connecting < in_flight

    next_tick = t0 + TICK

    def end(call: _Call, error: str | None) -> None:
        nonlocal finished
        finished += 1
        call.state = 3
        del calls[call.sock.fileno()]
        poller.unregister(call.sock)
        if error is not None:
            line.errors.append(error)
        if hold and error is None:
            held.append(call.sock)
        else:
            call.sock.close()

    try:
        while finished < count:
            now = time.perf_counter()
            while may_start(now):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                if family != socket.AF_UNIX:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                line.started[started] = time.perf_counter() - t0
                code = sock.connect_ex(where)
                call = _Call(started, sock)
                started += 1
                if code not in (0, errno.EINPROGRESS):
                    if code == errno.EAGAIN:
                        line.connected[call.index] = QUEUE_FULL
                    finished += 1
                    line.errors.append(f"connect failed: {os.strerror(code)}")
                    sock.close()
                    continue
                calls[sock.fileno()] = call
                poller.register(sock, select.EPOLLOUT)
                connecting += 1
                if rate <= 0:
                    break
            now = time.perf_counter()
            if now >= next_tick:
                if progress is not None:
                    progress(now - t0, connected, echoed, len(line.errors))
                next_tick += TICK
            wait = 0.0
            if not may_start(now) or rate > 0:
                until = next_tick
                if started < count and rate > 0:
                    until = min(until, t0 + started / rate)
                wait = max(0.0, until - now)
            for fd, _ in poller.poll(wait):
                call = calls[fd]
                at = time.perf_counter() - t0
                if call.state == 1:
                    connecting -= 1
                    problem = call.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if problem:
                        end(call, f"connect failed: {os.strerror(problem)}")
                        continue
                    line.connected[call.index] = at
                    connected += 1
                    try:
                        call.sock.send(payload)
                    except OSError as e:
                        end(call, f"send failed: {e.strerror}")
                        continue
                    poller.modify(call.sock, select.EPOLLIN)
                    call.state = 2
                    continue
                try:
                    data = call.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    end(call, f"connection lost early: {e.strerror}")
                    continue
                if not data:
                    end(call, "connection lost early: closed")
                elif payload[call.got : call.got + len(data)] != data:
                    end(call, "echo differs from what was sent")
                else:
                    call.got += len(data)
                    if call.got == size:
                        line.echoed[call.index] = at
                        echoed += 1
                        end(call, None)
            if time.perf_counter() - t0 > timeout:
                line.errors.append(
                    f"{count - finished} connections not done within {timeout:g} s"
                )
                break
        line.cpu = time.process_time() - cpu0
        line.wall = time.perf_counter() - t0
        done()
    finally:
        for call in list(calls.values()):
            call.sock.close()
        for sock in held:
            sock.close()
        poller.close()
    return line


def native_conns(
    executable: Path,
    target: Target,
    count: int,
    rate: float,
    size: int,
    hold: bool,
    timeout: float,
    progress: ConnProgress | None,
    done: Callable[[], object],
    in_flight: int = 1,
) -> Timeline:
    """
    L{python_conns} on the native driver.
    """
    from echotwist.bench.native import (
        address,
        drivers,
        error_list,
        read_doubles,
    )

    with tempfile.TemporaryDirectory(prefix="echotwist-bench-") as work:
        path = os.path.join(work, "timeline")
        arguments = [
            "conn",
            *address(target),
            str(count),
            repr(float(rate)),
            str(size),
            "1" if hold else "0",
            path,
            repr(float(timeout)),
            str(in_flight),
        ]
        line = Timeline()
        error_lines: list[str] = []
        t0 = time.monotonic()
        with drivers(executable, [arguments]) as ([driver], lines):
            while True:
                try:
                    _, text = lines.get(timeout=timeout + 30)
                except queue.Empty:
                    line.errors.append("native driver: no answer")
                    return line
                word, _, rest = text.partition(" ")
                fields = rest.split()
                if word == "tick" and progress is not None:
                    progress(time.monotonic() - t0, *(int(f) for f in fields[:3]))
                elif word == "done":
                    done()
                    driver.tell("close")
                elif word == "result":
                    line.cpu, line.wall = float(fields[3]), float(fields[4])
                elif word == "error":
                    error_lines.append(rest)
                elif word == "errors":
                    line.errors = error_list(error_lines, int(fields[0]))
                elif word in ("end", "eof"):
                    break
            if word == "eof":
                status = driver.process.wait()
                line.errors.append(f"native driver exited with status {status}")
                return line
        values = read_doubles(path)
    line.started, line.connected, line.echoed = (
        values[0::3],
        values[1::3],
        values[2::3],
    )
    return line


def run_conns(
    target: Target,
    *,
    count: int,
    rate: float,
    size: int,
    server_pid: int | None,
    executable: Path | None,
    progress: ConnProgress | None = None,
    in_flight: int = 1,
) -> ConnResult:
    """
    Run a storm (C{rate} 0: C{count} connections back to back, all held
    until every one echoed) or a connect rate (C{count} connections at
    C{rate} a second, each closed after its echo), and read the host's
    listen-queue counters and the server's CPU time around it.

    @param executable: the native driver, or L{None} for the Python one.
    @param in_flight: for a storm, how many handshakes may be under way at
        once (0: no limit).
    """
    hold = rate <= 0
    timeout = STORM_TIMEOUT if hold else count / rate + 30.0
    tcp = not target.path
    net_before = listen_counters() if tcp else None
    readings: dict[str, Any] = {}

    def done() -> None:
        readings["cpu"] = process_cpu(server_pid)
        readings["net"] = listen_counters() if tcp else None

    before = process_cpu(server_pid)
    conns = python_conns if executable is None else partial(native_conns, executable)
    line = conns(target, count, rate, size, hold, timeout, progress, done, in_flight)
    if "cpu" not in readings:
        done()
    closed = settled_cpu(server_pid) if server_pid is not None else None
    result = summarize(
        line,
        mode="storm" if hold else "connect-rate",
        rate=None if hold else rate,
        driver="python" if executable is None else "native",
        net_before=net_before,
        net_after=readings["net"],
        server_cpu=(before, readings["cpu"], closed),
    )
    if hold:
        result.in_flight = in_flight
    return result
