"""
Tests for L{echotwist.server.tap}.
"""

from __future__ import annotations

import gc
import io
import os
import socket

from twisted.application.internet import StreamServerEndpointService, UDPServer
from twisted.application.service import IServiceMaker, Service
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.logger import capturedLogs, formatEvent
from twisted.plugin import getPlugins
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server import tap
from echotwist.server.accept_errors import SummarizedAcceptErrors
from echotwist.server.collector import CollectorTuning
from echotwist.server.endpoints import ListenerError
from echotwist.server.listeners import NamedEndpoint
from echotwist.server.metrics import Guard
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
        factory, inside the graceful-shutdown service; then the collector's
        tuning, on the C{gc} module.
        """
        service = tap.makeService(parse("--port", "0", "--port", "unix:/tmp/x"))
        serving, tuning = service
        assert isinstance(tuning, CollectorTuning)
        self.assertIs(tuning.collector, gc)
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
        shutdown, _ = service
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

    def test_metricsGuardedAndSummarized(self) -> None:
        """
        The metrics listener serves its site behind a L{Guard}, and its
        accept errors go to the same summary as the echo ports'.
        """
        service = tap.makeService(parse("--port", "tcp:0", "--metrics", "tcp:0"))
        shutdown, metrics, _ = service
        [tcp] = shutdown
        assert isinstance(tcp, StreamServerEndpointService)
        assert isinstance(metrics, StreamServerEndpointService)
        self.assertIsInstance(metrics.factory, Guard)
        echo_endpoint, metrics_endpoint = tcp.endpoint, metrics.endpoint
        assert isinstance(echo_endpoint, SummarizedAcceptErrors)
        assert isinstance(metrics_endpoint, SummarizedAcceptErrors)
        self.assertIs(metrics_endpoint.summary, echo_endpoint.summary)

    def test_largeDatagramsWhole(self) -> None:
        """
        The UDP listener reads datagrams of up to 65535 bytes: Twisted's
        default of 8192 would echo a 10,000-byte datagram cut short.
        """
        service = tap.makeService(parse("--udp", "0", "--port", "tcp:0"))
        shutdown, _ = service
        assert isinstance(shutdown, ShutdownService)
        [udp] = (s for s in shutdown if isinstance(s, UDPServer))
        self.assertEqual(udp.kwargs["maxPacketSize"], 65535)

    def test_noUDPByDefault(self) -> None:
        """
        Without C{--udp} there is no UDP listener.
        """
        service = tap.makeService(parse("--port", "tcp:0"))
        shutdown, _ = service
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
        line naming it on standard error (not in the log), and the pidfile
        twistd wrote is removed.
        """
        pidfile = self.mktemp()
        with open(pidfile, "w") as f:
            f.write("1234")
        service = tap.EchoService(True, {"pidfile": pidfile})
        service.stderr = io.StringIO()
        _FailingListener().setServiceParent(service)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertEqual(
            service.stderr.getvalue(),
            "twistd echo: Couldn't listen on any:9000: "
            "[Errno 98] Address already in use.\n",
        )
        self.assertFalse(os.path.exists(pidfile))

    def test_typedNotFull(self) -> None:
        """
        The line names the value as typed, not the description echotwist
        made of it (no C{backlog=1024} the user never typed).
        """
        config = parse("--port", "tcp:0")
        config.parent = ServerOptions()
        config.parent.update(nodaemon=True, pidfile="")
        service = tap.makeService(config)
        assert isinstance(service, tap.EchoService)
        service.stderr = io.StringIO()
        failing = ListenerError("port", config["ports"][0], "Address in use")
        self.assertEqual(
            tap.as_typed(failing, service.typed), "--port 'tcp:0': Address in use"
        )

        class Failing(Service):
            def privilegedStartService(self) -> None:
                raise failing

        Failing().setServiceParent(service)
        self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(
            service.stderr.getvalue(), "twistd echo: --port 'tcp:0': Address in use\n"
        )

    def test_daemonReraises(self) -> None:
        """
        A daemonising twistd gets the exception itself, to report it from its
        parent process.
        """
        service = tap.EchoService(foreground=False)
        _FailingListener().setServiceParent(service)
        self.assertRaises(CannotListenError, service.privilegedStartService)


