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

from twisted.internet.main import installReactor

from echotwist._twisted_private import EPollReactorWithoutLogContext


class EchoReactor(EPollReactorWithoutLogContext):
    """
    L{EPollReactor} without L{twisted.python.log.callWithLogger} per event:
    the copy of its C{doPoll} is in L{echotwist._twisted_private}, with the
    other private Twisted names echotwist reads.
    """


def install() -> None:
    """
    Install L{EchoReactor} as the global reactor.
    """
    installReactor(EchoReactor())
