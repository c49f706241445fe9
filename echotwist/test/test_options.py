"""
Tests for L{echotwist.server.options}.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import SimpleNamespace
from typing import cast
from unittest.mock import patch

from twisted.internet import endpoints
from twisted.internet.task import Clock
from twisted.python.usage import UsageError
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server import endpoints as endpoints_module
from echotwist.server import options as options_module
from echotwist.server import reactor as reactor_module
from echotwist.server.endpoints import ListenerError
from echotwist.server.options import (
    DEFAULT_BACKLOG,
    FALLBACK_BACKLOG,
    Options,
    make_factory,
    system_backlog,
    udp_address,
)
from echotwist.test.support import parse


class SystemBacklogTests(SynchronousTestCase):
    """
    Tests for L{system_backlog}, the default C{--backlog}.
    """

    def _written(self, text: str) -> str:
        """
        @return: the path of a file holding C{text}, removed after the test.
        """
        fd, path = tempfile.mkstemp()
        self.addCleanup(os.remove, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_somaxconn(self) -> None:
        """
        The system's C{somaxconn} is the backlog.
        """
        self.assertEqual(system_backlog(self._written("4096\n")), 4096)
        self.assertEqual(system_backlog(self._written("65535")), 65535)

    def test_unreadable(self) -> None:
        """
        Where the file is missing, or holds no positive integer, the
        fallback is used.
        """
        missing = self.mktemp()
        for path in [missing, self._written("many"), self._written("0")]:
            self.assertEqual(system_backlog(path), FALLBACK_BACKLOG)


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{Options}.
    """

    def test_defaults(self) -> None:
        """
        With no options: TCP port 9000, the system's longest listen queue, a
        300 s idle timeout, no connection limit, quiet.
        """
        self.patch(endpoints_module, "dual_stack", lambda: True)
        options = parse()
        backlog = system_backlog()
        self.assertEqual(options["ports"], [f"tcp6:9000:backlog={backlog}"])
        self.assertEqual(options["backlog"], backlog)
        self.assertEqual(options["idle-timeout"], 300.0)
        self.assertEqual(options["max-connections"], 0)
        self.assertFalse(options["verbose"])

    def test_barePortBecomesTCP(self) -> None:
        """
        A bare port number means that TCP port, on IPv4 only where there is
        no dual-stack socket.
        """
        self.patch(endpoints_module, "dual_stack", lambda: False)
        self.assertEqual(
            parse("--port", "9001")["ports"], [f"tcp:9001:backlog={DEFAULT_BACKLOG}"]
        )

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

    def test_systemdWithoutSocket(self) -> None:
        """
        Asking for a systemd socket that was not passed is a usage error.
        """
        self.patch(os, "environ", {})
        error = self.assertRaises(
            UsageError, parse, "--port", "systemd:domain=INET:index=0"
        )
        self.assertIn("no such socket passed by systemd", str(error))

    def test_listenerErrorUnderTwistd(self) -> None:
        """
        Under twistd, a listener that can't be made (a socket systemd did not
        pass, a TLS file that can't be read) ends twistd with one line, not
        its usage text; parsed without twistd it is a L{UsageError}.
        """
        options = Options()

        def check(description: str) -> None:
            raise ListenerError("port", description, "no such socket")

        self.assertRaises(UsageError, options._check_listener, check, "systemd:x")
        options.parent = cast(Options, {})
        error = self.assertRaises(
            SystemExit, options._check_listener, check, "systemd:x"
        )
        self.assertEqual(error.code, "twistd echo: --port 'systemd:x': no such socket")

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
            (["--port", "70000"], "--port '70000' is not a port number (0-65535)"),
            (["--port", "-1"], "--port '-1'"),
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
        self.assertEqual(str(error), "--port 'tcp:0': RuntimeError")

    def test_unknownOption(self) -> None:
        """
        An unknown option is a L{UsageError}.
        """
        self.assertRaises(UsageError, parse, "--colour", "blue")


class ShutdownAndUDPOptionsTests(SynchronousTestCase):
    """
    Tests for L{Options}' shutdown and UDP options.
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
            self.assertRaises(UsageError, parse, *argv)


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
            self.assertRaises(UsageError, udp_address, bad)


class DefaultReactorTests(SynchronousTestCase):
    """
    Tests for L{options_module.install_default_reactor} and when L{Options} calls
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
        options = Options()
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


class MakeFactoryTests(SynchronousTestCase):
    """
    Tests for L{make_factory}.
    """

    def test_factoryConfigured(self) -> None:
        """
        The factory takes its limits from the options; 0 means none.
        """
        clock = Clock()
        factory = make_factory(
            parse("--max-connections", "5", "--idle-timeout", "7", "-v"), clock
        )
        self.assertEqual(factory.max_connections, 5)
        self.assertEqual(factory.idle_timeout, 7)
        self.assertTrue(factory.verbose)
        self.assertIs(factory.clock, clock)
        unlimited = make_factory(
            parse("--max-connections", "0", "--idle-timeout", "0"), clock
        )
        self.assertIsNone(unlimited.max_connections)
        self.assertIsNone(unlimited.idle_timeout)


