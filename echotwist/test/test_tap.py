"""
Tests for L{echotwist.server.tap} and the twistd plugin that points at it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import SimpleNamespace
from unittest.mock import patch

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceMaker, Service
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server import endpoints as server_endpoints
from echotwist.server import options as options_module
from echotwist.server import reactor as reactor_module
from echotwist.server import tap
from echotwist.server.shutdown import ShutdownService


def parse(*argv: str) -> tap.Options:
    """
    @return: L{tap.Options} parsed from C{argv}.
    """
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{tap.Options}.
    """

    def test_defaults(self) -> None:
        """
        With no options: TCP port 9000, backlog 1024, a 300 s idle timeout, no
        connection limit, quiet.
        """
        options = parse()
        self.assertEqual(options["ports"], ["tcp:9000:backlog=1024"])
        self.assertEqual(options["backlog"], 1024)
        self.assertEqual(options["idle-timeout"], 300.0)
        self.assertEqual(options["max-connections"], 0)
        self.assertFalse(options["verbose"])

    def test_barePortBecomesTCP(self) -> None:
        """
        A bare port number means that TCP port.
        """
        self.assertEqual(parse("--port", "9001")["ports"], ["tcp:9001:backlog=1024"])

    def test_repeatablePorts(self) -> None:
        """
        C{--port} may be given several times, each an endpoint description;
        the backlog is added where the endpoint takes one and isn't set.
        """
        options = parse(
            "--backlog",
            "77",
            "-p",
            "tcp:0:interface=127.0.0.1",
            "--port",
            "unix:/tmp/echo.sock",
            "--port",
            "tcp6:0:backlog=5",
        )
        self.assertEqual(
            options["ports"],
            [
                "tcp:0:interface=127.0.0.1:backlog=77",
                "unix:/tmp/echo.sock:backlog=77",
                "tcp6:0:backlog=5",
            ],
        )

    def test_systemdHasNoBacklog(self) -> None:
        """
        A systemd-activated socket is already listening: no backlog is added.
        """
        self.assertEqual(
            server_endpoints.endpoint_description("systemd:domain=INET:index=0", 1024),
            "systemd:domain=INET:index=0",
        )

    def test_systemdWithoutSocket(self) -> None:
        """
        Asking for a systemd socket that was not passed is a usage error.
        """
        self.patch(os, "environ", {})
        error = self.assertRaises(
            UsageError, parse, "--port", "systemd:domain=INET:index=0"
        )
        self.assertIn("no such socket passed by systemd", str(error))

    def test_numbers(self) -> None:
        """
        Numeric options are parsed.
        """
        options = parse("--max-connections", "10", "--idle-timeout", "2.5", "--verbose")
        self.assertEqual(options["max-connections"], 10)
        self.assertEqual(options["idle-timeout"], 2.5)
        self.assertTrue(options["verbose"])

    def test_badValues(self) -> None:
        """
        Every bad value is a L{UsageError} naming the option and the value.
        """
        cases = [
            (["--port", "70000"], "--port 70000"),
            (["--port", "-1"], "--port -1"),
            (["--port", "nosuch:9000"], "--port 'nosuch:9000"),
            (["--port", "tcp:notaport"], "--port 'tcp:notaport"),
            (["--port", "\u00b2"], "--port '\u00b2'"),
            (["--port", "\u0663"], "--port '\u0663'"),
            (["--backlog", "0"], "--backlog '0'"),
            (["--backlog", "many"], "--backlog 'many'"),
            (["--max-connections", "-3"], "--max-connections '-3'"),
            (["--max-connections", "1.5"], "--max-connections '1.5'"),
            (["--idle-timeout", "soon"], "--idle-timeout 'soon'"),
            (["--idle-timeout", "-1"], "--idle-timeout '-1'"),
            (["--idle-timeout", "nan"], "--idle-timeout 'nan'"),
        ]
        for argv, message in cases:
            with self.subTest(argv=argv):
                error = self.assertRaises(UsageError, parse, *argv)
                self.assertIn(message, str(error))

    def test_keyFileNotPEM(self) -> None:
        """
        An C{ssl:} port whose key file is not PEM is a L{UsageError} naming
        the option, not OpenSSL's exception.
        """
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as key:
            key.write("not a key\n")
            key.flush()
            path = key.name
            error = self.assertRaises(
                UsageError, parse, "--port", f"ssl:0:privateKey={path}"
            )
        self.assertIn(f"--port 'ssl:0:privateKey={path}", str(error))

    def test_anyEndpointError(self) -> None:
        """
        Whatever an endpoint parser or plugin raises is a L{UsageError}
        naming the option; an exception without a message is named by its
        type.
        """

        def broken(reactor: object, description: str) -> None:
            raise RuntimeError()

        self.patch(endpoints, "serverFromString", broken)
        error = self.assertRaises(UsageError, parse, "--port", "tcp:0")
        self.assertEqual(str(error), "--port 'tcp:0:backlog=1024': RuntimeError")

    def test_unknownOption(self) -> None:
        """
        An unknown option is a L{UsageError}.
        """
        self.assertRaises(UsageError, parse, "--colour", "blue")


