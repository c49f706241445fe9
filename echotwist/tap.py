"""
The C{twistd echo} command: its options and the service they describe.

C{twisted/plugins/echotwist_plugin.py} points twistd here, in the way
L{twisted.tap.portforward} serves C{twistd portforward}.
"""

from __future__ import annotations

import select
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypeVar

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from echotwist.descriptors import endpoint_kind, listeners
from echotwist.protocol import EchoFactory
from echotwist.shutdown import DEFAULT_SHUTDOWN_TIMEOUT, ShutdownService
from echotwist.snapshot import Snapshot, local_snapshots, merged_snapshots
from echotwist.udp import DEFAULT_BURST, DEFAULT_RATE, EchoDatagramProtocol
from echotwist.workers import (
    STOP_TIMEOUT,
    WorkerPool,
    check_shareable,
    parse_workers,
    worker_args,
)

DEFAULT_PORT = "tcp:9000"
DEFAULT_BACKLOG = 1024
DEFAULT_IDLE_TIMEOUT = 300.0

#: The largest TCP or UDP port number.
MAX_PORT = 65535

#: The largest UDP datagram the server reads whole (the most a UDP length
#: field can say); Twisted reads at most 8192 bytes by default, truncating
#: larger datagrams.
UDP_MAX_DATAGRAM = 65535

#: Endpoint types that take a C{backlog} parameter.
_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})

_N = TypeVar("_N", int, float)


def port_number(text: str) -> int | None:
    """
    Read a port number as typed.

    @param text: an option's value, or the port part of one.
    @return: the number C{text} spells in ASCII digits, after an optional
        minus sign and whether or not it is in range (the caller says what
        is wrong with it), or L{None} if it spells none.  (C{str.isdigit}
        alone would accept digits C{int} rejects, such as C{"\u00b2"}.)
    """
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        return int(text)
    return None


def endpoint_description(port: str, backlog: int) -> str:
    """
    Turn a C{--port} value into a full server endpoint description.

    @param port: a port number (C{9000}, made C{tcp:9000}) or any server
        endpoint string (C{tcp6:9000:interface=\\:\\:1}, C{unix:/run/echo}).
    @param backlog: listen queue length, added where the endpoint type takes
        one and the description does not already set it.
    @return: the full description, for L{endpoints.serverFromString}.
    @raise usage.UsageError: for a port number outside 0-65535.
    """
    number = port_number(port)
    if number is not None:
        if not 0 <= number <= MAX_PORT:
            raise usage.UsageError(f"--port {port}: a port number is 0-{MAX_PORT}")
        port = f"tcp:{number}"
    if endpoint_kind(port) in _BACKLOG_TYPES and "backlog=" not in port:
        port = f"{port}:backlog={backlog}"
    return port


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
        ["backlog", None, str(DEFAULT_BACKLOG), "Listen queue length."],
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
            _check_endpoint(description)
        self["workers"] = parse_workers(self["workers"])
        if self["workers"] > 1:
            check_shareable(self["ports"])
        if self["metrics"] is not None:
            _check_metrics(self["metrics"])


def install_default_reactor() -> bool:
    """
    Make the echotwist-epoll reactor (L{echotwist.reactor}) the one
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
    from echotwist import reactor

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


def _check_endpoint(description: str, option: str = "port") -> None:
    """
    Parse a server endpoint description now, so a typo is a usage error
    rather than a traceback once twistd starts.

    @param description: the full description.
    @param option: the option it came from, for the message.
    @raise usage.UsageError: if Twisted can't make an endpoint of it.
    """
    from twisted.internet import reactor

    try:
        endpoints.serverFromString(reactor, description)
    except IndexError:
        raise usage.UsageError(
            f"--{option} {description!r}: no such socket passed by systemd "
            "(LISTEN_FDS, LISTEN_PID)"
        ) from None
    except Exception as e:
        # Endpoint parsers and plugins raise anything: ValueError for a
        # typo, OpenSSL.crypto.Error for a key file that isn't PEM, ...
        reason = str(e) or type(e).__name__
        raise usage.UsageError(f"--{option} {description!r}: {reason}") from None


def _check_metrics(description: str) -> None:
    """
    Check C{--metrics}: its endpoint, and that C{prometheus_client} is here.

    @param description: the server endpoint description.
    @raise usage.UsageError: if either is missing.
    """
    try:
        import echotwist.metrics  # noqa: F401
    except ImportError:
        raise usage.UsageError(
            "--metrics needs prometheus_client: pip install 'echotwist[metrics]'"
        ) from None
    _check_endpoint(description, "metrics")


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


class EchoService(MultiService):
    """
    The listeners of one C{twistd echo}.

    In the foreground a port that can't be listened on ends twistd with one
    line naming it rather than a traceback.  A daemonising twistd must see the
    exception itself: its parent process reports it (and waits for nothing
    else).

    @ivar foreground: whether twistd runs with C{-n}.
    """

    def __init__(self, foreground: bool) -> None:
        super().__init__()
        self.foreground = foreground

    def privilegedStartService(self) -> None:
        """
        Start listening (before twistd sheds privileges).

        @raise SystemExit: in the foreground, naming the address if a port
            can't be listened on.
        """
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            if self.foreground:
                raise SystemExit(f"twistd echo: {e}") from None
            raise


def makeService(config: Options) -> MultiService:
    """
    Build the echo service: one listener per C{--port}, one shared factory.

    @param config: parsed L{Options}.
    @return: a L{MultiService} of the listeners.
    """
    from twisted.internet import reactor

    factory = make_factory(config, reactor)
    twistd_options = config.parent
    daemon = twistd_options is not None and not twistd_options.get("nodaemon", True)
    service = EchoService(foreground=not daemon)
    sources: Callable[[], Mapping[str, Snapshot]]
    udp = None
    if config["udp"] is not None:
        udp = EchoDatagramProtocol(
            reactor, rate=config["udp-rate"], burst=config["udp-burst"]
        )
    sources = partial(local_snapshots, factory, [] if udp is None else [udp])
    pool = None
    if config["workers"] > 1:
        pool = WorkerPool(
            reactor,
            config["ports"],
            config["workers"],
            worker_args(config),
            factory,
            stop_timeout=config["shutdown-timeout"] + STOP_TIMEOUT,
        )
        sources = partial(merged_snapshots, sources, pool.snapshots)
    serving = ShutdownService(
        factory, reactor, timeout=config["shutdown-timeout"], counts=sources
    )
    serving.setServiceParent(service)
    if udp is not None:
        interface, port = config["udp"]
        internet.UDPServer(
            port, udp, interface=interface, maxPacketSize=UDP_MAX_DATAGRAM
        ).setServiceParent(serving)
    if pool is not None:
        pool.setServiceParent(serving)
    else:
        ports = (endpoints.serverFromString(reactor, d) for d in config["ports"])
        for listener in listeners(ports, factory, reactor):
            listener.setServiceParent(serving)
    if config["metrics"] is not None:
        from echotwist.metrics import metrics_service

        metrics_service(config["metrics"], sources).setServiceParent(service)
    return service
