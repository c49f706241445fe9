"""
Tests for L{echotwist.server.endpoints}.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.endpoints import (
    check_shareable,
    endpoint_description,
    endpoint_kind,
    port_number,
    shareable,
    takes_backlog,
)


class EndpointKindTests(SynchronousTestCase):
    """
    Tests for L{endpoint_kind}.
    """

    def test_kinds(self) -> None:
        """
        The type is what comes before the first colon, in lower case.
        """
        cases = {
            "tcp:0": "tcp",
            "TCP6:9000:interface=\\:\\:1": "tcp6",
            "unix:/run/echo:backlog=5": "unix",
            "systemd:domain=INET:index=0": "systemd",
            "nosuch": "nosuch",
        }
        self.assertEqual({d: endpoint_kind(d) for d in cases}, cases)


class PortNumberTests(SynchronousTestCase):
    """
    Tests for L{port_number}.
    """

    def test_numbers(self) -> None:
        """
        ASCII digits, with an optional minus sign, are read as a number
        whether or not it is a valid port.
        """
        for text, number in [("0", 0), ("9000", 9000), ("-1", -1), ("70000", 70000)]:
            self.assertEqual(port_number(text), number)

    def test_notNumbers(self) -> None:
        """
        Anything else, including digits C{int} rejects or that are not
        ASCII, is not a port number.
        """
        for text in ["", "-", "tcp:9000", "9k", "\u00b2", "\u0663", "\uff11", "+1"]:
            self.assertIsNone(port_number(text))


class EndpointDescriptionTests(SynchronousTestCase):
    """
    Tests for L{endpoint_description}.
    """

    def test_systemdHasNoBacklog(self) -> None:
        """
        A systemd-activated socket is already listening: no backlog is added.
        """
        self.assertEqual(
            endpoint_description("systemd:domain=INET:index=0", 1024),
            "systemd:domain=INET:index=0",
        )

    def test_backlogAdded(self) -> None:
        """
        The backlog is added to the kinds that take one, unless set.
        """
        self.assertEqual(endpoint_description("9000", 5), "tcp:9000:backlog=5")
        self.assertEqual(
            endpoint_description("ssl:0:privateKey=k.pem", 5),
            "ssl:0:privateKey=k.pem:backlog=5",
        )
        self.assertEqual(endpoint_description("tcp:0:backlog=7", 5), "tcp:0:backlog=7")
        self.assertEqual(endpoint_description("plugin:x", 5), "plugin:x")

    def test_portRange(self) -> None:
        """
        A port number outside 0-65535 is a usage error naming it.
        """
        error = self.assertRaises(UsageError, endpoint_description, "65536", 5)
        self.assertEqual(str(error), "--port 65536: a port number is 0-65535")


class KindPropertiesTests(SynchronousTestCase):
    """
    Tests for L{takes_backlog}, L{shareable} and L{check_shareable}.
    """

    def test_takesBacklog(self) -> None:
        """
        TCP, TCP6, UNIX and SSL ports take a backlog; a systemd socket (already
        listening) and unknown kinds do not.
        """
        cases = {
            "tcp:0": True,
            "TCP6:0": True,
            "unix:/x": True,
            "ssl:0": True,
            "systemd:domain=INET:index=0": False,
            "plugin:x": False,
        }
        self.assertEqual({d: takes_backlog(d) for d in cases}, cases)

    def test_shareable(self) -> None:
        """
        Workers can share TCP, TCP6, UNIX and systemd sockets; not SSL (its
        wrapper is not a plain socket) nor unknown kinds.
        """
        cases = {
            "tcp:0": True,
            "tcp6:0": True,
            "UNIX:/x": True,
            "systemd:domain=INET:index=0": True,
            "ssl:0": False,
            "plugin:x": False,
        }
        self.assertEqual({d: shareable(d) for d in cases}, cases)

    def test_unshareable_port(self) -> None:
        """
        A port whose socket workers can't adopt is a usage error with
        C{--workers} above 1.
        """
        e = self.assertRaises(UsageError, check_shareable, ["tcp:0", "ssl:0"])
        self.assertIn("ssl:0", str(e))
        check_shareable(["tcp:0", "tcp6:0", "unix:/x", "systemd:domain=INET:index=0"])

    def test_unshareableMessage(self) -> None:
        """
        The error names the kinds workers can share.
        """
        e = self.assertRaises(UsageError, check_shareable, ["ssl:0"])
        self.assertEqual(
            str(e),
            "--port 'ssl:0': --workers can share only systemd, tcp, tcp6, unix ports",
        )
