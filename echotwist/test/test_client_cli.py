"""
Tests for the client's command line (L{echotwist.client.__main__}): when it
probes, and its one-line usage errors.
"""

from __future__ import annotations

import io
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from echotwist.client.__main__ import build_parser, check_arguments, probing
from echotwist.client.exits import EXIT_USAGE, ClientExit


def parse(*argv: str) -> Any:
    """
    @return: C{argv} parsed.
    """
    return build_parser().parse_args(list(argv))


class ProbingTests(SynchronousTestCase):
    """
    When the command line probes, and what it fills in.
    """

    def test_oneShotStays(self) -> None:
        """
        A message alone is the one-message run, with its 10 s timeout.
        """
        args = parse("msg")
        check_arguments(args, stdin_is_terminal=True)
        self.assertFalse(args.probing)
        self.assertEqual(args.timeout, 10.0)

    def test_probingOptions(self) -> None:
        """
        Any probing option probes; defaults are filled in (count 0,
        interval 1 s, 2 s per probe unless --timeout says).
        """
        for argv in (["-c", "3"], ["-i", "0.5"], ["--json"], ["-D"], ["-s", "100"]):
            with self.subTest(argv=argv):
                self.assertTrue(probing(parse(*argv), stdin_is_terminal=False))
        args = parse("-c", "3")
        check_arguments(args, stdin_is_terminal=False)
        self.assertEqual((args.count, args.interval, args.timeout), (3, 1.0, 2.0))
        args = parse("-c", "3", "--timeout", "10")
        check_arguments(args, stdin_is_terminal=False)
        self.assertEqual(args.timeout, 10.0)

    def test_noMessageAtTerminal(self) -> None:
        """
        No message at a terminal probes, as ping does; piped, it is read.
        """
        self.assertTrue(probing(parse(), stdin_is_terminal=True))
        self.assertFalse(probing(parse(), stdin_is_terminal=False))
        self.assertFalse(probing(parse("--info", "--json"), stdin_is_terminal=True))

    def test_badCombinations(self) -> None:
        """
        Combinations that can't work exit 2 with one line.
        """
        for argv, text in (
            (["--spread", "-c", "1"], "--spread takes --udp"),
            (["--udp", "--reconnect", "-c", "1"], "--reconnect is for TCP"),
            (["--udp", "-s", "65508", "-c", "1"], "a UDP probe is 20"),
            (["--udp", "-s", "10", "-c", "1"], "a UDP probe is 20"),
            (["-s", "0", "-c", "1"], "a probe is 1 to"),
            (["-c", "1", "msg", "-s", "5"], "not both"),
            (["--pattern", "nothex", "-c", "1"], "is not a pattern"),
            (["--connect", "tcp:h:1", "-4", "-c", "1"], "-4/-6 takes --host"),
            (["--udp", "--spread", "--bind", "127.0.0.1:5000", "-c", "1"], "no port"),
            (["--tos", "8", "msg"], "for probing"),
            (["--info", "-c", "2"], "no probing option"),
        ):
            with self.subTest(argv=argv):
                args = parse(*argv)
                error = self.assertRaises(ClientExit, check_arguments, args, False)
                self.assertEqual(error.code, EXIT_USAGE)
                self.assertIn(text, str(error))
                self.assertNotIn("\n", str(error))


class UsageErrorTests(SynchronousTestCase):
    """
    A bad value is one line and exit 2, negative numbers included.
    """

    def error(self, *argv: str) -> str:
        """
        @return: what the parser writes for C{argv}, after checking it exits 2.
        """
        parser = build_parser()
        written = io.StringIO()
        self.patch(
            parser, "_print_message", lambda text, file=None: written.write(text)
        )
        error = self.assertRaises(SystemExit, parser.parse_args, list(argv))
        self.assertEqual(error.code, EXIT_USAGE)
        return written.getvalue()

    def test_oneLine(self) -> None:
        """
        Each bad value gives exactly one line naming it.
        """
        for argv, text in (
            (["-c", "-1"], "'-1' is not a whole number"),
            (["-i", "0"], "'0' is not a positive number"),
            (["-i", "abc"], "'abc' is not a positive number"),
            (["-i", "0.001"], "under the shortest interval"),
            (["--dscp", "64"], "not a DSCP"),
            (["--tos", "0x100"], "not a TOS byte"),
            (["--bind", "localhost"], "not ADDRESS[:PORT]"),
            (["-w", "-3"], "'-3' is not a positive number"),
        ):
            with self.subTest(argv=argv):
                written = self.error(*argv)
                self.assertEqual(written.count("\n"), 1, written)
                self.assertIn(text, written)

    def test_bind(self) -> None:
        """
        --bind takes ADDRESS, ADDRESS:PORT, [V6]:PORT and a bare IPv6
        address.
        """
        self.assertEqual(parse("--bind", "127.0.0.1").bind, ("127.0.0.1", 0))
        self.assertEqual(parse("--bind", "127.0.0.1:5000").bind, ("127.0.0.1", 5000))
        self.assertEqual(parse("--bind", "[::1]:5000").bind, ("::1", 5000))
        self.assertEqual(parse("--bind", "::1").bind, ("::1", 0))
        self.assertEqual(parse("--dscp", "46").tos, 46 << 2)
