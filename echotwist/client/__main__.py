"""
C{python -m echotwist.client}: the command line, and only that.

One message (C{python -m echotwist.client "msg"}) is sent and its echo
printed (L{echotwist.client.oneshot}). Exit statuses: L{echotwist.client.exits}.

To add an option: add it in the C{add_*_options} function for its group
(or a new one called from L{build_parser}), check it in L{check_arguments},
and act on it in L{dispatch}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet import task

from echotwist import __version__, ports
from echotwist.client import oneshot
from echotwist.client.exits import (
    EXIT_USAGE,
    ONE_SHOT_STATUSES,
    PROG,
    ClientExit,
)
from echotwist.client.info_command import run_info
from echotwist.client.resolver import EncodableNamesResolver
from echotwist.client.udp import MAX_DATAGRAM

EXAMPLES = """\
examples:
  %(prog)s "hello world"                    print the echo of one message
  %(prog)s -p 7 --host ::1 "msg"            to port 7 over IPv6
  %(prog)s --connect unix:/run/echo.sock "msg"
  %(prog)s --connect tls:localhost:9443:trustRoots=ca/ "msg"
  printf 'any\\0bytes' | %(prog)s -         binary in, the same bytes out
  %(prog)s --udp -p 9007 "one datagram"     one UDP datagram, with retries
"""


def build_parser() -> argparse.ArgumentParser:
    """
    @return: the command line parser.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send MESSAGE to an echo server and print the echo.",
        epilog=f"{EXAMPLES}\nexit statuses: {ONE_SHOT_STATUSES}.",
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
        "-p", "--port", type=_port, default=9000, help="its port (default: 9000)"
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
        default=10.0,
        help="seconds for connecting and the whole echo (default: 10)",
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
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --info, print the server's JSON line as it came",
    )


def _port(text: str) -> int:
    """
    @return: C{text} as a TCP port number.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    port = ports.port_number(text)
    if port is None or not 0 <= port <= ports.MAX_PORT:
        raise argparse.ArgumentTypeError(ports.not_a_port(text))
    if port == 0:
        raise argparse.ArgumentTypeError(ports.connect_zero(text))
    return port


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
        return
    if args.message is None and stdin_is_terminal:
        raise ClientExit(
            EXIT_USAGE, "no MESSAGE: give one, or '-' to read standard input"
        )


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
    await oneshot.run(reactor, args, stdin, stdout, stderr)


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
            print(f"{PROG}: {e}", file=sys.stderr)
            raise SystemExit(e.code) from None

    task.react(react_main)


if __name__ == "__main__":
    main()