class DefaultReactorTests(SynchronousTestCase):
    """
    Tests for L{options_module.install_default_reactor} and when L{tap.Options} calls
    it.
    """

    def setUp(self) -> None:
        self.installed: list[str] = []
        self.patch(reactor_module, "install", lambda: self.installed.append("echo"))

    def test_onlyUnderTwistd(self) -> None:
        """
        Options parsed as twistd's subcommand choose the reactor; parsed by
        any other program (no parent), they leave it alone.
        """
        calls: list[None] = []
        self.patch(
            options_module, "install_default_reactor", lambda: calls.append(None)
        )
        parse()
        self.assertEqual(calls, [])
        options = tap.Options()
        options.parent = ServerOptions()
        options.parseOptions([])
        self.assertEqual(calls, [None])

    def test_installsWhenNoneChosen(self) -> None:
        """
        With epoll and no reactor installed yet, the echotwist-epoll reactor
        is installed.
        """
        self.patch(options_module, "select", SimpleNamespace(epoll=object))
        with patch.dict(sys.modules):
            sys.modules.pop("twisted.internet.reactor", None)
            self.assertTrue(options_module.install_default_reactor())
        self.assertEqual(self.installed, ["echo"])

    def test_reactorAlreadyChosen(self) -> None:
        """
        A reactor already installed (by C{--reactor}, or by trial here) is
        kept.
        """
        self.patch(options_module, "select", SimpleNamespace(epoll=object))
        with patch.dict(sys.modules, {"twisted.internet.reactor": object()}):
            self.assertFalse(options_module.install_default_reactor())
        self.assertEqual(self.installed, [])

    def test_noEpoll(self) -> None:
        """
        Without epoll (not Linux) Twisted's default is left to be installed.
        """
        self.patch(options_module, "select", SimpleNamespace())
        with patch.dict(sys.modules):
            sys.modules.pop("twisted.internet.reactor", None)
            self.assertFalse(options_module.install_default_reactor())
        self.assertEqual(self.installed, [])


class PortNumberTests(SynchronousTestCase):
    """
    Tests for L{server_endpoints.port_number}.
    """

    def test_numbers(self) -> None:
        """
        ASCII digits, with an optional minus sign, are read as a number
        whether or not it is a valid port.
        """
        for text, number in [("0", 0), ("9000", 9000), ("-1", -1), ("70000", 70000)]:
            self.assertEqual(server_endpoints.port_number(text), number)

    def test_notNumbers(self) -> None:
        """
        Anything else, including digits C{int} rejects or that are not
        ASCII, is not a port number.
        """
        for text in ["", "-", "tcp:9000", "9k", "\u00b2", "\u0663", "\uff11", "+1"]:
            self.assertIsNone(server_endpoints.port_number(text))


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for L{tap.makeService} and L{options_module.make_factory}.
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

    def test_factoryConfigured(self) -> None:
        """
        The factory takes its limits from the options; 0 means none.
        """
        clock = Clock()
        factory = options_module.make_factory(
            parse("--max-connections", "5", "--idle-timeout", "7", "-v"), clock
        )
        self.assertEqual(factory.max_connections, 5)
        self.assertEqual(factory.idle_timeout, 7)
        self.assertTrue(factory.verbose)
        self.assertIs(factory.clock, clock)
        unlimited = options_module.make_factory(
            parse("--max-connections", "0", "--idle-timeout", "0"), clock
        )
        self.assertIsNone(unlimited.max_connections)
        self.assertIsNone(unlimited.idle_timeout)


class _FailingListener(Service):
    """
    A child service whose port is taken.
    """

    def privilegedStartService(self) -> None:
        raise CannotListenError("any", 9000, OSError(98, "Address already in use"))


class EchoServiceTests(SynchronousTestCase):
    """
    Tests for L{tap.EchoService}'s handling of a port that's taken.
    """

    def test_foregroundExitsWithOneLine(self) -> None:
        """
        In the foreground, a port in use ends twistd with one line naming it.
        """
        service = tap.EchoService(foreground=True)
        _FailingListener().setServiceParent(service)
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(
            str(error.code),
            "twistd echo: Couldn't listen on any:9000: "
            "[Errno 98] Address already in use.",
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
