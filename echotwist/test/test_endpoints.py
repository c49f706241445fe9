"""
Tests for L{echotwist.server.endpoints}.
"""

from __future__ import annotations

import errno
import socket
from types import SimpleNamespace

from twisted.internet.error import CannotListenError
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server import endpoints as endpoints_module
from echotwist.server.endpoints import (
    check_endpoint,
    check_shareable,
    dual_stack,
    endpoint_description,
    endpoint_kind,
    failure_reason,
    host_port,
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
        self.assertEqual(endpoint_description("9000", 5, False), "tcp:9000:backlog=5")
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
        self.assertEqual(str(error), "--port '65536' is not a port number (0-65535)")


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


class DualStackTests(SynchronousTestCase):
    """
    Tests for the default listener: a bare port number is TCP on every IPv6
    and IPv4 address where the host can (L{dual_stack}), IPv4 otherwise.
    """

    def test_barePortDualStack(self) -> None:
        """
        With a dual-stack socket, a port number is a C{tcp6} port on C{::}
        (Twisted's default interface for C{tcp6}); without, a C{tcp} one.
        """
        self.assertEqual(endpoint_description("9000", 5, True), "tcp6:9000:backlog=5")
        self.assertEqual(endpoint_description("0", 5, False), "tcp:0:backlog=5")

    def test_asksTheHost(self) -> None:
        """
        Unless told, L{endpoint_description} asks L{dual_stack}.
        """
        self.patch(endpoints_module, "dual_stack", lambda: False)
        self.assertEqual(endpoint_description("9000", 5), "tcp:9000:backlog=5")
        self.patch(endpoints_module, "dual_stack", lambda: True)
        self.assertEqual(endpoint_description("9000", 5), "tcp6:9000:backlog=5")

    def test_noIPv6(self) -> None:
        """
        A host that can't make an IPv6 socket, or whose IPv6 sockets are
        IPv6-only, has no dual stack.
        """

        def no_ipv6(*args: object) -> socket.socket:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported")

        fake = SimpleNamespace(**vars(socket))
        fake.socket = no_ipv6
        self.patch(endpoints_module, "socket", fake)
        self.assertFalse(dual_stack())

        class V6Only(socket.socket):
            def getsockopt(self, *args: object) -> int:  # type: ignore[override]
                return 1

        fake.socket = V6Only
        self.assertFalse(dual_stack())


class HostPortTests(SynchronousTestCase):
    """
    Tests for C{--port HOST:PORT}.
    """

    def test_interfaces(self) -> None:
        """
        An IPv4 address or a bracketed IPv6 one, a colon and a port number
        are TCP on that interface, the IPv6 address escaped for Twisted.
        """
        cases = {
            "127.0.0.1:9000": "tcp:9000:interface=127.0.0.1",
            "[::1]:9000": "tcp6:9000:interface=\\:\\:1",
            "[::]:0": "tcp6:0:interface=\\:\\:",
            "0.0.0.0:7": "tcp:7:interface=0.0.0.0",
        }
        self.assertEqual({v: host_port(v) for v in cases}, cases)
        self.assertEqual(
            endpoint_description("127.0.0.1:9000", 5),
            "tcp:9000:interface=127.0.0.1:backlog=5",
        )

    def test_endpointsLeftAlone(self) -> None:
        """
        Endpoint descriptions are not C{HOST:PORT}.
        """
        for value in ["tcp:9000", "unix:9000", "tcp6:9000", "9000", "ssl:0:x=y"]:
            self.assertIsNone(host_port(value))

    def test_badHostPort(self) -> None:
        """
        An IP address with no port number after it, or an IPv6 address out
        of brackets, is a usage error saying what would work.
        """
        error = self.assertRaises(UsageError, host_port, "127.0.0.1:x")
        self.assertEqual(
            str(error),
            "--port '127.0.0.1:x': 'x' is not a port number (0-65535); expected "
            "HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000",
        )
        self.assertRaises(UsageError, host_port, "[::1]:65536")
        error = self.assertRaises(UsageError, host_port, "::1:9000")
        self.assertIn("in brackets, e.g. [::1]:9000", str(error))


class CheckEndpointTests(SynchronousTestCase):
    """
    Tests for L{check_endpoint}'s messages.
    """

    def test_typedNotFull(self) -> None:
        """
        The message names what was typed, not the C{backlog=} echotwist
        added, and says what a port number is.
        """
        error = self.assertRaises(
            UsageError,
            check_endpoint,
            "tcp:abc:backlog=1024",
            typed="tcp:abc",
        )
        self.assertEqual(
            str(error),
            "--port 'tcp:abc': 'abc' is not a port number (0-65535), e.g. tcp:9000",
        )
        self.assertNotIn("backlog", str(error))

    def test_unknownType(self) -> None:
        """
        An unknown endpoint type lists the forms that work.
        """
        error = self.assertRaises(
            UsageError, check_endpoint, "localhost:9000", typed="localhost:9000"
        )
        self.assertIn("Unknown endpoint type", str(error))
        self.assertIn("HOST:PORT (127.0.0.1:9000, [::1]:9000)", str(error))


class FailureReasonTests(SynchronousTestCase):
    """
    Tests for what L{failure_reason} says of a listener that can't listen:
    what is wrong, and what would work.
    """

    def test_inUse(self) -> None:
        """
        A port in use says what to do.
        """
        error = CannotListenError("", 9100, OSError(errno.EADDRINUSE, "in use"))
        self.assertEqual(
            failure_reason(error),
            "in use: another program listens there; stop it, or choose another "
            "port (0 picks a free one)",
        )

    def test_unixPathTooLong(self) -> None:
        """
        A UNIX path too long for a socket is said in words, not as bytes.
        """
        path = "/tmp/" + "x" * 120
        error = CannotListenError(None, path.encode(), OSError("AF_UNIX path too long"))
        message = failure_reason(error)
        self.assertEqual(
            message,
            "the path is 125 bytes long, and a UNIX socket path can be at most "
            "107: choose a shorter one, e.g. unix:/tmp/echo.sock",
        )
        self.assertNotIn("b'", message)

    def test_unixPathInUse(self) -> None:
        """
        A UNIX path some other program made a socket at names the file and
        says what would work, not to choose another port.
        """
        error = CannotListenError(
            None, b"/tmp/echo.sock", OSError(errno.EADDRINUSE, "Address in use")
        )
        self.assertEqual(
            failure_reason(error),
            "Address in use: /tmp/echo.sock is there already (another program's "
            "socket, or one it left); stop that program or remove the file, or "
            "choose another path",
        )

    def test_unixPathLocked(self) -> None:
        """
        A UNIX path another Twisted server listens on (Twisted's "Cannot
        acquire lock") says so, and names its lock file.
        """
        error = CannotListenError(None, b"/tmp/echo.sock", "Cannot acquire lock")
        self.assertEqual(
            failure_reason(error),
            "another server listens on /tmp/echo.sock (it holds "
            "/tmp/echo.sock.lock); stop it, or choose another path",
        )

    def test_permissionAndAddress(self) -> None:
        """
        A privileged port and an address the host lacks say what would work.
        """
        denied = CannotListenError("", 80, OSError(errno.EACCES, "Permission denied"))
        self.assertIn(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE",
            failure_reason(denied),
        )
        missing = CannotListenError(
            "192.0.2.1", 80, OSError(errno.EADDRNOTAVAIL, "Cannot assign")
        )
        self.assertEqual(
            failure_reason(missing),
            "Cannot assign: not an address of this machine; choose one of its "
            "addresses, or leave the interface out to listen on all",
        )

    def test_fileNamed(self) -> None:
        """
        An error about a file names the file, with no advice about ports.
        """
        error = OSError(errno.EACCES, "Permission denied", "/ro")
        self.assertEqual(failure_reason(error), "Permission denied: /ro")