class ProxyOptionsTests(SynchronousTestCase):
    """
    C{--proxy-from}, C{--proxy-timeout}, C{--info} and C{--info-udp}.
    """

    def test_defaults(self) -> None:
        """
        Without C{--proxy-from}, only this machine may send headers, within
        5 s.
        """
        config = parse()
        settings = options_module.make_proxy_settings(config, Clock())
        self.assertEqual([str(n) for n in settings.trusted], ["127.0.0.0/8", "::1/128"])
        self.assertEqual(settings.timeout, 5.0)
        self.assertIsNone(config["info"])
        self.assertIsNone(config["info-udp"])

    def test_proxyFrom(self) -> None:
        """
        C{--proxy-from} is repeatable and replaces the default; a bad
        network or timeout is a usage error naming it.
        """
        config = parse(
            "--proxy-from", "10.1.2.3/8", "--proxy-from", "::1", "--proxy-timeout", "2"
        )
        self.assertEqual(config["proxy-from"], ["10.0.0.0/8", "::1/128"])
        settings = options_module.make_proxy_settings(config, Clock())
        self.assertEqual(settings.timeout, 2.0)
        error = self.assertRaises(UsageError, parse, "--proxy-from", "nowhere")
        self.assertIn("--proxy-from 'nowhere'", str(error))
        self.assertRaises(UsageError, parse, "--proxy-timeout", "0")

    def test_info(self) -> None:
        """
        C{--info} takes any endpoint, given a backlog like C{--port};
        C{--info-udp} an address like C{--udp}'s.
        """
        self.patch(endpoints_module, "dual_stack", lambda: False)
        config = parse("--info", "haproxy:9001", "--info-udp", "127.0.0.1:9001")
        self.assertEqual(config["info"], f"haproxy:tcp:9001:backlog={DEFAULT_BACKLOG}")
        self.assertEqual(config["info-udp"], ("127.0.0.1", 9001))
        error = self.assertRaises(UsageError, parse, "--info-udp", "x")
        self.assertIn("--info-udp 'x'", str(error))
        self.assertRaises(UsageError, parse, "--info", "nosuch:1")

    def test_proxyPort(self) -> None:
        """
        A C{haproxy:} port is given the backlog on its inner description.
        """
        config = parse("--port", "haproxy:tcp:9000", "--backlog", "5")
        self.assertEqual(config["ports"], ["haproxy:tcp:9000:backlog=5"])


class PidfileTests(SynchronousTestCase):
    """
    Tests for L{options_module.no_default_pidfile}.
    """

    def twistd(self, *argv: str) -> ServerOptions:
        """
        @return: twistd's options parsed from C{argv}, up to C{web} (a
            subcommand that parses nothing of echotwist's).
        """
        options = ServerOptions()
        options.parseOptions([*argv, "web"])
        return options

    def test_foregroundNoPidfile(self) -> None:
        """
        C{twistd -n} without C{--pidfile} writes none.
        """
        twistd = self.twistd("-n")
        self.assertTrue(options_module.no_default_pidfile(twistd, ["-n", "echo"]))
        self.assertEqual(twistd["pidfile"], "")

    def test_givenKept(self) -> None:
        """
        A C{--pidfile} given is kept, even the default name, and a daemon
        keeps twistd's default.
        """
        argv = ["-n", "--pidfile=twistd.pid", "echo"]
        twistd = self.twistd(*argv[:-1])
        self.assertFalse(options_module.no_default_pidfile(twistd, argv))
        self.assertTrue(twistd["pidfile"].endswith("twistd.pid"))
        daemon = self.twistd()
        self.assertFalse(options_module.no_default_pidfile(daemon, ["echo"]))
        self.assertTrue(daemon["pidfile"].endswith("twistd.pid"))


class WorkersCapTests(SynchronousTestCase):
    """
    Tests for the cap on C{--workers}.
    """

    def test_capped(self) -> None:
        """
        More than four workers per CPU start four per CPU, with one warning
        giving the reason.
        """
        self.assertEqual(
            options_module.capped_workers(10000, 2),
            (
                8,
                "--workers 10000: starting 8, 4 per CPU on 2 CPUs: more would "
                "only compete for the same CPUs, each with its own memory "
                "(--workers auto starts one per CPU)",
            ),
        )
        self.assertEqual(options_module.capped_workers(8, 2), (8, None))
        self.assertEqual(options_module.capped_workers(5, 1)[0], 4)

    def test_parsedAndLogged(self) -> None:
        """
        The options carry the capped number and the warning, which
        L{echotwist.server.tap.makeService} logs once.
        """
        from twisted.logger import capturedLogs, formatEvent

        from echotwist.server import tap

        self.patch(options_module, "cpus", lambda: 2)
        config = parse("--workers", "10000", "--port", "tcp:0")
        self.assertEqual(config["workers"], 8)
        with capturedLogs() as events:
            tap.makeService(config)
        warnings = [formatEvent(e) for e in events if "--workers" in formatEvent(e)]
        self.assertEqual(warnings, [config["workers-warning"]])
        self.assertIsNone(parse("--workers", "2")["workers-warning"])
