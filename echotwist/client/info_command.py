"""
The command line's C{--info} run: fetch what the server's info port says
about this connection and print it, readably or (C{--json}) as it came.
"""

from __future__ import annotations

import argparse
import json
from typing import BinaryIO

from twisted.internet.error import CannotListenError, ConnectError
from twisted.internet.interfaces import IReactorTime

from echotwist.client.endpoints import make_endpoint
from echotwist.client.errors import EchoError, EchoTimeout
from echotwist.client.exits import (
    EXIT_CONNECT,
    EXIT_MISMATCH,
    EXIT_TIMEOUT,
    ClientExit,
)
from echotwist.client.info import fetch_info, fetch_info_udp, readable
from echotwist.client.oneshot import reason, target

__all__ = ["run_info"]


async def run_info(
    reactor: IReactorTime, args: argparse.Namespace, stdout: BinaryIO
) -> None:
    """
    Fetch the info port's description of this connection and print it.

    @raise ClientExit: for every expected failure.
    """
    where = target(args)
    try:
        if args.udp:
            info = await fetch_info_udp(
                reactor, args.host, args.port, args.timeout, args.retries
            )
        else:
            info = await fetch_info(reactor, make_endpoint(reactor, args), args.timeout)
    except EchoTimeout as e:
        raise ClientExit(EXIT_TIMEOUT, f"{where}: {e}") from None
    except EchoError as e:
        raise ClientExit(EXIT_MISMATCH, f"{where}: {e}") from None
    except (ConnectError, CannotListenError, OSError, ValueError) as e:
        raise ClientExit(
            EXIT_CONNECT, f"cannot connect to {where}: {reason(e)}"
        ) from None
    text = json.dumps(info, separators=(",", ":")) if args.json else readable(info)
    stdout.write(text.encode() + b"\n")
    stdout.flush()
