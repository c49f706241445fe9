"""
Tests for L{echotwist.server.listeners}.
"""

from __future__ import annotations

import socket
from typing import cast

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import fail
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.accept_errors import SummarizedAcceptErrors
from echotwist.server.listeners import NamedEndpoint, describe_listener, listeners
from echotwist.server.shared_socket import SharedSocketEndpoint

CLOSED = "EMFILE recovery: Closed socket from {address}"
RELEASE = "EMFILE encountered; releasing reserved file descriptor."
RESERVE = "Re-reserving EMFILE recovery file descriptor."


class ListenersTests(SynchronousTestCase):
    """
    Tests for L{listeners}.
    """

    def test_summarized(self) -> None:
        """
        Each endpoint gets a service serving the factory, its accept errors
        going to one summary shared by all.
        """
        factory = Factory()
        reactor = MemoryReactor()
        services = listeners(
            [TCP4ServerEndpoint(reactor, 0), TCP4ServerEndpoint(reactor, 1)],
            factory,
            Clock(),
        )
        endpoints = [cast(SummarizedAcceptErrors, s.endpoint) for s in services]
        self.assertEqual([type(e) for e in endpoints], [SummarizedAcceptErrors] * 2)
        self.assertIs(endpoints[0].summary, endpoints[1].summary)
        self.assertEqual([s.factory for s in services], [factory] * 2)

    def test_shared(self) -> None:
        """
        Shared sockets only ever stop accepting, their accept errors summed
        up all the same.
        """
        [service] = listeners(
            [TCP4ServerEndpoint(MemoryReactor(), 0)], Factory(), Clock(), shared=True
        )
        endpoint = service.endpoint
        assert isinstance(endpoint, SharedSocketEndpoint)
        self.assertIsInstance(endpoint.endpoint, SummarizedAcceptErrors)

    def test_failureRaised(self) -> None:
        """
        A service whose endpoint can't listen raises as it starts, so that
        the process can say so and exit, rather than only logging it.
        """

        class Taken:
            def listen(self, factory: object) -> object:
                return fail(CannotListenError("", 9000, OSError("in use")))

        [service] = listeners([Taken()], Factory(), Clock())  # type: ignore[list-item]
        self.assertRaises(CannotListenError, service.privilegedStartService)


class _Port:
    """
    A listening port at C{address}, with a real socket for the IPv6 check.
    """

    def __init__(self, address: object, sock: socket.socket | None = None) -> None:
        self.address = address
        self.socket = sock

    def getHost(self) -> object:
        return self.address


class DescribeListenerTests(SynchronousTestCase):
    """
    Tests for L{describe_listener} and the line L{NamedEndpoint} logs.
    """

    def test_addresses(self) -> None:
        """
        Each kind of address is said in full.
        """
        cases = [
            (IPv4Address("TCP", "127.0.0.1", 9001), "TCP 127.0.0.1:9001"),
            (IPv6Address("TCP", "::1", 9001), "TCP [::1]:9001"),
            (UNIXAddress(b"/run/echo.sock"), "UNIX /run/echo.sock"),
        ]
        for address, said in cases:
            port = cast(IListeningPort, _Port(address))
            self.assertEqual(describe_listener(port), said)

    def test_dualStack(self) -> None:
        """
        An IPv6 socket on C{::} that accepts IPv4 too says so; one that
        accepts IPv6 only does not.
        """
        for v6only, said in [
            (0, "TCP [::]:9001 (IPv6 and IPv4)"),
            (1, "TCP [::]:9001"),
        ]:
            with socket.socket(socket.AF_INET6) as sock:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
                port = _Port(IPv6Address("TCP", "::", 9001), sock)
                self.assertEqual(describe_listener(cast(IListeningPort, port)), said)

    def test_logged(self) -> None:
        """
        Each listener logs the option and the full address, once listening.
        """
        reactor = MemoryReactor()
        endpoints = [
            NamedEndpoint(TCP4ServerEndpoint(reactor, 9001), "port", "9001"),
            NamedEndpoint(
                UNIXServerEndpoint(reactor, "/run/echo.sock"), "port", "unix:/run/e"
            ),
        ]
        with capturedLogs() as events:
            for endpoint in endpoints:
                self.successResultOf(endpoint.listen(Factory()))
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "--port listening on TCP 0.0.0.0:9001",
                "--port listening on UNIX /run/echo.sock",
            ],
        )
