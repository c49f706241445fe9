"""
An epoll reactor that dispatches each event without the legacy log context.

L{EPollReactor.doPoll} wraps every read or write event in
L{twisted.python.log.callWithLogger}, which copies a context dictionary and
pushes and pops it so that old-style C{log.msg} calls made from a protocol
are tagged with its C{logPrefix()}.  For an echo server that is a large share
of the work per echo.  This reactor is the same epoll reactor with that wrap
replaced by a plain C{try}: errors escaping an event are still logged (with a
traceback) and the loop carries on with the next event; only the C{system}
tag on legacy log lines is lost (echotwist logs with L{twisted.logger} and
names the peer in its own messages).

C{twistd echo} runs on it unless C{--reactor} names another (see
L{echotwist.server.options.install_default_reactor}); other twistd plugins can choose it
with C{twistd --reactor=echotwist-epoll ...}.
"""

from __future__ import annotations

import errno

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import installReactor
from twisted.logger import Logger


class EchoReactor(EPollReactor):
    """
    L{EPollReactor} without L{twisted.python.log.callWithLogger} per event.
    """

    _log = Logger()

    def doPoll(self, timeout: float | None) -> None:
        """
        Wait for events and dispatch each to its selectable.

        @param timeout: seconds to wait at most, L{None} for no limit.
        """
        try:
            events = self._poller.poll(
                -1 if timeout is None else timeout, len(self._selectables)
            )
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure(
                    "Error handling an event on {selectable}", selectable=selectable
                )

    doIteration = doPoll


def install() -> None:
    """
    Install L{EchoReactor} as the global reactor.
    """
    installReactor(EchoReactor())
