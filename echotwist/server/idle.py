"""
The idle timeout of every open echo connection, kept by one timer.

A timer per connection (L{twisted.protocols.policies.TimeoutMixin}'s) costs
each connection a L{twisted.internet.base.DelayedCall} (about 400 bytes, a
fifth of an idle connection's memory) and the time to schedule and cancel
it (about a microsecond, a thirtieth of the server's CPU per connection
under a storm); restarting it for every chunk received cost a tenth of the
server's time per echo.  Instead, one L{LoopingCall} looks at every open
connection's byte count L{IDLE_CHECKS} times per timeout, and runs only
while some connection is open: a silent connection is closed between the
timeout and a tenth of it more after its last byte.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

__all__ = ["IDLE_CHECKS", "IdleSweep", "Watched"]

#: How often, per idle timeout, each connection's byte count is looked at.
IDLE_CHECKS = 10


class Watched(Protocol):
    """
    What L{IdleSweep} asks of each connection: an
    L{echotwist.server.protocol.Echo}.
    """

    def check_idle(self, now: float) -> None:
        """
        Look at the byte count, and close the connection if it has been
        silent for the timeout.

        @param now: the clock's time.
        """


class IdleSweep:
    """
    Check every open connection L{IDLE_CHECKS} times per idle timeout.

    @ivar interval: seconds between two checks.
    """

    log = Logger()

    def __init__(
        self, clock: IReactorTime, timeout: float, connections: Collection[Watched]
    ) -> None:
        """
        @param clock: where the checks are scheduled.
        @param timeout: the idle timeout, in seconds (more than 0).
        @param connections: the open connections (the factory's set: it is
            read at each check, never changed here).
        """
        self.interval = timeout / IDLE_CHECKS
        self._clock = clock
        self._connections = connections
        self._loop: LoopingCall | None = None

    @property
    def running(self) -> bool:
        """
        @return: whether the checks are scheduled.
        """
        return self._loop is not None

    def watch(self) -> None:
        """
        A connection was opened: start the checks if they are not running.
        """
        if self._loop is None:
            loop = LoopingCall(self._check)
            loop.clock = self._clock
            loop.start(self.interval, now=False)
            self._loop = loop

    def stop(self) -> None:
        """
        No connection is open: stop the checks until one is.
        """
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def _check(self) -> None:
        """
        Check each open connection; one that fails is logged, and the
        others are still checked.
        """
        now = self._clock.seconds()
        for connection in list(self._connections):
            try:
                connection.check_idle(now)
            except Exception:
                self.log.failure("Idle check of {connection}", connection=connection)
