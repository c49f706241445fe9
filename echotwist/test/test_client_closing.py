"""
Tests for L{echotwist.client.closing} and the echo's clean close.
"""

from __future__ import annotations

from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides

from echotwist.client.closing import CLOSE_GRACE, close_cleanly
from echotwist.client.echo import EchoClientProtocol
from echotwist.test.support import ClosingTransport, HalfClosingTransport


class CloseCleanlyTests(SynchronousTestCase):
    """
    A stream is closed as C{nc -N} closes it, so that the server sees a
    clean end.
    """

    def test_halfCloseThenWait(self) -> None:
        """
        TCP and UNIX shut only their sending side, and wait for the server to
        close; it is aborted only if the server has not after the grace
        period.
        """
        clock = Clock()
        transport = HalfClosingTransport()
        abort = close_cleanly(transport, clock)
        self.assertTrue(transport.half_closed)
        self.assertFalse(transport.disconnecting)
        assert abort is not None
        clock.advance(CLOSE_GRACE)
        self.assertFalse(abort.active())
        self.assertTrue(transport.disconnecting)

    def test_tlsNotifies(self) -> None:
        """
        TLS closes with C{loseConnection} (which sends C{close_notify} and
        waits for the server's), never a bare half-close of the socket
        below.
        """
        clock = Clock()
        transport = HalfClosingTransport()
        alsoProvides(transport, ISSLTransport)
        abort = close_cleanly(transport, clock)
        self.assertFalse(transport.half_closed)
        self.assertTrue(transport.disconnecting)
        self.assertIsNotNone(abort)

    def test_onlyClose(self) -> None:
        """
        A transport that can't half-close is closed at once.
        """
        transport = ClosingTransport()
        self.assertIsNone(close_cleanly(transport, Clock()))
        self.assertTrue(transport.disconnecting)


class EchoClosesCleanlyTests(SynchronousTestCase):
    """
    L{EchoClientProtocol} half-closes after the echo, and L{closed} fires
    when the server has closed too.
    """

    def test_serverCloses(self) -> None:
        """
        The echo fires at once; the connection is half-closed, and
        C{closed} fires (with no timer left) once the server closes.
        """
        clock = Clock()
        protocol = EchoClientProtocol(b"abc", clock)
        transport = HalfClosingTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(b"abc")
        self.assertEqual(self.successResultOf(protocol.finished), b"abc")
        self.assertTrue(transport.half_closed)
        self.assertNoResult(protocol.closed)
        transport.serverClosed()
        self.successResultOf(protocol.closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_serverNeverCloses(self) -> None:
        """
        A server that never closes its side is aborted after the grace
        period, and C{closed} fires all the same.
        """
        clock = Clock()
        protocol = EchoClientProtocol(b"abc", clock)
        transport = HalfClosingTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(b"abc")
        clock.advance(CLOSE_GRACE)
        self.successResultOf(protocol.closed)
