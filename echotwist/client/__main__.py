"""
C{python -m echotwist.client}: the command line, and only that.

One message (C{python -m echotwist.client "msg"}) is sent and its echo
printed (L{echotwist.client.oneshot}); any probing option (C{-c}, C{-i},
C{-s}, ...), or no message at a terminal, probes the path as ping does
(L{echotwist.client.session}); C{--info} asks an info port
(L{echotwist.client.info_command}). Exit statuses:
L{echotwist.client.exits}.

To add an option: add it in the C{add_*_options} function for its group
(or a new one called from L{build_parser}), check it in L{check_arguments},
and act on it in L{dispatch}.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet import task

from echotwist import __version__, ports
from echotwist.client import oneshot
from echotwist.client.exits import (
    EXIT_USAGE,
    ONE_SHOT_STATUSES,
    PROBE_STATUSES,
    PROG,
    ClientExit,
)
from echotwist.client.info_command import run_info
from echotwist.client.payload import PatternError, payloads
from echotwist.client.probe import MIN_INTERVAL
from echotwist.client.resolver import EncodableNamesResolver
from echotwist.client.session import (
    DEFAULT_INTERVAL,
    DEFAULT_PROBE_TIMEOUT,
    DEFAULT_SIZE,
    EXIT_BROKEN_PIPE,
    OutputClosed,
    Session,
)
from echotwist.client.udp import MAX_DATAGRAM
from echotwist.client.udp_probe import HEADER, MAX_PROBE

EXAMPLES = """\
examples:
  %(prog)s "hello world"                    print the echo of one message
  %(prog)s -p 7 --host ::1 "msg"            to port 7 over IPv6
  %(prog)s --connect unix:/run/echo.sock "msg"
  %(prog)s --connect tls:localhost:9443:trustRoots=ca/ "msg"
  printf 'any\\0bytes' | %(prog)s -         binary in, the same bytes out
  %(prog)s --udp -p 9007 "one datagram"     one UDP datagram, with retries

  %(prog)s -c 5                             5 probes of 64 random bytes, 1 s apart
  %(prog)s -c 10 -i 0.2 -s 1024 --reconnect  new connection each: connect times
  %(prog)s --udp -p 9007 -c 100 -i 0.1 --spread   UDP, a new source port each
  %(prog)s -c 0 -D --json                   until Ctrl-C, JSON lines