class _UnwritableListener(Service):
    """
    A child service whose UNIX socket's directory can't be written.
    """

    def privilegedStartService(self) -> None:
        raise ListenerError("port", "unix:/ro/e.sock", "Permission denied: /ro")


class ListenerErrorTests(SynchronousTestCase):
    """
    Tests for L{tap.EchoService}'s handling of a L{ListenerError}.
    """

    def test_foreground(self) -> None:
        """
        In the foreground it ends twistd with one line naming the option and
        the reason.
        """
        service = tap.EchoService(foreground=True)
        service.stderr = io.StringIO()
        _UnwritableListener().setServiceParent(service)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertEqual(
            service.stderr.getvalue(),
            "twistd echo: --port 'unix:/ro/e.sock': Permission denied: /ro\n",
        )

    def test_daemonStatusPipe(self) -> None:
        """
        Daemonised, the line goes to twistd's waiting parent through the
        status pipe and to the log, the pid file is removed, and the process
        exits with status 1 and no traceback.
        """
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        directory = self.mktemp()
        os.mkdir(directory)
        pidfile = os.path.join(directory, "twistd.pid")
        open(pidfile, "w").close()
        config = {"statusPipe": write, "pidfile": pidfile}
        service = tap.EchoService(foreground=False, twistd_config=config)
        _UnwritableListener().setServiceParent(service)
        with capturedLogs() as events:
            error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(error.code, 1)
        self.assertEqual(
            os.read(read, 100),
            b"1 --port 'unix:/ro/e.sock': Permission denied: /ro",
        )
        self.assertFalse(os.path.exists(pidfile))
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["twistd echo: --port 'unix:/ro/e.sock': Permission denied: /ro"],
        )

    def test_daemonWithoutPipe(self) -> None:
        """
        Without a status pipe the exception is raised for twistd to report.
        """
        service = tap.EchoService(foreground=False, twistd_config={})
        _UnwritableListener().setServiceParent(service)
        with capturedLogs():
            self.assertRaises(ListenerError, service.privilegedStartService)

    def test_preflight(self) -> None:
        """
        L{tap.preflight} ends a daemonising twistd with one line for a port
        in use, before it forks.
        """
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            config = parse("--port", "tcp:0", "--metrics", f"tcp:{port}")
            error = self.assertRaises(SystemExit, tap.preflight, config)
        self.assertEqual(
            error.code,
            f"twistd echo: --metrics 'tcp:{port}': Address already in use: "
            "another program listens there; stop it, or choose another port "
            "(0 picks a free one)",
        )

    def test_namedEndpoint(self) -> None:
        """
        A L{NamedEndpoint} turns whatever its endpoint fails with into a
        L{ListenerError} naming the option.
        """

        class Missing:
            def listen(self, factory: object) -> object:
                raise FileNotFoundError(2, "No such file or directory", "/d")

        endpoint = NamedEndpoint(
            Missing(),  # type: ignore[arg-type]
            "port",
            "unix:/d/e.sock",
        )
        failure = self.failureResultOf(endpoint.listen(Factory()), ListenerError)
        self.assertEqual(
            str(failure.value),
            "--port 'unix:/d/e.sock': No such file or directory: /d",
        )

    def test_udp(self) -> None:
        """
        The C{--udp} listener names its option when it can't listen.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            service = tap.makeService(parse("--udp", f"127.0.0.1:{port}"))
            shutdown, _ = service
            assert isinstance(shutdown, ShutdownService)
            [udp] = (s for s in shutdown if isinstance(s, UDPServer))
            error = self.assertRaises(ListenerError, udp.privilegedStartService)
        self.assertEqual(
            str(error),
            f"--udp '127.0.0.1:{port}': Address already in use: "
            "another program listens there; stop it, or choose another port "
            "(0 picks a free one)",
        )


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
