"""
C{python -m echotwist.client "msg"}: send a message to an echo server and
print the echo.

Exit codes: 0 echoed; 1 cannot connect; 2 bad arguments; 3 timeout; 4 the
echo differs or is short.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, NoReturn

from twisted.internet import task
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.error import CannotListenError, ConnectError, DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorTime,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from zope.interface import implementer

from echotwist.client import EchoError, EchoTimeout, EchoTLSFailed, start_echo
from echotwist.client.info import fetch_info, fetch_info_udp, readable
from echotwist.client.udp import MAX_DATAGRAM, echo_udp

EXIT_CONNECT = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_MISMATCH = 4

PROG = "echotwist-client"


class ClientExit(Exception):
    """
    End the command with a one-line message and an exit code.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@implementer(IHostResolution)
class _Unresolvable:
    """
    The finished resolution of a name that has no address.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """
        Nothing to stop: the resolution is over.
        """


@implementer(IHostnameResolver)
class EncodableNamesResolver:
    """
    Resolve names with another resolver, except that a name
    C{socket.getaddrinfo} can't encode (C{a..b}, a label over 63 characters)
    has no address, at once: Twisted's threaded resolver raises
    C{UnicodeError} in its thread for one, logs it as unhandled, and never
    answers.
    """

    def __init__(self, resolver: IHostnameResolver) -> None:
        """
        @param resolver: the resolver for every other name.
        """
        self._resolver = resolver

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        See L{IHostnameResolver.resolveHostName}.
        """
        try:
            hostName.encode("idna")
        except UnicodeError:
            resolution = _Unresolvable(hostName)
            resolutionReceiver.resolutionBegan(resolution)
            resolutionReceiver.resolutionComplete()
            return resolution
        return self._resolver.resolveHostName(
            resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
        )


class _Parser(argparse.ArgumentParser):
    """
    The command line parser: a message, or C{--info}, but not both.
    """

    def parse_args(self, *args: Any, **kwargs: Any) -> Any:
        """
        @see: L{argparse.ArgumentParser.parse_args}; exits with a usage
            error unless exactly one of a message and C{--info} is given.
        """
        parsed = super().parse_args(*args, **kwargs)
        if (parsed.message is None) != parsed.info:
            self.error(
                "give a message, or --info"
                if parsed.message is None
                else "--info takes no message"
            )
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """
    @return: the command line parser.
    """
    parser = _Parser(
        prog=PROG,
        description="Send MESSAGE to an echo server and print the echo.",
        epilog="Exit codes: 0 echoed; 1 cannot connect; 2 bad arguments; "
        "3 timeout; 4 echo differs or is short.",
    )
    parser.add_argument(
        "message",
        nargs="?",
        help="the message (none with --info); '-' reads bytes from standard "
        "input and writes the echo to standard output unchanged (no newline "
        "added)",
    )
    parser.add_argument("--host", default="localhost", help="default: localhost")
    parser.add_argument("--port", type=_port, default=9000, help="default: 9000")
    parser.add_argument(
        "--connect",
        metavar="ENDPOINT",
        help="a Twisted client endpoint (tcp:host=H:port=P, unix:path=P, "
        "tls:H:P:trustRoots=DIR); overrides --host and --port",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        help="seconds for connecting and the whole echo (default: 10)",
    )
    parser.add_argument(
        "--udp",
        action="store_true",
        help="echo over UDP to --host and --port: one datagram (at most "
        f"{MAX_DATAGRAM} bytes), --timeout seconds per try",
    )
    parser.add_argument(
        "--retries",
        type=_count,
        default=3,
        help="with --udp, tries after the first (default: 3)",
    )
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
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report connect and round-trip times on standard error",
    )
    return parser


def _port(text: str) -> int:
    """
    @return: C{text} as a TCP port number.
    @raise argparse.ArgumentTypeError: if it is not one.
    """
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


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


def make_endpoint(reactor: object, args: argparse.Namespace) -> IStreamClientEndpoint:
    """
    @return: the endpoint C{--connect}, or C{--host} and C{--port}, name.
    @raise ClientExit: for an endpoint description Twisted can't parse.
    """
    if args.connect is None:
        return HostnameEndpoint(reactor, args.host, args.port)
    try:
        endpoint: IStreamClientEndpoint = clientFromString(reactor, args.connect)
        return endpoint
    except (ValueError, KeyError, TypeError, ImportError, OSError) as e:
        # UnlistableError (a trustRoots directory that can't be read) says
        # nothing itself: its originalException says why.
        reason = getattr(e, "originalException", e)
        raise ClientExit(EXIT_USAGE, f"--connect {args.connect!r}: {reason}") from None


def read_message(args: argparse.Namespace, stdin: BinaryIO) -> bytes:
    """
    @return: the message as bytes: standard input for C{-}, else the argument
        as the OS gave it (so non-UTF-8 arguments survive).
    """
    if args.message == "-":
        return stdin.read()
    return os.fsencode(args.message)


