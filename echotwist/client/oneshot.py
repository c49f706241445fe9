"""
The command line's one-message run: send one message, print the echo.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, BinaryIO

from twisted.internet.error import CannotListenError, ConnectError, DNSLookupError
from twisted.internet.interfaces import IReactorTime

from echotwist.client.echo import start_echo
from echotwist.client.endpoints import make_endpoint
from echotwist.client.errors import EchoError, EchoTimeout, EchoTLSFailed
from echotwist.client.exits import (
    EXIT_CONNECT,
    EXIT_MISMATCH,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    PROG,
    ClientExit,
)
from echotwist.client.hints import looks_like_tls, tls_hint
from echotwist.client.udp import MAX_DATAGRAM, echo_udp

__all__ = ["RUN_FAILURES", "failure_exit", "read_message", "reason", "run", "target"]

#: The failures that end a run with an exit status and one line (see
#: L{failure_exit}). C{OSError}: L{DNSLookupError}, or a datagram the OS
#: would not send; C{ValueError}: a host name that is not valid.
RUN_FAILURES = (EchoError, ConnectError, CannotListenError, OSError, ValueError)


def read_message(args: argparse.Namespace, stdin: BinaryIO) -> bytes:
    """
    @return: the message as bytes: standard input for C{-} (or no message),
        else the argument as the OS gave it (so non-UTF-8 arguments
        survive).
    """
    if args.message in ("-", None):
        return stdin.read()
    return os.fsencode(args.message)


def target(args: argparse.Namespace) -> str:
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
    Do one echo and write it out: the message and a newline, or exactly the
    bytes echoed for a message read from standard input.

    @raise ClientExit: for every expected failure.
    """
    data = read_message(args, stdin)
    where = target(args)
    try:
        if args.udp:
            reply = await run_udp(reactor, args, data, stderr)
        else:
            reply = await run_tcp(reactor, args, data, stderr)
    except RUN_FAILURES as e:
        raise failure_exit(where, e) from None
    stdout.write(reply if args.message in ("-", None) else reply + b"\n")
    stdout.flush()


async def run_tcp(
    reactor: IReactorTime, args: argparse.Namespace, data: bytes, stderr: BinaryIO
) -> bytes:
    """
    Do one echo over a stream connection, and close it cleanly; with C{-v},
    report its timings on C{stderr}.

    @return: the echo.
    @raise ClientExit: for a C{--connect} Twisted can't parse.
    """
    endpoint = make_endpoint(reactor, args)
    started = reactor.seconds()
    protocol, finished = start_echo(reactor, endpoint, data, args.timeout)
    try:
        reply = await finished
    except EchoError as e:
        connected = protocol.connected_at is not None
        if connected and _plain(args) and looks_like_tls(e, protocol.received):
            raise _hinted(e, args) from None
        raise
    ended = reactor.seconds()
    await protocol.closed
    if args.verbose and protocol.connected_at is not None:
        stderr.write(
            f"{PROG}: connected to {target(args)} in "
            f"{(protocol.connected_at - started) * 1000:.3f} ms; "
            f"{len(reply)} bytes echoed in "
            f"{(ended - protocol.connected_at) * 1000:.3f} ms\n".encode()
        )
    return reply


def _plain(args: argparse.Namespace) -> bool:
    """
    @return: whether the echo went over plain TCP (not TLS, not UNIX).
    """
    kind = (args.connect or "tcp:").split(":", 1)[0]
    return kind == "tcp"


def _hinted(error: EchoError, args: argparse.Namespace) -> ClientExit:
    """
    @return: the exit for C{error}, with the hint that the port may speak
        TLS.
    """
    plain = args.connect or f"tcp:{args.host}:{args.port}"
    code = EXIT_TIMEOUT if isinstance(error, EchoTimeout) else EXIT_MISMATCH
    return ClientExit(code, f"{target(args)}: {error} {tls_hint(plain)}")


async def run_udp(
    reactor: Any,
    args: argparse.Namespace,
    data: bytes,
    stderr: BinaryIO | None = None,
) -> bytes:
    """
    Do one echo over UDP; with C{-v}, report its round-trip time and tries
    on C{stderr}.

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
    started = reactor.seconds()
    reply: bytes = await echo_udp(
        reactor, args.host, args.port, data, args.timeout, args.retries
    )
    if args.verbose and stderr is not None:
        stderr.write(
            f"{PROG}: {len(reply)} bytes echoed by {target(args)} in "
            f"{(reactor.seconds() - started) * 1000:.3f} ms\n".encode()
        )
    return reply


def failure_exit(where: str, error: Exception) -> ClientExit:
    """
    @param where: the server, as L{target} names it.
    @param error: one of L{RUN_FAILURES}.
    @return: the exit for C{error}: a timeout, an echo that went wrong, or
        (a TLS handshake that failed, any other error) no connection.
    """
    if isinstance(error, EchoTimeout):
        return ClientExit(EXIT_TIMEOUT, f"{where}: {error}")
    if isinstance(error, EchoTLSFailed):
        return ClientExit(EXIT_CONNECT, f"cannot connect to {where}: {error}")
    if isinstance(error, EchoError):
        return ClientExit(EXIT_MISMATCH, f"{where}: {error}")
    return ClientExit(EXIT_CONNECT, f"cannot connect to {where}: {reason(error)}")


def reason(error: Exception) -> str:
    """
    @return: why C{error} happened: "name not found", a Twisted connection
        error's reason without its class's description, an OS error's
        C{strerror}, or else the error's text.
    """
    if isinstance(error, DNSLookupError):
        return "name not found"
    if isinstance(error, CannotListenError):
        return reason(error.socketError)
    if isinstance(error, ConnectError):
        return str(error).rsplit(": ", 1)[-1].rstrip(".")
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
