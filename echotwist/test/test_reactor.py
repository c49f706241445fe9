"""
Tests for L{echotwist.server.reactor}: one poll of an L{EchoReactor} instance that
is never installed nor run.
"""

from __future__ import annotations

import socket

from twisted.internet.abstract import FileDescriptor
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.reactor import EchoReactor


class Reader(FileDescriptor):
    """
    A selectable that reads one end of a socket pair and records what it
    read; or, told to fail, raises from C{doRead} and again from
    C{connectionLost}, so that an error escapes the reactor's own handling.
    """

    def __init__(self, reactor: EchoReactor, sock: socket.socket, fail: bool) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.fail = fail
        self.read: list[bytes] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        if self.fail:
            raise ZeroDivisionError("boom")
        self.read.append(self.sock.recv(100))

    def connectionLost(self, reason: object) -> None:
        """
        Forget the descriptor, as a transport does when it closes.
        """
        self.stopReading()
        if self.fail:
            raise RuntimeError("connectionLost failed too")


class EchoReactorTests(SynchronousTestCase):
    """
    Tests for L{EchoReactor.doPoll}.
    """

    def reader(self, reactor: EchoReactor, fail: bool = False) -> Reader:
        """
        @return: a L{Reader} watched by C{reactor}, with a byte waiting.
        """
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        reader = Reader(reactor, ours, fail)
        reader.startReading()
        theirs.send(b"x")
        return reader

    def test_dispatchesEvents(self) -> None:
        """
        A readable descriptor's C{doRead} is called.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        reader = self.reader(reactor)
        reactor.doPoll(1)
        self.assertEqual(reader.read, [b"x"])

    def test_errorIsLoggedAndOthersStillServed(self) -> None:
        """
        An exception escaping an event's handling is logged with its
        traceback, and the other events of the same poll are still served.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        bad = self.reader(reactor, fail=True)
        good = self.reader(reactor)
        with capturedLogs() as events:
            reactor.doPoll(1)
        self.assertEqual(good.read, [b"x"])
        self.assertNotIn(bad, reactor.getReaders())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn(
            "Error handling an event", [e.get("log_format", "")[:23] for e in events]
        )

    def test_keyboardInterruptPropagates(self) -> None:
        """
        A L{KeyboardInterrupt} escaping an event's handling is not swallowed
        (as with Twisted's own reactors): it ends the poll, so Ctrl-C works.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        reader = self.reader(reactor, fail=True)

        def interrupted(reason: object) -> None:
            reader.stopReading()
            raise KeyboardInterrupt()

        reader.connectionLost = interrupted  # type: ignore[method-assign]
        self.assertRaises(KeyboardInterrupt, reactor.doPoll, 1)
        self.flushLoggedErrors(ZeroDivisionError)
