"""
C{--burst N}: open N connections back to back, have each echo one byte,
then hold them all idle: how long until every one was accepted and served,
and how much server memory each idle connection costs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from echotwist.bench.load import Target, new_loop

#: How many connects may be in flight at once (under the server's backlog).
IN_FLIGHT = 512

#: Longest the whole burst may take, in seconds.
BURST_TIMEOUT = 120.0


@dataclass
class BurstResult:
    """
    @ivar connections: how many were asked for.
    @ivar served: how many connected and echoed their byte.
    @ivar seconds: from the first connect to the last echo.
    @ivar server_bytes_per_connection: growth of the server's resident
        memory divided by the connections held, if its pid was given.
    @ivar errors: the first few failures.
    """

    connections: int
    served: int
    seconds: float
    server_bytes_per_connection: float | None
    errors: list[str]


class _OneByte(asyncio.Protocol):
    """
    Send one byte; resolve C{echoed} when it is back.
    """

    def __init__(self, echoed: asyncio.Future[None]) -> None:
        self.echoed = echoed
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(b"x")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.echoed.done():
            self.echoed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.echoed.done():
            self.echoed.set_exception(ConnectionError(f"closed early: {exc}"))


async def _burst(target: Target, count: int, rss: object) -> BurstResult:
    """
    Open C{count} connections to C{target}, each echoing one byte, then
    close them all.

    @param rss: the server's L{psutil.Process}, or L{None}.
    @raise asyncio.TimeoutError: if not all were served within
        L{BURST_TIMEOUT}.
    """
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(IN_FLIGHT)
    transports: list[asyncio.BaseTransport] = []
    errors: list[str] = []

    async def one() -> None:
        echoed: asyncio.Future[None] = loop.create_future()
        async with limit:
            try:
                if target.path:
                    t, _ = await loop.create_unix_connection(
                        lambda: _OneByte(echoed), target.path
                    )
                else:
                    t, _ = await loop.create_connection(
                        lambda: _OneByte(echoed), target.host, target.port
                    )
                transports.append(t)
                await echoed
            except OSError as e:
                errors.append(str(e))

    before = _rss(rss)
    start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(count))), BURST_TIMEOUT
        )
        seconds = time.perf_counter() - start
        served = count - len(errors)
        await asyncio.sleep(0.5)  # let the server settle before reading its memory
        after = _rss(rss)
    finally:
        for t in transports:
            t.close()
        await asyncio.sleep(0.1)
    per = None
    if before is not None and after is not None and served:
        per = (after - before) / served
    return BurstResult(count, served, seconds, per, errors[:5])


def _rss(process: object) -> int | None:
    """
    @return: the resident memory of a L{psutil.Process}, or L{None}.
    """
    if process is None:
        return None
    rss: int = process.memory_info().rss  # type: ignore[attr-defined]
    return rss


def burst(target: Target, count: int, server_pid: int | None) -> BurstResult:
    """
    Run a burst against C{target}.

    @param count: connections to open.
    @param server_pid: the server's process, to read its memory.
    @return: what happened.
    @raise asyncio.TimeoutError: if not all were served within
        L{BURST_TIMEOUT}.
    """
    process = None
    if server_pid is not None:
        import psutil

        process = psutil.Process(server_pid)
    loop = new_loop()
    try:
        return loop.run_until_complete(_burst(target, count, process))
    finally:
        loop.close()
