# mypy: disable-error-code="no-untyped-call"
# (trial's assertion methods and patch() have no type hints)
"""
Tests for L{echotwist.reference.startup}: the reference servers' command line.
"""

from __future__ import annotations

import argparse
import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from echotwist.reference.startup import (
    ServerOptions,
    buffer_size,
    host_and_port,
    parse_options,
    port_number,
)


class PortNumberTests(SynchronousTestCase):
    """
    Tests for L{port_number}.
    """

    def test_bounds(self) -> None:
        """
        0 and 65535 are port numbers.
        """
        self.assertEqual(port_number("0"), 0)
        self.assertEqual(port_number("65535"), 65535)

    def test_out_of_range(self) -> None:
        """
        -1 and 65536 are refused, naming the number.
        """
        for text in ["-1", "65536"]:
            error = self.assertRaises(argparse.ArgumentTypeError, port_number, text)
            self.assertIn(text, str(error))

    def test_not_a_number(self) -> None:
        """
        A service name is not a port number.
        """
        error = self.assertRaises(argparse.ArgumentTypeError, port_number, "http")
        self.assertIn("'http'", str(error))


class BufferSizeTests(SynchronousTestCase):
    """
    Tests for L{buffer_size}.
    """

    def test_valid(self) -> None:
        """
        1, 16 and 1024 are buffer sizes.
        """
        self.assertEqual([buffer_size(t) for t in ["1", "16", "1024"]], [1, 16, 1024])

    def test_invalid(self) -> None:
        """
        0, a negative size, a huge size and a word are refused.
        """
        for text in ["0", "-16", str(2**40), "big"]:
            self.assertRaises(argparse.ArgumentTypeError, buffer_size, text)


class ParseOptionsTests(SynchronousTestCase):
    """
    Tests for L{parse_options}.
    """

    def test_defaults(self) -> None:
        """
        By default: 127.0.0.1, the course's port 10000, the lab's 1K buffer,
        a line for each message.
        """
        self.assertEqual(
            parse_options("server", "An echo server.", []),
            ServerOptions(host="127.0.0.1", port=10000, buffer_size=1024, quiet=False),
        )

    def test_all_options(self) -> None:
        """
        Every option is read.
        """
        argv = ["--host", "::1", "--port", "0", "--buffer-size", "16", "--quiet"]
        self.assertEqual(
            parse_options("server", "An echo server.", argv),
            ServerOptions(host="::1", port=0, buffer_size=16, quiet=True),
        )

    def test_bad_option(self) -> None:
        """
        A bad option is a usage error: exit status 2, the program's name and
        the problem on stderr.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        error = self.assertRaises(
            SystemExit, parse_options, "server", "An echo server.", ["--port", "x"]
        )
        self.assertEqual(error.code, 2)
        self.assertIn("server: error: argument --port: 'x'", stderr.getvalue())


class HostAndPortTests(SynchronousTestCase):
    """
    Tests for L{host_and_port}.
    """

    def test_ipv4(self) -> None:
        """
        IPv4 addresses and names are followed by a colon and the port.
        """
        self.assertEqual(host_and_port("127.0.0.1", 10000), "127.0.0.1:10000")
        self.assertEqual(host_and_port("localhost", 7), "localhost:7")

    def test_ipv6(self) -> None:
        """
        IPv6 addresses go in brackets, so their colons are not confused with
        the port's.
        """
        self.assertEqual(host_and_port("::1", 10000), "[::1]:10000")
