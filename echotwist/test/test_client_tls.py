"""
Tests for the client's report of a failed TLS handshake.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from echotwist.client import EchoClientProtocol, EchoClosedEarly, EchoTLSFailed
from echotwist.client.__main__ import build_parser
from echotwist.client.endpoints import make_endpoint
from echotwist.client.exits import EXIT_USAGE, ClientExit


class EchoTLSFailedTests(SynchronousTestCase):
    """
    A connection lost to an OpenSSL error fails the echo with
    L{EchoTLSFailed}, naming the error; any other loss stays
    L{EchoClosedEarly}.
    """

    def lose(self, reason: Exception) -> Failure:
        """
        @return: the failure of an echo whose connection is lost for
            C{reason} before any byte came back.
        """
        protocol = EchoClientProtocol(b"hello", Clock())
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(reason))
        failure: Failure = self.failureResultOf(protocol.finished)
        return failure

    def test_verifyFailed(self) -> None:
        """
        A certificate verification failure is reported as such.
        """
        error = SSL.Error([("SSL routines", "", "certificate verify failed")])
        failure = self.lose(error)
        failure.trap(EchoTLSFailed)
        self.assertEqual(
            str(failure.value), "TLS handshake failed: certificate verify failed"
        )

    def test_otherLoss(self) -> None:
        """
        A plain lost connection is still L{EchoClosedEarly}.
        """
        self.lose(ConnectionLost()).trap(EchoClosedEarly)


class TrustRootsTests(SynchronousTestCase):
    """
    Tests for a C{--connect tls:...:trustRoots=DIR} Twisted can't load.
    """

    def test_missingDirectory(self) -> None:
        """
        A trust roots directory that does not exist is a usage error naming
        the OS's reason, not an empty one.
        """
        missing = self.mktemp()
        args = build_parser().parse_args(
            ["--connect", f"tls:localhost:1:trustRoots={missing}", "hi"]
        )
        error = self.assertRaises(ClientExit, make_endpoint, Clock(), args)
        self.assertEqual(error.code, EXIT_USAGE)
        self.assertIn("No such file or directory", str(error))
