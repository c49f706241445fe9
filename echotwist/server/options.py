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
from functools import partial
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from echotwist._twisted_private import option_given
from echotwist.cli import print_version
from echotwist.ports import not_a_port
from echotwist.server.endpoints import (
    MAX_PORT,
    ListenerError,
    check_endpoint,
    check_shareable,
    endpoint_description,
    port_number,
)
from echotwist.server.protocol import EchoFactory
from echotwist.server.proxy import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_PROXY_FROM,
    ProxySettings,
    parse_networks,
)
from echotwist.server.shutdown import DEFAULT_SHUTDOWN_TIMEOUT
from echotwist.server.udp import DEFAULT_BURST, DEFAULT_RATE
from echotwist.words import counted

DEFAULT_PORT = "9000"
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
        "--port takes a port number (TCP on every IPv6 and IPv4 address), "
        "HOST:PORT (127.0.0.1:9000, [::1]:9000) or any Twisted server endpoint "
        "description (tcp:9000, unix:/tmp/echo.sock), and may be given several "
        "times; quote one with backslashes: 'tcp6:9000:interface=\\:\\:1'."
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
            "Close a connection silent for this many seconds, at most a "
            "tenth more (0: never).",
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
            "Also echo UDP datagrams on this PORT, INTERFACE:PORT or "
            "[IPV6]:PORT (off by default; rate-limited per source, never "
            "answers ports below 1024).",
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
            "Serve the ports from this many processes (auto: one per CPU; at "
            "most 4 per CPU).",
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint, e.g. tcp:9100 "
            "(off by default).",
        ],
        [
            "proxy-timeout",
            None,
            f"{DEFAULT_HEADER_TIMEOUT:g}",
            "Seconds a connection to a haproxy: port gets to send its whole "
            "PROXY header.",
        ],
        [
            "info",
            None,
            None,
            "Answer each connection on this endpoint (haproxy: ones too) with "
            "one JSON line describing it as the server saw it, then close (off by "
            "default).",
        ],
        [
            "info-udp",
            None,
            None,
            "Answer each UDP datagram on this [INTERFACE:]PORT with one JSON "
            "line describing its source, if the datagram is at least as long "
            "(rate-limited as --udp is; off by default).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["ports"] = []
        self["proxy-from"] = []

    def opt_proxy_from(self, network: str) -> None:
        """Accept PROXY headers only from this network [default: 127.0.0.0/8, ::1]."""
        self["proxy-from"].append(network)

    def opt_port(self, port: str) -> None:
        """Listen on PORT (all IPv6/IPv4), HOST:PORT or endpoint [default: 9000]."""
        self["ports"].append(port)

    opt_p = opt_port

    def opt_version(self) -> None:
        """
        Display echotwist's version (and Twisted's) and exit.
        """
        print_version("twistd echo")

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
            no_default_pidfile(self.parent, sys.argv[1:])
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
        if self["info-udp"] is not None:
            self["info-udp"] = udp_address(self["info-udp"], "info-udp")
        self["proxy-timeout"] = _number(
            float, "proxy-timeout", self["proxy-timeout"], 0.001
        )
        try:
            networks = parse_networks(self["proxy-from"])
        except ValueError as e:
            raise usage.UsageError(f"--proxy-from {e}") from None
        self["proxy-from"] = [str(network) for network in networks]
        if not self["ports"]:
            self["ports"] = [DEFAULT_PORT]
        typed = self["ports"]
        self["ports"] = [endpoint_description(p, backlog) for p in typed]
        #: What was typed for each description, for messages.
        self["typed"] = dict(zip(self["ports"], typed, strict=True))
        for description, value in self["typed"].items():
            self._check_listener(partial(check_endpoint, typed=value), description)
        self["workers"], self["workers-warning"] = capped_workers(
            parse_workers(self["workers"]), cpus()
        )
        if self["workers"] > 1:
            check_shareable(self["ports"])
        if self["metrics"] is not None:
            self._check_listener(_check_metrics, self["metrics"])
        if self["info"] is not None:
            info = self["info"]
            self["info"] = endpoint_description(info, backlog)
            self["typed"][self["info"]] = info
            self._check_listener(partial(check_endpoint, option="info"), self["info"])

    def _check_listener(self, check: Callable[[str], None], description: str) -> None:
        """
        Run one listener's check; under twistd, a L{ListenerError} it raises
        ends twistd with that one line (exit status 1) instead of twistd's
        usage text and the error, as it would once the listener starts.

        @param check: the check, given C{description}.
        @param description: the endpoint description to check.
        @raise SystemExit: under twistd, for a L{ListenerError}.
        @raise usage.UsageError: otherwise, for anything wrong.
        """
        try:
            check(description)
        except ListenerError as e:
            if self.parent is not None:
                raise SystemExit(f"twistd echo: {e}") from None
            raise


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


def no_default_pidfile(twistd: usage.Options, argv: list[str]) -> bool:
    """
    In the foreground (C{twistd -n}), write no pidfile unless C{--pidfile}
    is given: twistd's default C{twistd.pid} in the working directory
    refuses a second C{twistd -n echo --port 9001} there ("Another twistd
    server is running") and is left behind by a start that fails.  A
    daemon keeps twistd's default: it is how it is found and stopped.

    @param twistd: twistd's own options, parsed from C{argv}.
    @param argv: twistd's arguments.
    @return: whether the pidfile was turned off.
    """
    if not twistd.get("nodaemon") or option_given(twistd, "pidfile", argv):
        return False
    twistd["pidfile"] = ""
    return True


def udp_address(value: str, option: str = "udp") -> tuple[str, int]:
    """
    Parse a C{--udp} (or C{--info-udp}) value.

    @param value: C{PORT}, C{INTERFACE:PORT} or C{[IPV6]:PORT}.
    @param option: the option it came from, for the message.
    @return: the interface (C{""} for all) and the port number.
    @raise usage.UsageError: if the port is not a number in 0-65535.
    """
    interface, _, port = value.rpartition(":")
    interface = interface.removeprefix("[").removesuffix("]")
    number = port_number(port)
    if number is None or not 0 <= number <= MAX_PORT:
        raise usage.UsageError(
            f"--{option} {value!r}: {not_a_port(port)}; expected PORT, "
            "INTERFACE:PORT or [IPV6]:PORT"
        )
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


#: The most workers per CPU C{--workers} starts: more only compete for the
#: same CPUs, each costing its memory and descriptors.
WORKERS_PER_CPU = 4


def cpus() -> int:
    """
    @return: the CPUs this process may run on.
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def capped_workers(count: int, available: int) -> tuple[int, str | None]:
    """
    Cap C{--workers} at L{WORKERS_PER_CPU} per CPU.

    @param count: the number asked for.
    @param available: the CPUs there are.
    @return: the number to start, and the warning to log if it is fewer
        than C{count} (L{None} otherwise).
    """
    cap = WORKERS_PER_CPU * available
    if count <= cap:
        return count, None
    return cap, (
        f"--workers {count}: starting {cap}, {WORKERS_PER_CPU} per CPU on "
        f"{counted(available, 'CPU')}: more would only compete for the same "
        "CPUs, each with its own memory (--workers auto starts one per CPU)"
    )


def parse_workers(value: str) -> int:
    """
    Parse C{--workers}.

    @param value: a positive integer, or C{auto} for one per CPU.
    @return: the number of worker processes (not yet capped: see
        L{capped_workers}).
    @raise usage.UsageError: for anything else.
    """
    if value == "auto":
        return cpus()
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


def make_proxy_settings(config: Options, clock: IReactorTime) -> ProxySettings:
    """
    @param config: parsed L{Options}.
    @param clock: the reactor (or a L{twisted.internet.task.Clock}).
    @return: the settings the process's C{haproxy:} ports share.
    """
    trusted = parse_networks(config["proxy-from"] or DEFAULT_PROXY_FROM)
    return ProxySettings(clock, trusted, timeout=config["proxy-timeout"])
