# mypy: disable-error-code="no-untyped-call"
# (trial's assertion methods and patch() have no type hints)
"""
Tests for L{echotwist.reference.services}.
"""

from __future__ import annotations

import io
import socket
import sys

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from echotwist.reference.services import format_table, list_services, main, port_of

FAKE_DATABASE = {(7, "tcp"): "echo", (7, "udp"): "echo", (53, "udp"): "domain"}


class ListServicesTests(SynchronousTestCase):
    """
    Tests for L{list_services}, against a fake services database.
    """

    def setUp(self) -> None:
        self.lookups: list[tuple[int, str]] = []
        self.patch(socket, "getservbyport", self.getservbyport)

    def getservbyport(self, port: int, protocol: str) -> str:
        """
        Look up a port in L{FAKE_DATABASE} and record the lookup.
        """
        self.lookups.append((port, protocol))
        try:
            return FAKE_DATABASE[port, protocol]
        except KeyError:
            raise OSError("port/proto not found") from None

    def test_defaults(self) -> None:
        """
        By default the well-known TCP ports, 0 to 1023, are looked up.
        """
        self.assertEqual(list_services(), {7: "echo"})
        self.assertEqual(self.lookups, [(port, "tcp") for port in range(1024)])

    def test_range_is_inclusive(self) -> None:
        """
        Both bounds are looked up; ports without a service are left out.
        """
        self.assertEqual(list_services(7, 8), {7: "echo"})
        self.assertEqual(self.lookups, [(7, "tcp"), (8, "tcp")])

    def test_udp(self) -> None:
        """
        C{protocol="udp"} looks up UDP services.
        """
        self.assertEqual(list_services(0, 100, "udp"), {7: "echo", 53: "domain"})
        self.assertEqual({protocol for _, protocol in self.lookups}, {"udp"})

    def test_lowest_port(self) -> None:
        """
        Port 0 is a valid bound.
        """
        self.assertEqual(list_services(0, 0), {})
        self.assertEqual(self.lookups, [(0, "tcp")])

    def test_highest_port(self) -> None:
        """
        Port 65535 is a valid bound.
        """
        self.assertEqual(list_services(65535, 65535), {})
        self.assertEqual(self.lookups, [(65535, "tcp")])

    def test_negative(self) -> None:
        """
        -1 is not a port: C{ValueError} naming it.
        """
        error = self.assertRaises(ValueError, list_services, -1)
        self.assertIn("-1", str(error))
        self.assertIn("lower", str(error))

    def test_too_high(self) -> None:
        """
        65536 is not a port: C{ValueError} naming it.
        """
        error = self.assertRaises(ValueError, list_services, 0, 65536)
        self.assertIn("65536", str(error))
        self.assertIn("upper", str(error))

    def test_lower_above_upper(self) -> None:
        """
        A lower bound above the upper one is a C{ValueError} naming both.
        """
        error = self.assertRaises(ValueError, list_services, 100, 99)
        self.assertIn("100", str(error))
        self.assertIn("99", str(error))

    def test_string(self) -> None:
        """
        A string, even of digits, is a C{TypeError} naming it.
        """
        for value in ["abc", "80"]:
            error = self.assertRaises(TypeError, list_services, value)
            self.assertIn(repr(value), str(error))

    def test_bool(self) -> None:
        """
        C{True} is an C{int} to Python, but no port: a C{TypeError}.
        """
        error = self.assertRaises(TypeError, list_services, 0, True)
        self.assertIn("True", str(error))

    def test_float(self) -> None:
        """
        A float, even a whole one, is a C{TypeError}.
        """
        error = self.assertRaises(TypeError, list_services, 80.0)
        self.assertIn("80.0", str(error))

    def test_bad_protocol(self) -> None:
        """
        A protocol other than C{"tcp"} or C{"udp"} is a C{ValueError} naming
        it; so is an upper-case one, which C{getservbyport} would not know.
        """
        for protocol in ["icmp", "TCP", ""]:
            error = self.assertRaises(ValueError, list_services, 0, 10, protocol)
            self.assertIn(repr(protocol), str(error))

    def test_nothing_looked_up_on_bad_arguments(self) -> None:
        """
        Arguments are checked before any lookup.
        """
        self.assertRaises(ValueError, list_services, 0, 10, "icmp")
        self.assertEqual(self.lookups, [])


class SystemDatabaseTests(SynchronousTestCase):
    """
    Tests for L{list_services} against this system's services database.
    """

    def test_echo(self) -> None:
        """
        Port 7 is the echo service, in TCP and UDP.
        """
        try:
            socket.getservbyport(7, "tcp")
        except OSError:
            raise SkipTest("this system has no services database") from None
        self.assertEqual(list_services(7, 7), {7: "echo"})
        self.assertEqual(list_services(7, 7, "udp"), {7: "echo"})


class PortOfTests(SynchronousTestCase):
    """
    Tests for L{port_of}, against a fake services database.
    """

    def setUp(self) -> None:
        self.patch(socket, "getservbyname", getservbyname)

    def test_found(self) -> None:
        """
        A name (or an alias) in the database gives its port for the protocol.
        """
        self.assertEqual(port_of("echo"), 7)
        self.assertEqual(port_of("www"), 80)
        self.assertEqual(port_of("domain", "udp"), 53)

    def test_not_found(self) -> None:
        """
        A name the database does not have for the protocol is a
        L{LookupError} naming it and the protocol.
        """
        error = self.assertRaises(LookupError, port_of, "domain", "tcp")
        self.assertEqual(str(error), "no tcp service named 'domain'")

    def test_not_encodable(self) -> None:
        """
        A name that is not valid in the system's encoding (a command-line
        argument that was not UTF-8) is a L{LookupError} showing its bytes.
        """
        self.patch(socket, "getservbyname", socket.getservbyname)
        error = self.assertRaises(LookupError, port_of, "caf\udce9")
        self.assertEqual(str(error), "no tcp service named 'caf\\xe9'")

    def test_bad_protocol(self) -> None:
        """
        A protocol other than C{"tcp"} or C{"udp"} is a C{ValueError}.
        """
        self.assertRaises(ValueError, port_of, "echo", "icmp")


