"""
Tests for the options and wiring L{echotwist.server.tap} gained for hostile
conditions: C{--shutdown-timeout}, C{--udp}, C{--udp-rate}, C{--udp-burst}.
"""

from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService, UDPServer
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.accept_errors import SummarizedAcceptErrors
from echotwist.server.options import Options, udp_address
from echotwist.server.shutdown import ShutdownService
from echotwist.server.tap import makeService
from echotwist.server.udp import EchoDatagramProtocol


def parse(*argv: str) -> Options:
    """
    @return: L{Options} parsed from C{argv}.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


class UDPAddressTests(SynchronousTestCase):
    """
    Tests for L{udp_address}.
    """

    def test_forms(self) -> None:
        """
        C{PORT}, C{INTERFACE:PORT} and C{[IPV6]:PORT} are understood.
        """
        self.assertEqual(udp_address("7007"), ("", 7007))
        self.assertEqual(udp_address("127.0.0.1:0"), ("127.0.0.1", 0))
        self.assertEqual(udp_address("[::1]:9"), ("::1", 9))
        self.assertEqual(udp_address("::1:9"), ("::1", 9))

    def test_bad(self) -> None:
        """
        A missing, non-numeric or too large port is a usage error.
        """
        for bad in ["", "x", "127.0.0.1:", "65536", "1:-1", "\uff11\uff12", "\u00b2"]:
            self.assertRaises(usage.UsageError, udp_address, bad)


class OptionsTests(SynchronousTestCase):
    """
    Tests for the new options.
    """

    def test_defaults(self) -> None:
        """
        UDP is off, the shutdown timeout is 10 s, the UDP limits are the
        module's defaults.
        """
        options = parse()
        self.assertIsNone(options["udp"])
        self.assertEqual(options["shutdown-timeout"], 10.0)
        self.assertEqual((options["udp-rate"], options["udp-burst"]), (10.0, 20))

    def test_bad_numbers(self) -> None:
        """
        A negative timeout, a zero rate or burst are usage errors.
        """
        for argv in [
            ["--shutdown-timeout", "-1"],
            ["--udp-rate", "0"],
            ["--udp-burst", "0"],
            ["--udp-burst", "1.5"],
        ]:
            self.assertRaises(usage.UsageError, parse, *argv)


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for what L{makeService} builds.
    """

    def test_wiring(self) -> None:
        """
        The shutdown service holds the UDP listener with the configured
        limits and the TCP listeners, whose endpoints summarize accept
        errors.
        """
        service = makeService(
            parse(
                "--udp",
                "127.0.0.1:0",
                "--udp-rate",
                "2",
                "--udp-burst",
                "3",
                "--shutdown-timeout",
                "4",
                "--port",
                "tcp:0",
            )
        )
        [shutdown] = service
        assert isinstance(shutdown, ShutdownService)
        udp, tcp = shutdown
        self.assertEqual(shutdown.timeout, 4.0)
        assert isinstance(udp, UDPServer)
        protocol = udp.args[1]
        assert isinstance(protocol, EchoDatagramProtocol)
        protocol.datagrams_echoed = 6
        [counts] = shutdown.counts().values()
        self.assertEqual(counts.datagrams_echoed, 6)
        self.assertEqual((protocol.rate, protocol.burst), (2.0, 3))
        assert isinstance(tcp, StreamServerEndpointService)
        self.assertIsInstance(tcp.endpoint, SummarizedAcceptErrors)

    def test_largeDatagramsWhole(self) -> None:
        """
        The UDP listener reads datagrams of up to 65535 bytes: Twisted's
        default of 8192 would echo a 10,000-byte datagram cut short.
        """
        service = makeService(parse("--udp", "0", "--port", "tcp:0"))
        [shutdown] = service
        assert isinstance(shutdown, ShutdownService)
        [udp] = (s for s in shutdown if isinstance(s, UDPServer))
        self.assertEqual(udp.kwargs["maxPacketSize"], 65535)

    def test_noUDPByDefault(self) -> None:
        """
        Without C{--udp} there is no UDP listener.
        """
        service = makeService(parse("--port", "tcp:0"))
        [shutdown] = service
        assert isinstance(shutdown, ShutdownService)
        self.assertFalse([s for s in shutdown if isinstance(s, UDPServer)])
