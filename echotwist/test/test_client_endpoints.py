"""
Tests for L{echotwist.client.endpoints} and L{echotwist.client.hints}: what
the user reads when an endpoint is wrong.
"""

from __future__ import annotations

import argparse

from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from echotwist.client.endpoints import make_endpoint, tcp_to
from echotwist.client.errors import (
    EchoClosedEarly,
    EchoMismatch,
    EchoTimeout,
)
from echotwist.client.exits import EXIT_USAGE, ClientExit
from echotwist.client.hints import looks_like_tls, tls_hint


def connect_error(description: str) -> ClientExit:
    """
    @return: the exit C{--connect description} ends in.
    """
    args = argparse.Namespace(connect=description, host="localhost", port=9000)
    try:
        make_endpoint(MemoryReactorClock(), args)
    except ClientExit as e:
        return e
    raise AssertionError(f"{description!r} was accepted")


class DescribeErrorTests(SynchronousTestCase):
    """
    A C{--connect} Twisted refuses is one line in the user's terms: what was
    typed, what is wrong, what would work; never Twisted's internals.
    """

    def test_missingPort(self) -> None:
        """
        C{tcp:localhost} says the port is missing and shows the form, not
        C{TCP4ClientEndpoint.__init__()}.
        """
        error = connect_error("tcp:localhost")
        self.assertEqual(error.code, EXIT_USAGE)
        self.assertEqual(
            str(error),
            "--connect 'tcp:localhost': no port given; use tcp:HOST:PORT "
            "(e.g. tcp:localhost:9000)",
        )

    def test_missingTLS(self) -> None:
        """
        C{tls} without host and port names both, and the TLS form.
        """
        error = str(connect_error("tls"))
        self.assertIn("no host and port given; use tls:HOST:PORT", error)
        self.assertNotIn("_parseClientTLS", error)

    def test_bracketedIPv6(self) -> None:
        """
        C{tcp:[::1]:9000} (the server's C{--port} form) says to escape the
        address's colons, or to use C{--host}, not that no host and port
        were given.
        """
        error = connect_error("tcp:[::1]:9000")
        self.assertEqual(error.code, EXIT_USAGE)
        self.assertEqual(
            str(error),
            "--connect 'tcp:[::1]:9000': escape each colon of an IPv6 address "
            "(e.g. tcp:\\:\\:1:9000), or --host ::1 --port 9000",
        )

    def test_escapedIPv6(self) -> None:
        """
        The escaped form the message shows is accepted.
        """
        args = argparse.Namespace(
            connect="tcp:\\:\\:1:9000", host="localhost", port=9000
        )
        endpoint = make_endpoint(MemoryReactorClock(), args)
        self.assertIsInstance(endpoint, TCP4ClientEndpoint)

    def test_unexpectedParameter(self) -> None:
        """
        An unknown parameter is named as the user typed it.
        """
        error = str(connect_error("tcp:host=x:prot=5"))
        self.assertIn("tcp takes no prot=", error)
        self.assertNotIn("__init__", error)

    def test_notANumber(self) -> None:
        """
        A port that is not a number is named.
        """
        self.assertIn("'abc' is not a number", str(connect_error("tcp:h:abc")))

    def test_unknownKind(self) -> None:
        """
        An unknown kind lists the kinds there are.
        """
        error = str(connect_error("nosuch:x"))
        self.assertIn("unknown kind 'nosuch'", error)
        self.assertIn("unix:PATH", error)


class TCPToTests(SynchronousTestCase):
    """
    L{tcp_to} picks the endpoint for the address's family.
    """

    def test_families(self) -> None:
        """
        IPv4 and IPv6 addresses get their own endpoints.
        """
        reactor = MemoryReactorClock()
        self.assertIsInstance(tcp_to(reactor, "127.0.0.1", 1, 2), TCP4ClientEndpoint)
        self.assertIsInstance(tcp_to(reactor, "::1", 1, 2), TCP6ClientEndpoint)


class TLSHintTests(SynchronousTestCase):
    """
    A plain client's failure that looks like a TLS port says so.
    """

    def test_looksLikeTLS(self) -> None:
        """
        Closed with nothing back, a TLS alert back, or nothing back at all
        look like TLS; a partial echo or another difference does not.
        """
        self.assertTrue(looks_like_tls(EchoClosedEarly(0, 5), 0))
        self.assertFalse(looks_like_tls(EchoClosedEarly(2, 5), 2))
        alert = EchoMismatch.between(b"hello", b"\x15\x03\x01\x00\x02")
        self.assertTrue(looks_like_tls(alert, 0))
        self.assertFalse(looks_like_tls(EchoMismatch.between(b"hello", b"hallo"), 1))
        self.assertTrue(looks_like_tls(EchoTimeout(3), 0))
        self.assertFalse(looks_like_tls(EchoTimeout(3), 1))

    def test_hint(self) -> None:
        """
        The hint names the same host and port over TLS.
        """
        self.assertEqual(
            tls_hint("tcp:example.com:9443"),
            "(the port may speak TLS: try --connect "
            "tls:example.com:9443:trustRoots=DIR)",
        )
