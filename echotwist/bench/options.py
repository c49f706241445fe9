"""
The command line of C{python -m echotwist.bench}.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from echotwist import __version__
from echotwist.bench.load import Target, parse_target
from echotwist.bench.servers import SERVERS

DEFAULT_CONNECTIONS = (1, 10, 100, 1000)
DEFAULT_SIZES = (64, 1024, 65536)
#: The storm C{--compare} runs unless told otherwise.
DEFAULT_STORM = 10000
#: How C{python -m echotwist.bench} names itself when run that way.
MODULE_PROG = "python -m echotwist.bench"


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


@dataclass(frozen=True)
class Storm:
    """
    A storm workload of C{--compare}: C{connections} opened back to back.
    """

    connections: int

    def __str__(self) -> str:
        return f"storm:{self.connections}"


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


def count_value(text: str) -> int:
    """
    @raise argparse.ArgumentTypeError: unless C{text} is a whole number, 0
        or more.
    """
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
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


def rate_value(text: str) -> float:
    """
    @raise argparse.ArgumentTypeError: unless C{text} is a rate above 0.
    """
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1e6:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of connections per second above 0"
        )
    return value


def interval_value(text: str) -> float:
    """
    @raise argparse.ArgumentTypeError: unless C{text} is seconds, 0 or more.
    """
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def workloads_value(text: str) -> list[Workload | Storm]:
    """
    Read C{--workloads}: comma-separated C{CONNECTIONSxSIZE}, e.g. C{100x1K},
    or C{storm:N}.

    @raise argparse.ArgumentTypeError: naming the bad item.
    """
    result: list[Workload | Storm] = []
    for item in text.split(","):
        if item.strip().startswith("storm:"):
            result.append(Storm(positive_int(item.strip().removeprefix("storm:"))))
            continue
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


def program_name(argv0: str | None = None) -> str:
    """
    @param argv0: the program's path as run (C{sys.argv[0]} by default).
    @return: how the program was invoked, for usage lines: C{python -m
        echotwist.bench} when run as a module, else the command's name
        (C{echotwist-bench}).
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = os.path.basename(argv0)
    if not name or name in ("__main__.py", "-c") or name.endswith(".py"):
        return MODULE_PROG
    return name


def parser(prog: str = MODULE_PROG) -> argparse.ArgumentParser:
    """
    @param prog: the program's name in usage and error lines.
    @return: the argument parser.
    """
    p = argparse.ArgumentParser(
        prog=prog,
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
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--connections",
        type=positive_int,
        metavar="N",
        default=100,
        help="connections, each in ping-pong (default: %(default)s)",
    )
    p.add_argument(
        "--size",
        type=size_value,
        metavar="BYTES",
        default=1024,
        help="bytes per message, e.g. 64, 1K, 64K (default: %(default)s)",
    )
    p.add_argument(
        "--duration",
        type=duration_value,
        metavar="SECONDS",
        default=10.0,
        help="seconds per run (default: %(default)g)",
    )
    p.add_argument(
        "--stream", action="store_true", help="send continuously instead of ping-pong"
    )
    p.add_argument(
        "--server-pid",
        type=positive_int,
        metavar="PID",
        help="report this process's CPU per echo (or per connection) and its "
        "share of a core over the run",
    )
    p.add_argument(
        "--driver",
        choices=("auto", "native", "python"),
        default="auto",
        help="the load generator: native (a small C client built with the "
        "system's cc, which can saturate a server on 2 cores), python "
        "(worker processes on uvloop), or auto: native when it builds, except "
        "for --stream (default: %(default)s)",
    )
    p.add_argument(
        "--processes",
        type=positive_int,
        help="load processes (default: 1 native driver; Python workers: one "
        "per core but one)",
    )
    p.add_argument(
        "--interval",
        type=interval_value,
        metavar="SECONDS",
        default=1.0,
        help="seconds between progress lines on standard error, 0 for none "
        "(default: %(default)g)",
    )
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="--compare: rounds, medians reported (default: %(default)s)",
    )
    p.add_argument(
        "--workloads",
        type=workloads_value,
        help="--compare: e.g. 1x64,100x1K,storm:10000 (default: 1,10,100,1000 "
        f"x 64,1K,64K and storm:{DEFAULT_STORM})",
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
        help="--connect: instead of load, open N connections, at most 512 "
        "connecting at once, time until all echoed a byte, and (with "
        "--server-pid) the server memory per idle connection",
    )
    p.add_argument(
        "--storm",
        type=positive_int,
        metavar="N",
        help="open N connections back to back without waiting for the server, "
        "echo a byte on each: connect latency, connects that took >= 1 s (SYN "
        "retransmissions), listen-queue overflows, total time, server CPU per "
        f"connection (--compare: the storm workload, default {DEFAULT_STORM})",
    )
    p.add_argument(
        "--storm-in-flight",
        type=count_value,
        default=1,
        metavar="K",
        help="--storm: start the next connect as soon as fewer than K "
        "handshakes are under way: 1 is a loop of blocking connects, 0 opens "
        "all at once, a flood no listen queue holds (default: %(default)s)",
    )
    p.add_argument(
        "--connect-rate",
        type=rate_value,
        metavar="R",
        help="--connect: open R connections a second for --duration, each "
        "echoing --size bytes once and closing: accepted connections/s, latency",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the load figures (needs matplotlib)",
    )
    return p


