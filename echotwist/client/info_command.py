"""
The command line's C{--info} run: fetch what the server's info port says
about this connection and print it, readably or (C{--json}) as it came.
"""

from __future__ import annotations

import argparse
import json
from typing import BinaryIO

from twisted.internet.interfaces import IReactorTime

from echotwist.client.endpoints import make_endpoint
from echotwist.client.info import fetch_info, fetch_info_udp, readable
from echotwist.client.oneshot import RUN_FAILURES, failure_exit, target

__all__ = ["run_info"]


async def run_info(
    reactor: IReactorTime, args: argparse.Namespace, stdout: BinaryIO
) -> None:
    """
    Fetch the info port's description of this connection and print it.

    @raise ClientExit: for every expected failure (see L{failure_exit}).
    """
    where = target(args)
    try:
        if args.udp:
            info = await fetch_info_udp(
                reactor, args.host, args.port, args.timeout, args.retries
            )
        else:
            info = await fetch_info(reactor, make_endpoint(reactor, args), args.timeout)
    except RUN_FAILURES as e:
        raise failure_exit(where, e) from None
    text = json.dumps(info, separators=(",", ":")) if args.json else readable(info)
    stdout.write(text.encode() + b"\n")
    stdout.flush()
