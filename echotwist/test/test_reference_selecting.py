# mypy: disable-error-code="no-untyped-call"
# (trial's assertion methods and patch() have no type hints)
"""
Tests for L{echotwist.reference.selecting}'s per-client logic, driven by hand
over a socket pair (no ports, no C{select} loop).
"""

from __future__ import annotations

import io
import select
import socket
import sys

from twisted.trial.unittest import SynchronousTestCase

from echotwist.reference.selecting import MAX_PENDING, Client, SelectServer
from echotwist.reference.startup import ServerOptions


class SelectServerTests(SynchronousTestCase):
    """
    Tests for L{SelectServer} with one client: the server holds C{ours}, the
    client is C{theirs}.
    """

    def setUp(self) -> None:
        self.log = io.StringIO()
        self.patch(sys, "stdout", self.log)
        listener = socket.socket()
        self.addCleanup(listener.close)
        options = ServerOptions(host="127.0.0.1", port=0, buffer_size=1024, quiet=True)
        self.server = SelectServer(listener, options)
        self.addCleanup(self.server.close)
        self.ours, self.theirs = socket.socketpair()
        self.addCleanup(self.theirs.close)
        self.ours.setblocking(False)
        self.theirs.settimeout(10)
        self.server.clients[self.ours] = Client(address="peer")

    def fill_pipe(self) -> int:
        """
        Send the client bytes it does not read, until no more fit.

        @return: How many bytes were sent.
        """
        sent = 0
        while True:
            try:
                sent += self.ours.send(b"\0" * 65536)
            except BlockingIOError:
                return sent

    def test_echo(self) -> None:
        """
        What the client sends is sent back at once, when there is room.
        """
        self.theirs.sendall(b"hello")
        self.server.receive(self.ours)
        self.assertEqual(self.theirs.recv(5), b"hello")
        self.assertEqual(self.server.clients[self.ours].outgoing, b"")

    def test_slow_reader_is_buffered(self) -> None:
        """
        When the client does not read, its echo waits in its outgoing buffer
        and the socket is watched for writing.
        """
        self.fill_pipe()
        self.theirs.sendall(b"hello")
        self.server.receive(self.ours)
        self.assertEqual(self.server.clients[self.ours].outgoing, b"hello")
        readers, writers = self.server.sockets_to_watch()
        self.assertIn(self.ours, readers)
        self.assertEqual(writers, [self.ours])

    def test_stop_reading_when_far_behind(self) -> None:
        """
        Once L{MAX_PENDING} bytes wait for a client, the server stops
        watching it for reading (but still for writing).
        """
        self.fill_pipe()
        self.server.clients[self.ours].outgoing += b"x" * MAX_PENDING
        readers, writers = self.server.sockets_to_watch()
        self.assertEqual(readers, [self.server.listener])
        self.assertEqual(writers, [self.ours])

    def test_half_close_flushes_before_closing(self) -> None:
        """
        When the client closes its sending side while its echo still waits,
        the server stops reading but keeps the connection until the echo is
        sent, then closes it.
        """
        filler = self.fill_pipe()
        self.theirs.sendall(b"hello")
        self.theirs.shutdown(socket.SHUT_WR)
        self.server.receive(self.ours)  # "hello", which cannot be sent yet
        self.server.receive(self.ours)  # the end of the client's data
        self.assertIn(self.ours, self.server.clients)
        self.assertFalse(self.server.clients[self.ours].reading)
        readers, _ = self.server.sockets_to_watch()
        self.assertNotIn(self.ours, readers)

        received = bytearray()
        while self.ours in self.server.clients:
            received += self.theirs.recv(65536)
            self.server.send(self.ours)
        while chunk := self.theirs.recv(65536):
            received += chunk
        self.assertEqual(bytes(received), b"\0" * filler + b"hello")
        self.assertIn("Closed by peer", self.log.getvalue())

    def test_end_of_data_closes_at_once_when_nothing_waits(self) -> None:
        """
        When the client closes its sending side and nothing waits for it, the
        server closes the connection.
        """
        self.theirs.shutdown(socket.SHUT_WR)
        self.server.receive(self.ours)
        self.assertEqual(self.server.clients, {})
        self.assertEqual(self.theirs.recv(1), b"")

    def test_reset_costs_only_that_client(self) -> None:
        """
        A client whose connection fails is dropped, with a log line.
        """
        self.fill_pipe()
        self.server.clients[self.ours].outgoing += b"hello"
        self.theirs.close()
        self.server.send(self.ours)
        self.assertEqual(self.server.clients, {})
        self.assertIn("Lost peer: ", self.log.getvalue())


class AcceptTests(SynchronousTestCase):
    """
    Tests for L{SelectServer.accept_clients}, over a real TCP connection.
    """

    def test_no_delay(self) -> None:
        """
        Accepted connections have Nagle's algorithm turned off
        (C{TCP_NODELAY}): the last small piece of an echo must not wait for
        the client's delayed acknowledgement.
        """
        self.patch(sys, "stdout", io.StringIO())
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        options = ServerOptions(host="127.0.0.1", port=0, buffer_size=1024, quiet=True)
        server = SelectServer(listener, options)
        self.addCleanup(server.close)
        client = socket.create_connection(listener.getsockname(), timeout=10)
        self.addCleanup(client.close)
        select.select([listener], [], [], 10)
        server.accept_clients()
        [connection] = server.clients
        self.assertTrue(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
