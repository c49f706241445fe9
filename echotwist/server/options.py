"""
The options of C{twistd echo}, checked: every value parsed, every C{--port}
made a full endpoint description, before anything starts.

L{echotwist.server.tap} builds the service they describe, and each worker of
C{--workers} (L{echotwist.server.workers}) parses its copy of them here.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from echotwist.server.endpoints import (
    MAX_PORT,
    check_endpoint,
    check_shareable,
    endpoint_description,
    port_number,
)
from echotwist.server.protocol import EchoFactory
from echotwist.server.shutdown import DEFAULT_SHUTDOWN_TIMEOUT
from echotwist.server.udp import DEFAULT_BURST, DEFAULT_RATE

DEFAULT_PORT = "tcp:9000"
#: Where Linux says the longest listen queue it allows (C{somaxconn}).
SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"
#: The listen queue length where the system does not say its limit.
FALLBACK_BACKLOG = 1024
DEFAULT_IDLE_TIMEOUT = 300.0

_N = TypeVar("_N", int, float)


def system_backlog(path: str = SOMAXCONN_PATH) -> int:
    """
    The longest listen queue the system allows, as Go's C{net.Listen} uses.

    A connection storm overflows a shorter queue: each overflow drops a
    handshake, and its client waits a second for the SYN to be sent again.
    The kernel caps any backlog at C{somaxconn} anyway, so asking for it is
    asking for the most there is.

    @param path: the file that holds C{somaxconn}.
    @return: its value, or L{FALLBACK_BACKLOG} where it can't be read (not
        Linux) or is not a positive integer.
    """
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return FALLBACK_BACKLOG
    return value if value > 0 else FALLBACK_BACKLOG


DEFAULT_BACKLOG = system_backlog()


def _number(kind: Callable[[str], _N], name: str, value: str, minimum: _N) -> _N:
    """
    Parse a numeric option or explain what was wrong with it.

    @param kind: C{int} or C{float}.
    @param name: the option, for the message.
    @param value: what the user typed.
    @param minimum: the smallest value allowed.
    @return: the parsed number.
    @raise usage.UsageError: if C{value} is not a number of that kind, or is
        below C{minimum}.
    """
    try:
        number = kind(value)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise usage.UsageError(f"--{name} {value!r}: expected {expected}") from None
    if not number >= minimum:  # also rejects nan
        raise usage.UsageError(f"--{name} {value!r}: must be at least {minimum}")
    return number


class Options(usage.Options):
    """
    Options for C{twistd echo}.
    """

    synopsis = "[options]"
    longdesc = (
        "Serve the echo protocol (RFC 862): every byte received is sent back. "
        "--port takes a port number or any Twisted server endpoint "
        "description and may be given several times."
    )

    optFlags = [["verbose", "v", "Log every chunk received (repr, truncated)."]]

    optParameters = [
        [
            "backlog",
            None,
            str(DEFAULT_BACKLOG),
            "Listen queue length (default: the system's somaxconn).",
        ],
        [
            "max-connections",
            None,
            "0",
            "Close new connections at once while this many are open (0: no limit).",
        ],
        [
            "idle-timeout",
            None,
            str(int(DEFAULT_IDLE_TIMEOUT)),
            "Close a connection silent for this many seconds (0: never).",
        ],
        [
            "shutdown-timeout",
            None,
            str(int(DEFAULT_SHUTDOWN_TIMEOUT)),
            "On SIGTERM, seconds open connections get to finish before they "
            "are closed.",
        ],
        [
            "udp",
            None,
            None,
            "Also echo UDP datagrams on this PORT or INTERFACE:PORT (off by "
            "default; rate-limited per source, never answers ports below 1024).",
        ],
        [
            "udp-rate",
            None,
            str(DEFAULT_RATE),
            "UDP datagrams per second each source address may be sent.",
        ],
        [
            "udp-burst",
            None,
            str(DEFAULT_BURST),
            "UDP datagrams a source address may be sent at once.",
        ],
        [
            "workers",
            None,
            "1",
            "Serve the ports from this many processes (auto: one per CPU).",
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint (e.g. tcp:9100).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []

    def opt_port(self, port: str) -> None:
        """
        Listen on this port or endpoint (default tcp:9000); repeatable.
        """
        self["ports"].append(port)

    opt_p = opt_port

    def postOptions(self) -> None:
        """
        Check the numbers and turn every C{--port} into a full description.

        @raise usage.UsageError: naming the option and the value at fault.
        """
        if self.parent is not None:
            # Parsed by twistd, as its "echo" subcommand: see
            # install_default_reactor.  (Parsed anywhere else, choosing the
            # reactor is left to the program.)
            install_default_reactor()
        backlog = _number(int, "backlog", self["backlog"], 1)
        self["backlog"] = backlog
        self["max-connections"] = _number(
            int, "max-connections", self["max-connections"], 0
        )
        self["idle-timeout"] = _number(float, "idle-timeout", self["idle-timeout"], 0.0)
        self["shutdown-timeout"] = _number(
            float, "shutdown-timeout", self["shutdown-timeout"], 0.0
        )
        self["udp-rate"] = _number(float, "udp-rate", self["udp-rate"], 0.001)
        self["udp-burst"] = _number(int, "udp-burst", self["udp-burst"], 1)
        if self["udp"] is not None:
            self["udp"] = udp_address(self["udp"])
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]
        self["ports"] = [endpoint_description(p, backlog) for p in self["ports"]]
        for description in self["ports"]:
            check_endpoint(description)
        self["workers"] = parse_workers(self["workers"])
        if self["workers"] > 1:
            check_shareable(self["ports"])
        if self["metrics"] is not None:
            _check_metrics(self["metrics"])


def install_default_reactor() -> bool:
    """
    Make the echotwist-epoll reactor (L{echotwist.server.reactor}) the one
    C{twistd echo} runs on, unless one is installed already.

    twistd installs the reactor C{--reactor} names while it reads its own
    options, before ours; with none named, nothing has imported the global
    reactor yet and this installs ours, so that the fast reactor is the
    default and C{--reactor} still chooses any other.  Where there is no
    epoll (not Linux) Twisted's default is left to be installed.

    @return: whether it installed the echotwist-epoll reactor.
    """
    if "twisted.internet.reactor" in sys.modules or not hasattr(select, "epoll"):
        return False
    from echotwist.server import reactor

    reactor.install()
    return True


def udp_address(value: str) -> tuple[str, int]:
    """
    Parse a C{--udp} value.

    @param value: C{PORT}, C{INTERFACE:PORT} or C{[IPV6]:PORT}.
    @return: the interface (C{""} for all) and the port number.
    @raise usage.UsageError: if the port is not a number in 0-65535.
    """
    interface, _, port = value.rpartition(":")
    interface = interface.removeprefix("[").removesuffix("]")
    number = port_number(port)
    if number is None or not 0 <= number <= MAX_PORT:
        raise usage.UsageError(f"--udp {value!r}: expected [INTERFACE:]PORT")
    return interface, number


def _check_metrics(description: str) -> None:
    """
    Check C{--metrics}: its endpoint, and that C{prometheus_client} is here.

    @param description: the server endpoint description.
    @raise usage.UsageError: if either is missing.
    """
    try:
        import echotwist.server.metrics  # noqa: F401
    except ImportError:
        raise usage.UsageError(
            "--metrics needs prometheus_client: pip install 'echotwist[metrics]'"
        ) from None
    check_endpoint(description, "metrics")


def parse_workers(value: str) -> int:
    """
    Parse C{--workers}.

    @param value: a positive integer, or C{auto} for one per CPU.
    @return: the number of worker processes.
    @raise usage.UsageError: for anything else.
    """
    if value == "auto":
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise usage.UsageError(
            f"--workers {value!r}: expected a positive integer or 'auto'"
        )
    return count


def make_factory(config: Options, clock: IReactorTime) -> EchoFactory:
    """
    @param config: parsed L{Options}.
    @param clock: the reactor (or a L{twisted.internet.task.Clock}).
    @return: an L{EchoFactory} configured as the options say.
    """
    return EchoFactory(
        clock,
        idle_timeout=config["idle-timeout"] or None,
        max_connections=config["max-connections"] or None,
        verbose=bool(config["verbose"]),
    )