"""

#: The largest probe over a stream.
MAX_STREAM_PROBE = 16 << 20
#: What the server's default UDP rate limit allows (twistd echo --udp-rate
#: 10 --udp-burst 20).
UDP_LIMIT_NOTE = (
    "twistd echo answers each source address 10 datagrams a second after a "
    "burst of 20 by default (--udp-rate, --udp-burst): -i 0.1 or slower stays "
    "within it"
)


#: Options whose value may look like a negative number (C{-c -1}): joined
#: to it before parsing, so the value is checked (and refused) as a value,
#: not taken for an option (C{-4} and C{-6} make argparse read C{-1} so).
VALUE_OPTIONS = frozenset(
    {
        "-c",
        "--count",
        "-i",
        "--interval",
        "-s",
        "--size",
        "-w",
        "--deadline",
        "--timeout",
        "--retries",
        "-p",
        "--port",
        "--tos",
        "--dscp",
    }
)


class _Parser(argparse.ArgumentParser):
    """
    The command line parser: a usage error is one line, and a value that
    looks like a negative number is a value.
    """

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """
        @see: L{argparse.ArgumentParser.parse_known_args}.
        """
        if args is None:
            args = sys.argv[1:]
        joined: list[str] = []
        for word in args:
            previous = joined[-1] if joined else ""
            if (
                previous in VALUE_OPTIONS
                and word.startswith("-")
                and word[1:2].isdigit()
            ):
                joined[-1] = f"{previous}={word}"
            else:
                joined.append(word)
        return super().parse_known_args(joined, namespace)

    def error(self, message: str) -> NoReturn:
        """
        Exit with the usage status and one line (C{--help} shows the rest).
        """
        self._print_message(f"{self.prog}: {message} (see --help)\n", sys.stderr)
        raise SystemExit(EXIT_USAGE)


class DefaultSeconds(float):
    """
    A default number of seconds, told apart from the same number typed.
    """


def build_parser() -> argparse.ArgumentParser:
    """
    @return: the command line parser.
    """
    parser = _Parser(
        prog=PROG,
        description="Send MESSAGE to an echo server and print the echo; or, "
        "with any probing option (or no MESSAGE at a terminal), probe the path "
        "as ping does: per-probe lines, then statistics.",
        epilog=f"{EXAMPLES}\nexit statuses, one message: {ONE_SHOT_STATUSES}."
        f"\nexit statuses, probing: {PROBE_STATUSES}.\n\nUDP: {UDP_LIMIT_NOTE}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "message",
        nargs="?",
        help="the message (none with --info); '-' (or none, when standard "
        "input is not a terminal) reads bytes from standard input and writes "
        "the echo to standard output unchanged (no newline added)",
    )
    add_target_options(parser)
    add_one_shot_options(parser)
    add_info_options(parser)
    add_probe_options(parser)
    add_address_options(parser)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report connect and round-trip times on standard error",
    )
    return parser


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """
    Add the options that say where the server is.
    """
    parser.add_argument(
        "--host",
        default="localhost",
        help="the server's name or address (default: localhost)",
    )
    parser.add_argument(
        "-p",
        "--port",
        type=ports.connect_port,
        default=9000,
        help="its port (default: 9000)",
    )
    parser.add_argument(
        "--connect",
        metavar="ENDPOINT",
        help="a Twisted client endpoint (tcp:HOST:PORT, unix:PATH, "
        "tls:HOST:PORT:trustRoots=DIR); overrides --host and --port",
    )
    parser.add_argument(
        "--udp",
        action="store_true",
        help="echo over UDP to --host and --port: one datagram (at most "
        f"{MAX_DATAGRAM} bytes), --timeout seconds per try",
    )


def add_one_shot_options(parser: argparse.ArgumentParser) -> None:
    """
    Add the options of the one-message run.
    """
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DefaultSeconds(10.0),
        help="seconds for connecting and the whole echo (default: 10); when "
        f"probing, for each probe (default: {DEFAULT_PROBE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--retries",
        type=_count,
        default=3,
        help="with --udp, tries after the first (default: 3)",
    )


def add_info_options(parser: argparse.ArgumentParser) -> None:
    """
    Add the options of the C{--info} run.
    """
    parser.add_argument(
        "--info",
        action="store_true",
        help="instead of an echo, print what the server's info port (twistd "
        "echo --info, or --info-udp with --udp) says about this connection",
    )


def add_probe_options(parser: argparse.ArgumentParser) -> None:
    """
    Add the options of probing (any of them turns it on).
    """
    group = parser.add_argument_group(
        "probing",
        "Any of these probes the path, as ping does (Ctrl-C ends it "
        "and prints the statistics).",
    )
    group.add_argument(
        "-c",
        "--count",
        type=_natural,
        help="probes to send (0: until interrupted; default: 0)",
    )
    group.add_argument(
        "-i",
        "--interval",
        type=_interval,
        metavar="SECONDS",
        help=f"between probes (default: {DEFAULT_INTERVAL:g}; at least "
        f"{MIN_INTERVAL:g})",
    )
    group.add_argument(
        "-s",
        "--size",
        type=_natural,
        metavar="BYTES",
        help=f"bytes per probe (default: {DEFAULT_SIZE}; with --udp, "
        f"{HEADER.size} to {MAX_PROBE}, including a {HEADER.size}-byte header)",
    )
    group.add_argument(
        "--pattern",
        help="what probes carry: random (default: new bytes each "
        "probe), zeros, ascii, or hex digits to repeat (e.g. deadbeef)",
    )
    group.add_argument(
        "-w",
        "--deadline",
        type=_positive,
        metavar="SECONDS",
        help="end the whole run after this long (default: none)",
    )
    group.add_argument(
        "--reconnect",
        action="store_true",
        help="a new connection per probe, reporting connect (and TLS "
        "handshake) time apart from the echo (default: one connection)",
    )
    group.add_argument(
        "--spread",
        action="store_true",
        help="with --udp, each probe from a new source port (to cover ECMP/LAG paths)",
    )
    group.add_argument(
        "-D",
        "--timestamps",
        action="store_true",
        help="prefix each line with the time (seconds since the epoch)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per probe, then {"summary": ...} (with '
        "--info: the server's JSON line as it came)",
    )


def add_address_options(parser: argparse.ArgumentParser) -> None:
    """
    Add the options that choose addresses and mark probes.
    """
    group = parser.add_argument_group("addressing")
    family = group.add_mutually_exclusive_group()
    family.add_argument("-4", dest="ipv4", action="store_true", help="IPv4 only")
    family.add_argument("-6", dest="ipv6", action="store_true", help="IPv6 only")
    group.add_argument(
        "--all-addresses",
        action="store_true",
        help="probe every address --host resolves to, in turn (default: the first)",
    )
    group.add_argument(
        "--bind",
        type=_bind,
        metavar="ADDRESS[:PORT]",
        help="the source address (and port) of probes ([::1]:5000 for IPv6)",
    )
    marks = group.add_mutually_exclusive_group()
    marks.add_argument(
        "--tos",
        type=_byte,
        help="the IP TOS byte (IPv6 traffic class) of "
        "probes, 0-255 (TCP: after the handshake)",
    )
    marks.add_argument(
        "--dscp",
        type=_dscp,
        dest="tos",
        help="the DSCP of probes, 0-63 (the TOS byte's upper six bits)",
    )


def _natural(text: str) -> int:
    """
    @return: C{text} as a whole number, 0 or more.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _interval(text: str) -> float:
    """
    @return: C{text} as an interval, at least L{MIN_INTERVAL} seconds.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    value = _positive(text)
    if value < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"{text!r} is under the shortest interval, {MIN_INTERVAL:g} s"
        )
    return value


def _byte(text: str) -> int:
    """
    @return: C{text} (decimal, or 0x hex) as a byte value.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TOS byte (0-255)")
    return value


