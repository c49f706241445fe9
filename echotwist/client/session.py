"""
The command line's probing run (C{-c}, C{-i}, C{--json}, ...): build the
path for each address, run a L{Prober} over it, write each result and the
summary, and come to an exit status.

Ctrl-C or SIGTERM (L{Session.interrupt}) ends the run and still writes the
summary, as ping does. If standard output is closed under it (C{| head}),
the run stops quietly at once (L{OutputClosed}).
"""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet.error import DNSLookupError

from echotwist.client.endpoints import make_endpoint, tcp_to
from echotwist.client.exits import (
    EXIT_ALL_LOST,
    EXIT_CONNECT,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_SOME_LOST,
    ClientExit,
)
from echotwist.client.marking import tos_marker
from echotwist.client.output.format import format_result, format_start, format_summary
from echotwist.client.output.jsonl import result_json, summary_json
from echotwist.client.payload import payloads
from echotwist.client.probe import ProbePath, Prober
from echotwist.client.resolver import resolve_addresses
from echotwist.client.result import ProbeResult
from echotwist.client.stream_probe import StreamPath
from echotwist.client.udp_probe import HEADER, UDPPath

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_SIZE",
    "EXIT_BROKEN_PIPE",
    "OutputClosed",
    "Session",
    "combine",
]

#: Bytes per probe unless C{--size} says.
DEFAULT_SIZE = 64
#: Seconds between probes unless C{--interval} says.
DEFAULT_INTERVAL = 1.0
#: Seconds each probe gets unless C{--timeout} says.
DEFAULT_PROBE_TIMEOUT = 2.0
#: The exit status when standard output was closed: a shell's status for a
#: process killed by SIGPIPE, as ping is.
EXIT_BROKEN_PIPE = 128 + 13


class OutputClosed(Exception):
    """
    Standard output was closed (C{EPIPE}): nothing more can be said.
    """


def combine(statuses: list[int]) -> int:
    """
    @param statuses: the exit status of each address's run.
    @return: the command's: corrupted if any was, all lost if all were,
        some lost if any probe was lost, else 0.
    """
    if EXIT_MISMATCH in statuses:
        return EXIT_MISMATCH
    if statuses and all(s == EXIT_ALL_LOST for s in statuses):
        return EXIT_ALL_LOST
    if any(s != EXIT_OK for s in statuses):
        return EXIT_SOME_LOST
    return EXIT_OK


def format_address(host: str, port: int) -> str:
    """
    @return: C{host:port}, IPv6 addresses in brackets.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Session:
    """
    One probing run of the command line, over one address or each in turn.
    """

    def __init__(
        self, reactor: Any, args: argparse.Namespace, stdin: BinaryIO, stdout: BinaryIO
    ) -> None:
        """
        @param reactor: the reactor.
        @param args: the checked command line.
        @param stdin: where C{-} reads the message.
        @param stdout: where results go.
        """
        self._reactor = reactor
        self._args = args
        self._stdin = stdin
        self._stdout = stdout
        self._prober: Prober | None = None
        self._interrupted = False
        self._closed = False

    def interrupt(self) -> None:
        """
        End the run now (Ctrl-C, SIGTERM): the summary is still written.
        """
        self._interrupted = True
        if self._prober is not None:
            self._prober.stop()

    def _write(self, line: str) -> None:
        """
        Write a line, or stop the run if standard output is closed.
        """
        if self._closed:
            return
        try:
            self._stdout.write(line.encode() + b"\n")
            self._stdout.flush()
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise
            self._closed = True
            self.interrupt()

    def payload(self) -> tuple[Callable[[int], bytes], int, str]:
        """
        @return: each probe's bytes by sequence number, their size, and
            what they are (for the opening line).
        """
        args = self._args
        if args.message is not None:
            message = (
                self._stdin.read() if args.message == "-" else os.fsencode(args.message)
            )
            if args.udp:
                message = bytes(HEADER.size) + message
            return (lambda seq: message), len(message), "the message"
        size = args.size if args.size is not None else DEFAULT_SIZE
        pattern = args.pattern or "random"
        return payloads(pattern, size), size, pattern

    async def paths(self) -> list[tuple[ProbePath, str]]:
        """
        @return: each path to probe and its kind, in order.
        @raise ClientExit: if the host has no address.
        """
        args = self._args
        reactor = self._reactor
        timeout = args.timeout
        mark = tos_marker(args.tos) if args.tos is not None else None
        if args.connect is not None:
            endpoint = make_endpoint(reactor, args)
            kind = args.connect.split(":", 1)[0]
            plain = args.connect if kind == "tcp" else None
            path = StreamPath(
                reactor, endpoint, args.connect, timeout, args.reconnect, mark, plain
            )
            return [(path, kind + (", reconnecting" if args.reconnect else ""))]
        family = 4 if args.ipv4 else 6 if args.ipv6 else None
        try:
            addresses = await resolve_addresses(reactor.nameResolver, args.host, family)
        except DNSLookupError:
            version = f" IPv{family}" if family else ""
            raise ClientExit(
                EXIT_CONNECT, f"cannot resolve {args.host}: no{version} address found"
            ) from None
        if not args.all_addresses:
            addresses = addresses[:1]
        found: list[tuple[ProbePath, str]] = []
        for address in addresses:
            if args.udp:
                udp = UDPPath(
                    reactor, address, args.port, timeout, args.spread, args.bind, mark
                )
                found.append(
                    (udp, "udp" + (", a new source port each" if args.spread else ""))
                )
            else:
                endpoint = tcp_to(reactor, address, args.port, timeout, args.bind)
                stream = StreamPath(
                    reactor,
                    endpoint,
                    format_address(address, args.port),
                    timeout,
                    args.reconnect,
                    mark,
                    f"tcp:{args.host}:{args.port}",
                )
                found.append(
                    (stream, "tcp" + (", reconnecting" if args.reconnect else ""))
                )
        return found

    async def run(self) -> int:
        """
        Probe each path in turn.

        @return: the exit status.
        @raise OutputClosed: if standard output was closed.
        @raise ClientExit: if the run can't start.
        """
        args = self._args
        payload, size, what = self.payload()
        statuses = []
        for path, kind in await self.paths():
            if self._interrupted:
                break
            if not args.json:
                self._write(format_start(path.address, kind, size, what, args.interval))
            if self._closed:
                break
            self._prober = Prober(
                self._reactor,
                path,
                payload,
                count=args.count,
                interval=args.interval,
                deadline=args.deadline,
                on_result=self._result,
            )
            summary = await self._prober.run()
            if self._closed:
                raise OutputClosed()
            if args.json:
                self._write(summary_json(summary, path.address))
            else:
                for line in format_summary(path.address, summary):
                    self._write(line)
            statuses.append(summary.exit_status)
        if self._closed:
            raise OutputClosed()
        return combine(statuses)

    def _result(self, result: ProbeResult) -> None:
        """
        Write one result's line.
        """
        if self._args.json:
            self._write(result_json(result))
        else:
            self._write(format_result(result, self._args.timestamps))
