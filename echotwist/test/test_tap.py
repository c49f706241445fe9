"""
Tests for L{echotwist.server.tap}.
"""

from __future__ import annotations

import io
import os

from twisted.application.internet import StreamServerEndpointService, UDPServer
from twisted.application.service import IServiceMaker, Service
from twisted.internet.error import CannotListenError
from twisted.plugin import getPlugins
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server import tap
from echotwist.server.accept_errors import SummarizedAcceptErrors
from echotwist.server.endpoints import Listener
from echotwist.server.shutdown import ShutdownService
from echotwist.server.udp import EchoDatagramProtocol
from echotwist.test.support import parse


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for what L{tap.makeService} builds.
    """

    def test_oneListenerPerPort(self) -> None:
        """
        The service holds one endpoint service per C{--port}, sharing one
        factory, inside the graceful-shutdown service.
        """
        service = tap.makeService(parse("--port", "0", "--port", "unix:/tmp/x"))
        [serving] = service
        assert isinstance(serving, ShutdownService)
        children = list(serving)
        self.assertEqual(len(children), 2)
        self.assertTrue(
            all(isinstance(c, StreamServerEndpointService) for c in children)
        )
        [first, second] = children
        self.assertIs(first.factory, second.factory)

    def test_wiring(self) -> None:
        """
        The shutdown service holds the UDP listener with the configured
        limits and the TCP listeners, whose endpoints summarize accept
        errors.
        """
        service = tap.makeService(
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
        service = tap.makeService(parse("--udp", "0", "--port", "tcp:0"))
        [shutdown] = service
        assert isinstance(shutdown, ShutdownService)
        [udp] = (s for s in shutdown if isinstance(s, UDPServer))
        self.assertEqual(udp.kwargs["maxPacketSize"], 65535)

    def test_noUDPByDefault(self) -> None:
        """
        Without C{--udp} there is no UDP listener.
        """
        service = tap.makeService(parse("--port", "tcp:0"))
        [shutdown] = service
        assert isinstance(shutdown, ShutdownService)
        self.assertFalse([s for s in shutdown if isinstance(s, UDPServer)])


class _FailingListener(Service):
    """
    A child service whose port is taken.
    """

    def privilegedStartService(self) -> None:
        raise CannotListenError("", 9000, OSError(98, "Address already in use"))


class EchoServiceTests(SynchronousTestCase):
    """
    Tests for L{tap.EchoService}'s handling of a port that's taken.
    """

    def test_foregroundExitsWithOneLine(self) -> None:
        """
        In the foreground, a port in use ends twistd with status 1 and one
        line on standard error naming the option as typed and what would
        work; the pidfile twistd wrote is removed.
        """
        pidfile = self.mktemp()
        with open(pidfile, "w") as f:
            f.write("1234")
        listeners = [Listener("port", "9000", "tcp6:9000:backlog=1024")]
        service = tap.EchoService(True, listeners, pidfile)
        service.stderr = io.StringIO()
        _FailingListener().setServiceParent(service)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertEqual(
            service.stderr.getvalue(),
            "twistd echo: --port 9000: port 9000 is in use by another program: "
            "stop it, or choose another port (0 picks a free one)\n",
        )
        self.assertFalse(os.path.exists(pidfile))

    def test_pidfileFromTwistd(self) -> None:
        """
        L{tap.makeService} hands twistd's pidfile and the listeners to the
        service, for the message and the clean-up.
        """
        config = parse("--port", "tcp:0", "--metrics", "tcp:0")
        config.parent = ServerOptions()
        config.parent.update(nodaemon=True, pidfile="/x/twistd.pid")
        service = tap.makeService(config)
        assert isinstance(service, tap.EchoService)
        self.assertEqual(service.pidfile, "/x/twistd.pid")
        self.assertEqual(
            [(each.option, each.typed) for each in service.listeners],
            [("port", "tcp:0"), ("metrics", "tcp:0")],
        )

    def test_daemonReraises(self) -> None:
        """
        A daemonising twistd gets the exception itself, to report it from its
        parent process.
        """
        service = tap.EchoService(foreground=False)
        _FailingListener().setServiceParent(service)
        self.assertRaises(CannotListenError, service.privilegedStartService)


class PluginTests(SynchronousTestCase):
    """
    The twistd plugin is found and points at L{echotwist.server.tap}.
    """

    def test_discovered(self) -> None:
        """
        L{getPlugins} finds the C{echo} service maker, built from
        L{echotwist.server.tap}.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        self.assertIn("echo", makers)
        maker = makers["echo"]
        self.assertIs(maker.options, tap.Options)
        self.assertIs(maker.makeService, tap.makeService)
