"""
Tests for L{echotwist.server.shared_socket}.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.internet import unix
from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.shared_socket import SharedSocketEndpoint

CLOSED = "EMFILE recovery: Closed socket from {address}"
RELEASE = "EMFILE encountered; releasing reserved file descriptor."
RESERVE = "Re-reserving EMFILE recovery file descriptor."


class _Listening:
    """
    An endpoint that has already listened: it hands back its port.
    """

    def __init__(self, port: object) -> None:
        self.port = port

    def listen(self, factory: object) -> object:
        return succeed(self.port)


class SharedSocketEndpointTests(SynchronousTestCase):
    """
    Tests for L{SharedSocketEndpoint}.
    """

    def setUp(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        self.path = os.path.join(directory, "echo.sock")
        self.reactor = MemoryReactor()
        self.port = unix.Port(os.fsencode(self.path), Factory(), reactor=self.reactor)
        self.port.startListening()
        self.addCleanup(self.port.socket.close)

    def test_stopClosesOurDescriptorOnly(self) -> None:
        """
        Stopping a shared UNIX port stops accepting on it and closes this
        process's descriptor at once, but leaves its path in place and the
        socket listening for the other processes that hold it (the port
        itself would remove the path as it closed); once they have closed
        theirs too, connections are refused.
        """
        other = os.dup(self.port.socket.fileno())
        endpoint = SharedSocketEndpoint(_Listening(self.port))  # type: ignore[arg-type]
        shared = self.successResultOf(endpoint.listen(Factory()))
        self.assertEqual(shared.getHost(), self.port.getHost())
        self.assertIn(self.port, self.reactor.getReaders())
        shared.stopListening()
        self.assertNotIn(self.port, self.reactor.getReaders())
        self.assertEqual(self.port.socket.fileno(), -1)
        self.assertTrue(os.path.exists(self.path))
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(self.path)
        os.close(other)
        with socket.socket(socket.AF_UNIX) as client:
            self.assertRaises(ConnectionRefusedError, client.connect, self.path)
        shared.stopListening()
        shared.startListening()
        self.assertNotIn(self.port, self.reactor.getReaders())