def getservbyname(name: str, protocol: str) -> int:
    """
    Know the echo service, http with its alias www, and UDP's domain.
    """
    names = {("echo", "tcp"): 7, ("echo", "udp"): 7, ("http", "tcp"): 80}
    names.update({("www", "tcp"): 80, ("domain", "udp"): 53})
    try:
        return names[name, protocol]
    except KeyError:
        raise OSError("service/proto not found") from None


class FormatTableTests(SynchronousTestCase):
    """
    Tests for L{format_table}.
    """

    def test_aligned(self) -> None:
        """
        Ports are right-aligned under the header, sorted, names after two
        spaces.
        """
        table = format_table({65535: "high", 7: "echo"}, "udp")
        self.assertEqual(
            table.splitlines(),
            [" PORT  SERVICE (udp)", "    7  echo", "65535  high"],
        )

    def test_empty(self) -> None:
        """
        With no services, only the header is left.
        """
        self.assertEqual(format_table({}, "tcp"), "PORT  SERVICE (tcp)")


class MainTests(SynchronousTestCase):
    """
    Tests for L{main}, the command line.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)
        self.patch(socket, "getservbyport", self.getservbyport)
        self.patch(socket, "getservbyname", getservbyname)

    def getservbyport(self, port: int, protocol: str) -> str:
        """
        Know the echo and http services.
        """
        if port in (7, 80):
            return {7: "echo", 80: "http"}[port]
        raise OSError("port/proto not found")

    def assertUsageError(self, argv: list[str], message: str) -> None:
        """
        Assert that C{argv} makes L{main} exit with status 2 and C{message}.
        """
        error = self.assertRaises(SystemExit, main, argv)
        self.assertEqual(error.code, 2)
        self.assertIn("usage:", self.stderr.getvalue())
        self.assertIn(message, self.stderr.getvalue())
        self.assertEqual(self.stdout.getvalue(), "")

    def test_table(self) -> None:
        """
        With no arguments, the well-known TCP services are printed.
        """
        self.assertEqual(main([]), 0)
        self.assertEqual(
            self.stdout.getvalue(), "PORT  SERVICE (tcp)\n   7  echo\n  80  http\n"
        )

    def test_one_port(self) -> None:
        """
        One number is that port alone, whatever its range.
        """
        self.assertEqual(main(["7"]), 0)
        self.assertEqual(self.stdout.getvalue(), "PORT  SERVICE (tcp)\n   7  echo\n")

    def test_one_port_without_service(self) -> None:
        """
        One number above the well-known ports, with no service, says so.
        """
        self.assertEqual(main(["9000"]), 0)
        self.assertEqual(
            self.stdout.getvalue(), "No tcp service known for port 9000.\n"
        )

    def test_range(self) -> None:
        """
        Two numbers are a range, both ends included.
        """
        self.assertEqual(main(["7", "80"]), 0)
        self.assertEqual(
            self.stdout.getvalue(), "PORT  SERVICE (tcp)\n   7  echo\n  80  http\n"
        )
        self.stdout.truncate(0)
        self.stdout.seek(0)
        self.assertEqual(main(["8", "79"]), 0)
        self.assertEqual(
            self.stdout.getvalue(), "No tcp services known for ports 8-79.\n"
        )

    def test_name(self) -> None:
        """
        A name is looked up, as C{getent services NAME} does: its port and
        its canonical name are printed.
        """
        self.assertEqual(main(["www"]), 0)
        self.assertEqual(self.stdout.getvalue(), "PORT  SERVICE (tcp)\n  80  http\n")

    def test_unknown_name(self) -> None:
        """
        A name the database does not have is one line on standard error and
        exit status 1.
        """
        self.assertEqual(main(["gopherx"]), 1)
        self.assertEqual(self.stdout.getvalue(), "")
        self.assertEqual(
            self.stderr.getvalue(),
            "echotwist-services: no tcp service named 'gopherx'\n",
        )

    def test_name_in_range(self) -> None:
        """
        A range is two numbers: a name in one is a usage error.
        """
        self.assertUsageError(["7", "echo"], "a range is two port numbers, not 'echo'")

    def test_three_arguments(self) -> None:
        """
        More than two arguments is a usage error.
        """
        self.assertUsageError(["1", "2", "3"], "at most two arguments")

    def test_protocol(self) -> None:
        """
        C{--protocol udp} lists UDP services.
        """
        self.assertEqual(main(["0", "10", "--protocol", "udp"]), 0)
        self.assertIn("SERVICE (udp)", self.stdout.getvalue())

    def test_negative(self) -> None:
        """
        A negative port is a usage error.
        """
        self.assertUsageError(["-1"], "'-1' is not a port number (0-65535)")

    def test_too_high(self) -> None:
        """
        A port above 65535 is a usage error.
        """
        self.assertUsageError(["0", "65536"], "'65536' is not a port number (0-65535)")

    def test_lower_above_upper(self) -> None:
        """
        LOWER above UPPER is a usage error.
        """
        self.assertUsageError(["2000", "1023"], "lower (2000) is greater than upper")

    def test_bad_protocol(self) -> None:
        """
        An unknown protocol is a usage error.
        """
        self.assertUsageError(["--protocol", "icmp"], "'icmp'")