def _dscp(text: str) -> int:
    """
    @return: C{text} as a DSCP, shifted into a TOS byte.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    if not (text.isascii() and text.isdigit()) or int(text) > 63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a DSCP (0-63)")
    return int(text) << 2


def _bind(text: str) -> tuple[str, int]:
    """
    @return: C{ADDRESS[:PORT]} (C{[V6]:PORT} or a bare IPv6 address) as an
        address and port (0: any).
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    host, port = text, "0"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "0"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ADDRESS[:PORT] with an IP address"
        ) from None
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: the port is not 0-65535")
    return host, int(port)


_PROBE_OPTIONS = (
    "count",
    "interval",
    "size",
    "pattern",
    "deadline",
    "reconnect",
    "spread",
    "timestamps",
    "all_addresses",
)


def probing(args: argparse.Namespace, stdin_is_terminal: bool) -> bool:
    """
    @return: whether the command line asks for probing: a probing option,
        C{--json} without C{--info}, or no message at a terminal.
    """
    if args.info:
        return False
    if any(getattr(args, name) not in (None, False) for name in _PROBE_OPTIONS):
        return True
    return bool(args.json) or (args.message is None and stdin_is_terminal)


def _check_probing(args: argparse.Namespace) -> None:
    """
    Check the probing options together, and fill in their defaults.

    @raise ClientExit: with the usage status, for a bad combination.
    """

    def usage(message: str) -> ClientExit:
        return ClientExit(EXIT_USAGE, message)

    if args.message is not None and (args.size is not None or args.pattern):
        raise usage("give a MESSAGE or --size/--pattern, not both")
    if args.spread and not args.udp:
        raise usage("--spread takes --udp (a new UDP source port per probe)")
    if args.reconnect and args.udp:
        raise usage("--reconnect is for TCP, TLS and UNIX; UDP has no connection")
    if args.spread and args.bind is not None and args.bind[1]:
        raise usage("--spread picks a new source port per probe: --bind takes no port")
    if args.connect is not None:
        for given, name in (
            (args.all_addresses, "--all-addresses"),
            (args.ipv4 or args.ipv6, "-4/-6"),
            (args.bind is not None, "--bind"),
        ):
            if given:
                raise usage(f"{name} takes --host, not --connect")
        if args.tos is not None and args.connect.startswith("unix:"):
            raise usage("--tos/--dscp mark IP packets: not over a UNIX socket")
    size = args.size if args.size is not None else DEFAULT_SIZE
    if args.udp:
        if args.connect is not None:
            raise usage("--udp takes --host and --port, not --connect")
        if args.size is not None and not HEADER.size <= size <= MAX_PROBE:
            raise usage(
                f"--size {size}: a UDP probe is {HEADER.size} (its header) to "
                f"{MAX_PROBE} bytes (one datagram)"
            )
    elif not 1 <= size <= MAX_STREAM_PROBE:
        raise usage(f"--size {size}: a probe is 1 to {MAX_STREAM_PROBE} bytes")
    if args.pattern is not None:
        try:
            payloads(args.pattern, 1)
        except PatternError as e:
            raise usage(f"--pattern {e}") from None
    if args.count is None:
        args.count = 0
    if args.interval is None:
        args.interval = DEFAULT_INTERVAL
    if isinstance(args.timeout, DefaultSeconds):
        args.timeout = DEFAULT_PROBE_TIMEOUT