def parse(argv: Sequence[str], prog: str = MODULE_PROG) -> argparse.Namespace:
    """
    Parse and fill in the defaults that depend on the mode.

    @param argv: the arguments, without the program name.
    @param prog: the program's name for usage and error lines.
    @return: the options; C{workloads} is always a list, C{storms} the
        storm workloads of C{--compare}.
    @raise SystemExit: with status 2 and a one-line error, for bad input.
    """
    p = parser(prog)
    options = p.parse_args(argv)
    if options.compare and options.server_pid:
        p.error("--server-pid is for --connect; --compare measures its own servers")
    if options.compare and options.burst:
        p.error("--burst is for --connect")
    if options.compare and options.connect_rate:
        p.error("--connect-rate is for --connect")
    special = [
        name
        for name, value in (
            ("--burst", options.burst),
            ("--storm", options.storm),
            ("--connect-rate", options.connect_rate),
        )
        if value
    ]
    if len(special) > 1:
        p.error(f"{' and '.join(special)} can't be used together")
    if options.storm_in_flight != 1 and not (options.storm or options.compare):
        p.error("--storm-in-flight is for --storm and --compare")
    if special and options.stream:
        p.error(f"{special[0]} can't be used with --stream")
    if options.stream and options.driver == "native":
        p.error("--driver native does not stream: use --driver python")
    if options.plot:
        if special and not options.compare:
            p.error(f"--plot draws load runs and --compare, not {special[0]}")
        if importlib.util.find_spec("matplotlib") is None:
            p.error("--plot needs matplotlib: pip install 'echotwist[bench]'")
        folder = os.path.dirname(os.path.abspath(options.plot))
        if not os.path.isdir(folder):
            p.error(f"--plot {options.plot}: no such folder {folder}")
        if not os.access(folder, os.W_OK):
            p.error(f"--plot {options.plot}: can't write in {folder}")
    no_psutil = importlib.util.find_spec("psutil") is None
    if options.server_pid and options.burst and no_psutil:
        p.error(
            "--burst --server-pid reads the server's memory with psutil: "
            "pip install 'echotwist[bench]'"
        )
    if options.compare and no_psutil and not os.path.exists("/proc/self/stat"):
        p.error(
            "--compare reads the servers' CPU time with psutil here: "
            "pip install 'echotwist[bench]'"
        )
    if options.server_pid and (why := unreadable(options.server_pid)):
        p.error(f"--server-pid {options.server_pid}: {why}")
    workloads = options.workloads
    if workloads is None:
        if options.compare:
            workloads = [
                Workload(c, s) for c in DEFAULT_CONNECTIONS for s in DEFAULT_SIZES
            ]
            if not options.storm:
                workloads.append(Storm(DEFAULT_STORM))
        else:
            workloads = [Workload(options.connections, options.size)]
    if options.compare and options.storm:
        workloads.append(Storm(options.storm))
    # A workload named twice is run (and reported) once.
    workloads = list(dict.fromkeys(workloads))
    options.workloads = [w for w in workloads if isinstance(w, Workload)]
    options.storms = [w for w in workloads if isinstance(w, Storm)]
    if options.servers is None:
        options.servers = [s.name for s in SERVERS]
    return options


def unreadable(pid: int) -> str | None:
    """
    @param pid: a process id.
    @return: why the bench can't read that process's CPU time (from
        C{/proc/PID/stat}, or psutil where there is none), or L{None} if it
        can.
    """
    if os.path.exists("/proc/self/stat"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace"):
                return None
        except FileNotFoundError:
            return "no such process"
        except OSError as e:
            return f"can't read its CPU time: {e.strerror}"
    if importlib.util.find_spec("psutil") is None:
        return "reading its CPU time needs psutil: pip install 'echotwist[bench]'"
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
