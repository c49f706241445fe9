# mypy: disable-error-code="no-untyped-call"
# (trial's assertion methods and patch() have no type hints)
"""
Tests for L{echotwist.reference.blocking}'s outer loop, over one real
loopback connection.
"""

from __future__ import annotations

import io
import socket
import sys

from twisted.trial.unittest import SynchronousTestCase

from echotwist.reference import blocking
from echotwist.reference.startup import ServerOptions


class ServeTests(SynchronousTestCase):
    """
    Tests for L{blocking.serve}.
    """

    def test_noDelay(self) -> None:
        """
        An accepted connection has Nagle's algorithm turned off
        (C{TCP_NODELAY}) before it is echoed to: the last small piece of an
        echo must not wait for the client's delayed acknowledgement.
        """
        self.patch(sys, "stdout", io.StringIO())
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        seen = []

        def echo(connection: socket.socket, address: object, options: object) -> None:
            seen.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            raise KeyboardInterrupt()  # out of serve()'s endless loop

        self.patch(blocking, "echo", echo)
        options = ServerOptions(host="127.0.0.1", port=0, buffer_size=1024, quiet=True)
        self.assertRaises(KeyboardInterrupt, blocking.serve, listener, options)
        self.assertEqual(len(seen), 1)
        self.assertTrue(seen[0])