def _count(text: str) -> int:
    """
    @return: C{text} as a count from 0 to 100.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    if not (text.isascii() and text.isdigit()) or int(text) > 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0-100)")
    return int(text)


def _positive(text: str) -> float:
    """
    @return: C{text} as a number of seconds above zero.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def check_arguments(args: argparse.Namespace, stdin_is_terminal: bool) -> None:
    """
    Check what argparse alone can't.

    @param args: the parsed command line.
    @param stdin_is_terminal: whether standard input is a terminal.
    @raise ClientExit: with the usage status, for a bad combination.
    """
    if args.info:
        if args.message is not None:
            raise ClientExit(EXIT_USAGE, "--info takes no message")
        if any(getattr(args, name) not in (None, False) for name in _PROBE_OPTIONS):
            raise ClientExit(EXIT_USAGE, "--info takes no probing option")
        return
    if probing(args, stdin_is_terminal):
        _check_probing(args)
        args.probing = True
        return
    args.probing = False
    for given, name in (
        (args.all_addresses, "--all-addresses"),
        (args.tos is not None, "--tos/--dscp"),
    ):
        if given:
            raise ClientExit(EXIT_USAGE, f"{name} is for probing (add -c N)")
    if args.ipv4 or args.ipv6 or args.bind is not None:
        raise ClientExit(EXIT_USAGE, "-4, -6 and --bind are for probing (add -c 1)")


async def dispatch(
    reactor: Any,
    args: argparse.Namespace,
    stdin: Any,
    stdout: Any,
    stderr: Any,
) -> None:
    """
    Run what the command line asks for.

    @raise ClientExit: for every expected failure.
    """
    if args.info:
        await run_info(reactor, args, stdout)
        return
    if getattr(args, "probing", False):
        await run_probes(reactor, args, stdin, stdout)
        return
    await oneshot.run(reactor, args, stdin, stdout, stderr)


async def run_probes(
    reactor: Any, args: argparse.Namespace, stdin: Any, stdout: Any
) -> None:
    """
    Probe the path; Ctrl-C and SIGTERM end the run with its statistics.

    @raise ClientExit: with the run's exit status, if not 0.
    """
    session = Session(reactor, args, stdin, stdout)

    def interrupted(signum: int, frame: object) -> None:
        reactor.callFromThread(session.interrupt)

    previous: dict[int, Any] = {}

    def install() -> None:
        # Once the reactor runs: it installs its own SIGTERM handler as it
        # starts, and react() calls us before that.
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, interrupted)

    reactor.callWhenRunning(install)
    try:
        status = await session.run()
    except OutputClosed:
        # As ping when its output is gone: stop at once, say nothing more
        # (and let no flush at exit complain).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        raise ClientExit(EXIT_BROKEN_PIPE, "") from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if status:
        raise ClientExit(status, "")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run the command line and exit with its code.

    @param argv: the arguments, C{sys.argv[1:]} by default.
    """
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args, sys.stdin.isatty())
    except ClientExit as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        raise SystemExit(e.code) from None

    async def react_main(reactor: Any) -> None:
        reactor.installNameResolver(EncodableNamesResolver(reactor.nameResolver))
        try:
            await dispatch(
                reactor, args, sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer
            )
        except ClientExit as e:
            if str(e):
                print(f"{PROG}: {e}", file=sys.stderr)
            raise SystemExit(e.code) from None

    task.react(react_main)


if __name__ == "__main__":
    main()