def _target(args: argparse.Namespace) -> str:
    """
    @return: the server, as error messages name it.
    """
    if args.udp:
        return f"udp:{args.host}:{args.port}"
    return args.connect or f"{args.host}:{args.port}"


async def run(
    reactor: IReactorTime,
    args: argparse.Namespace,
    stdin: BinaryIO,
    stdout: BinaryIO,
    stderr: BinaryIO,
) -> None:
    """
    Do one echo and write it out.

    @raise ClientExit: for every expected failure.
    """
    if args.info:
        await run_info(reactor, args, stdout)
        return
    data = read_message(args, stdin)
    target = _target(args)
    try:
        if args.udp:
            reply = await run_udp(reactor, args, data)
        else:
            reply = await run_tcp(reactor, args, data, stderr)
    except EchoTimeout as e:
        raise ClientExit(EXIT_TIMEOUT, f"{target}: {e}") from None
    except EchoTLSFailed as e:
        raise ClientExit(EXIT_CONNECT, f"cannot connect to {target}: {e}") from None
    except EchoError as e:
        raise ClientExit(EXIT_MISMATCH, f"{target}: {e}") from None
    except (ConnectError, CannotListenError, OSError, ValueError) as e:
        # OSError: DNSLookupError, or a datagram the OS would not send;
        # ValueError: a host name that is not valid.
        raise ClientExit(
            EXIT_CONNECT, f"cannot connect to {target}: {_reason(e)}"
        ) from None
    stdout.write(reply if args.message == "-" else reply + b"\n")
    stdout.flush()


async def run_info(
    reactor: IReactorTime, args: argparse.Namespace, stdout: BinaryIO
) -> None:
    """
    Fetch the info port's description of this connection and print it,
    readably or (C{--json}) as it came.

    @raise ClientExit: for every expected failure.
    """
    target = _target(args)
    try:
        if args.udp:
            info = await fetch_info_udp(
                reactor, args.host, args.port, args.timeout, args.retries
            )
        else:
            info = await fetch_info(reactor, make_endpoint(reactor, args), args.timeout)
    except EchoTimeout as e:
        raise ClientExit(EXIT_TIMEOUT, f"{target}: {e}") from None
    except EchoError as e:
        raise ClientExit(EXIT_MISMATCH, f"{target}: {e}") from None
    except (ConnectError, CannotListenError, OSError, ValueError) as e:
        raise ClientExit(
            EXIT_CONNECT, f"cannot connect to {target}: {_reason(e)}"
        ) from None
    text = json.dumps(info, separators=(",", ":")) if args.json else readable(info)
    stdout.write(text.encode() + b"\n")
    stdout.flush()


async def run_tcp(
    reactor: IReactorTime, args: argparse.Namespace, data: bytes, stderr: BinaryIO
) -> bytes:
    """
    Do one echo over a stream connection; with C{-v}, report its timings on
    C{stderr}.

    @return: the echo.
    @raise ClientExit: for a C{--connect} Twisted can't parse.
    """
    endpoint = make_endpoint(reactor, args)
    started = reactor.seconds()
    protocol, finished = start_echo(reactor, endpoint, data, args.timeout)
    reply = await finished
    ended = reactor.seconds()
    if args.verbose and protocol.connected_at is not None:
        stderr.write(
            f"{PROG}: connected to {_target(args)} in "
            f"{(protocol.connected_at - started) * 1000:.3f} ms; "
            f"{len(reply)} bytes echoed in "
            f"{(ended - protocol.connected_at) * 1000:.3f} ms\n".encode()
        )
    return reply


async def run_udp(reactor: object, args: argparse.Namespace, data: bytes) -> bytes:
    """
    Do one echo over UDP.

    @return: the echo.
    @raise ClientExit: for options UDP can't take.
    """
    if args.connect is not None:
        raise ClientExit(EXIT_USAGE, "--udp takes --host and --port, not --connect")
    if len(data) > MAX_DATAGRAM:
        raise ClientExit(
            EXIT_USAGE,
            f"--udp: {len(data)} bytes is over one datagram ({MAX_DATAGRAM})",
        )
    return await echo_udp(
        reactor, args.host, args.port, data, args.timeout, args.retries
    )


def _reason(error: Exception) -> str:
    """
    @return: why C{error} happened: "name not found", a Twisted connection
        error's reason without its class's description, an OS error's
        C{strerror}, or else the error's text.
    """
    if isinstance(error, DNSLookupError):
        return "name not found"
    if isinstance(error, CannotListenError):
        return _reason(error.socketError)
    if isinstance(error, ConnectError):
        return str(error).rsplit(": ", 1)[-1].rstrip(".")
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run the command line and exit with its code.

    @param argv: the arguments, C{sys.argv[1:]} by default.
    """
    args = build_parser().parse_args(argv)

    async def react_main(reactor: Any) -> None:
        reactor.installNameResolver(EncodableNamesResolver(reactor.nameResolver))
        try:
            await run(
                reactor, args, sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer
            )
        except ClientExit as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            raise SystemExit(e.code) from None

    task.react(react_main)


if __name__ == "__main__":
    main()
