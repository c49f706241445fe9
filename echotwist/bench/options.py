"""
The command line of C{python -m echotwist.bench}.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from echotwist.bench.load import Target, parse_target
from echotwist.bench.servers import SERVERS

DEFAULT_CONNECTIONS = (1, 10, 100, 1000)
DEFAULT_SIZES = (64, 1024, 65536)


@dataclass(frozen=True)
class Workload:
    """
    How many connections, each sending messages of how many bytes.
    """

    connections: int
    size: int

    def __str__(self) -> str:
        size = f"{self.size // 1024}K" if self.size % 1024 == 0 else str(self.size)
        return f"{self.connections}x{size}"


def size_value(text: str) -> int:
    """
    Read a byte count such as C{64}, C{1k} or C{64K}.

    @raise argparse.ArgumentTypeError: for anything else or below 1.
    """
    scale = 1024 if text[-1:] in ("k", "K") else 1
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 64 or 1K")
    return int(digits) * scale


def positive_int(text: str) -> int:
    """
    @raise argparse.ArgumentTypeError: unless C{text} is a whole number > 0.
    """
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def duration_value(text: str) -> float:
    """
    @raise argparse.ArgumentTypeError: unless C{text} is seconds > 0.
    """
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def workloads_value(text: str) -> list[Workload]:
    """
    Read C{--workloads}: comma-separated C{CONNECTIONSxSIZE}, e.g. C{100x1K}.

    @raise argparse.ArgumentTypeError: naming the bad item.
    """
    result = []
    for item in text.split(","):
        count, x, size = item.strip().partition("x")
        if not x:
            raise argparse.ArgumentTypeError(f"{item!r} is not CONNECTIONSxSIZE")
        result.append(Workload(positive_int(count), size_value(size)))
    return result


def servers_value(text: str) -> list[str]:
    """
    Read C{--servers}: comma-separated names from L{SERVERS}.

    @raise argparse.ArgumentTypeError: naming an unknown server.
    """
    known = [s.name for s in SERVERS]
    names = [n.strip() for n in text.split(",")]
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown server {name!r} (known: {', '.join(known)})"
            )
    return names


def target_value(text: str) -> Target:
    """
    @raise argparse.ArgumentTypeError: for an endpoint we can't load.
    """
    try:
        return parse_target(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def unreadable(pid: int) -> str | None:
    """
    @param pid: a process id.
    @return: why the bench can't read that process's CPU time and memory,
        or L{None} if it can.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        process.cpu_times()
        process.memory_info()
    except psutil.NoSuchProcess:
        return "no such process"
    except psutil.AccessDenied:
        return "not allowed to read its CPU time and memory"
    return None


def parser() -> argparse.ArgumentParser:
    """
    @return: the argument parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m echotwist.bench",
        description="Load an echo server and report echoes/s, MiB/s, latency "
        "and the server's CPU time per echo; or compare several servers.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--connect",
        type=target_value,
        metavar="ENDPOINT",
        help="the server: tcp:host=H:port=P or unix:path=P",
    )
    mode.add_argument(
        "--compare",
        action="store_true",
        help="start each server in turn on a free port and compare them",
    )
    p.add_argument("--connections", type=positive_int, default=100)
    p.add_argument("--size", type=size_value, default=1024, help="bytes per message")
    p.add_argument(
        "--duration", type=duration_value, default=10.0, help="seconds per run"
    )
    p.add_argument(
        "--stream", action="store_true", help="send continuously instead of ping-pong"
    )
    p.add_argument(
        "--server-pid", type=positive_int, help="report this process's CPU per echo"
    )
    p.add_argument("--processes", type=positive_int, help="load worker processes")
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="--compare: rounds, medians reported",
    )
    p.add_argument(
        "--workloads",
        type=workloads_value,
        help="--compare: e.g. 1x64,100x1K (default: 1,10,100,1000 x 64,1K,64K)",
    )
    p.add_argument(
        "--servers",
        type=servers_value,
        help="--compare: which servers (default: all; "
        + ", ".join(s.name for s in SERVERS)
        + ")",
    )
    p.add_argument(
        "--burst",
        type=positive_int,
        metavar="N",
        help="--connect: instead of load, open N connections back to back, "
        "time until all echoed a byte, and (with --server-pid) the server "
        "memory per idle connection",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--plot", metavar="FILE.png", help="draw the figures (needs matplotlib)"
    )
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """
    Parse and fill in the defaults that depend on the mode.

    @param argv: the arguments, without the program name.
    @return: the options; C{workloads} is always a list.
    @raise SystemExit: with status 2 and a one-line error, for bad input.
    """
    p = parser()
    options = p.parse_args(argv)
    if options.compare and options.server_pid:
        p.error("--server-pid is for --connect; --compare measures its own servers")
    if options.compare and options.burst:
        p.error("--burst is for --connect")
    if options.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install 'echotwist[bench]'")
    if options.compare or options.server_pid:
        if importlib.util.find_spec("psutil") is None:
            p.error(
                "--compare and --server-pid read CPU time with psutil: "
                "pip install 'echotwist[bench]'"
            )
        if options.server_pid and (why := unreadable(options.server_pid)):
            p.error(f"--server-pid {options.server_pid}: {why}")
    if options.workloads is None:
        if options.compare:
            options.workloads = [
                Workload(c, s) for c in DEFAULT_CONNECTIONS for s in DEFAULT_SIZES
            ]
        else:
            options.workloads = [Workload(options.connections, options.size)]
    # A workload named twice is run (and reported) once.
    options.workloads = list(dict.fromkeys(options.workloads))
    if options.servers is None:
        options.servers = [s.name for s in SERVERS]
    return options
