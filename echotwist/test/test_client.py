"""
Tests for L{echotwist.client} and its command line.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import (
    IAddress,
    IHostResolution,
    IProtocol,
    IResolutionReceiver,
)
from twisted.internet.testing import (
    MemoryReactorClock,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from echotwist.client import (
    EchoClosedEarly,
    EchoMismatch,
    EchoTimeout,
    echo,
)
from echotwist.client.__main__ import build_parser
from echotwist.client.exits import (
    EXIT_CONNECT,
    EXIT_MISMATCH,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    ClientExit,
)
from echotwist.client.oneshot import run
from echotwist.client.resolver import EncodableNamesResolver
from echotwist.test.support import ClosingTransport, LoopbackResolver

SERVER = IPv4Address("TCP", "127.0.0.1", 9000)


def accept(reactor: MemoryReactorClock) -> tuple[IProtocol, ClosingTransport]:
    """
    Complete the connection the client last asked C{reactor} for.

    @return: the client's protocol and its transport.
    """
    factory = reactor.tcpClients[-1][2]
    protocol = factory.buildProtocol(SERVER)
    assert protocol is not None
    transport = ClosingTransport(peerAddress=SERVER)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


class EchoTests(SynchronousTestCase):
    """
    Tests for L{echo}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", 9000)

    def test_echoSplitAnyway(self) -> None:
        """
        The message is sent, and the echo returned however TCP splits it;
        then the client closes.
        """
        message = bytes(range(256)) * 10
        d = echo(self.reactor, self.endpoint, message, timeout=5)
        protocol, transport = accept(self.reactor)
        self.assertEqual(transport.value(), message)
        self.assertNoResult(d)
        for i in range(0, len(message), 7):
            protocol.dataReceived(message[i : i + 7])
        self.assertEqual(self.successResultOf(d), message)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_emptyMessage(self) -> None:
        """
        An empty message is echoed as soon as the connection is made.
        """
        d = echo(self.reactor, self.endpoint, b"", timeout=5)
        accept(self.reactor)
        self.assertEqual(self.successResultOf(d), b"")

    def test_mismatch(self) -> None:
        """
        A byte that differs fails with L{EchoMismatch} naming its offset.
        """
        d = echo(self.reactor, self.endpoint, b"hello world", timeout=5)
        protocol, transport = accept(self.reactor)
        protocol.dataReceived(b"hello")
        protocol.dataReceived(b" wOrld")
        failure = self.failureResultOf(d, EchoMismatch)
        self.assertEqual(failure.value.offset, 7)
        self.assertIn("byte 7", str(failure.value))
        self.assertTrue(transport.disconnecting)

    def test_extraBytes(self) -> None:
        """
        More bytes than were sent is a mismatch too.
        """
        d = echo(self.reactor, self.endpoint, b"abc", timeout=5)
        protocol, _ = accept(self.reactor)
        protocol.dataReceived(b"abcd")
        self.assertEqual(self.failureResultOf(d, EchoMismatch).value.offset, 3)

    def test_closedEarly(self) -> None:
        """
        A server that closes before echoing everything fails the echo with
        L{EchoClosedEarly}.
        """
        d = echo(self.reactor, self.endpoint, b"abcdef", timeout=5)
        protocol, _ = accept(self.reactor)
        protocol.dataReceived(b"abc")
        protocol.connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(d, EchoClosedEarly)
        self.assertEqual((failure.value.received, failure.value.expected), (3, 6))

    def test_timeoutWhileEchoing(self) -> None:
        """
        An echo not complete within the timeout fails with L{EchoTimeout}
        and aborts the connection.
        """
        d = echo(self.reactor, self.endpoint, b"abc", timeout=5)
        protocol, transport = accept(self.reactor)
        protocol.dataReceived(b"a")
        self.reactor.advance(4.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        self.failureResultOf(d, EchoTimeout)
        self.assertTrue(transport.disconnecting)

    def test_timeoutWhileConnecting(self) -> None:
        """
        A connection attempt that never completes fails with L{EchoTimeout}
        and is stopped.
        """
        d = echo(self.reactor, self.endpoint, b"abc", timeout=5)
        self.reactor.advance(5)
        self.failureResultOf(d, EchoTimeout)
        self.assertTrue(self.reactor.connectors[-1].stoppedConnecting)

    def test_refused(self) -> None:
        """
        A refused connection fails with the endpoint's own error.
        """
        d = echo(self.reactor, self.endpoint, b"abc", timeout=5)
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(
            self.reactor.connectors[-1], Failure(ConnectionRefusedError())
        )
        self.failureResultOf(d, ConnectionRefusedError)


class EchoMismatchTests(SynchronousTestCase):
    """
    Tests for L{EchoMismatch.between}.
    """

    def test_firstDifference(self) -> None:
        """
        The mismatch is at the first differing byte, counted from the start
        of the whole message, with up to 16 bytes of each side from there.
        """
        mismatch = EchoMismatch.between(b"abcdef", b"abXdeY", start=10)
        self.assertEqual(mismatch.offset, 12)
        self.assertIn("sent b'cdef', got b'XdeY'", str(mismatch))

    def test_lengthsDiffer(self) -> None:
        """
        Where one side is a prefix of the other, the mismatch is where the
        shorter ends.
        """
        self.assertEqual(EchoMismatch.between(b"abc", b"ab").offset, 2)
        self.assertEqual(EchoMismatch.between(b"ab", b"abc").offset, 2)


class ParserTests(SynchronousTestCase):
    """
    Tests for the command line's argument parsing.
    """

    def test_defaults(self) -> None:
        """
        By default the client talks to localhost:9000 with a 10 s timeout.
        """
        args = build_parser().parse_args(["hi"])
        self.assertEqual(
            (args.message, args.host, args.port, args.connect, args.timeout),
            ("hi", "localhost", 9000, None, 10.0),
        )

    def test_badArguments(self) -> None:
        """
        Bad values exit with status 2 (argparse's usage error).
        """
        for argv in (
            ["hi", "--port", "0"],
            ["hi", "--port", "65536"],
            ["hi", "--port", "x"],
            ["hi", "--timeout", "0"],
            ["hi", "--timeout", "inf"],
            ["hi", "--timeout", "soon"],
        ):
            with self.subTest(argv=argv):
                parser = build_parser()
                self.patch(parser, "_print_message", lambda *a, **k: None)
                error = self.assertRaises(SystemExit, parser.parse_args, argv)
                self.assertEqual(error.code, EXIT_USAGE)


class RunTests(SynchronousTestCase):
    """
    Tests for L{run}, the command line's work: what it writes, and the exit
    code each failure maps to.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.stdout = io.BytesIO()
        self.stderr = io.BytesIO()

    def start(self, argv: Sequence[str], stdin: bytes = b"") -> Deferred[None]:
        """
        Run the command line against the memory reactor.
        """
        args = build_parser().parse_args(
            ["--connect", "tcp:host=127.0.0.1:port=9000", *argv]
        )
        return Deferred.fromCoroutine(
            run(self.reactor, args, io.BytesIO(stdin), self.stdout, self.stderr)
        )

    def test_printsMessageAndNewline(self) -> None:
        """
        The echo of a message given as an argument is printed with a newline.
        """
        d = self.start(["hello world"])
        protocol, _ = accept(self.reactor)
        protocol.dataReceived(b"hello world")
        self.successResultOf(d)
        self.assertEqual(self.stdout.getvalue(), b"hello world\n")
        self.assertEqual(self.stderr.getvalue(), b"")

    def test_stdinRoundTripsBinary(self) -> None:
        """
        With C{-}, bytes from standard input come back on standard output
        unchanged, however they decode.
        """
        data = b"\x00\xff\xfe not utf-8 \x80\n"
        d = self.start(["-"], stdin=data)
        protocol, transport = accept(self.reactor)
        self.assertEqual(transport.value(), data)
        protocol.dataReceived(data)
        self.successResultOf(d)
        self.assertEqual(self.stdout.getvalue(), data)

    def test_verboseTimings(self) -> None:
        """
        C{-v} reports connect and round-trip times on standard error.
        """
        d = self.start(["-v", "hi"])
        self.reactor.advance(0.002)
        protocol, _ = accept(self.reactor)
        self.reactor.advance(0.003)
        protocol.dataReceived(b"hi")
        self.successResultOf(d)
        self.assertEqual(
            self.stderr.getvalue(),
            b"echotwist-client: connected to tcp:host=127.0.0.1:port=9000 in "
            b"2.000 ms; 2 bytes echoed in 3.000 ms\n",
        )

    def assertExits(self, d: Deferred[None], code: int, text: str) -> None:
        """
        Assert that C{d} failed with a L{ClientExit} of C{code} whose message
        contains C{text}, and that nothing went to standard output.
        """
        failure = self.failureResultOf(d, ClientExit)
        self.assertEqual(failure.value.code, code)
        self.assertIn(text, str(failure.value))
        self.assertEqual(self.stdout.getvalue(), b"")

    def test_cannotConnect(self) -> None:
        """
        A refused connection exits 1, naming the target and the reason.
        """
        d = self.start(["hi"])
        self.reactor.tcpClients[-1][2].clientConnectionFailed(
            self.reactor.connectors[-1], Failure(ConnectionRefusedError())
        )
        self.assertExits(d, EXIT_CONNECT, "cannot connect to tcp:host=127.0.0.1")

    def test_timeout(self) -> None:
        """
        No complete echo in time exits 3.
        """
        d = self.start(["--timeout", "2", "hi"])
        accept(self.reactor)
        self.reactor.advance(2)
        self.assertExits(d, EXIT_TIMEOUT, "no complete echo within 2 s")

    def test_mismatch(self) -> None:
        """
        An echo that differs exits 4.
        """
        d = self.start(["hi"])
        protocol, _ = accept(self.reactor)
        protocol.dataReceived(b"ho")
        self.assertExits(d, EXIT_MISMATCH, "echo differs at byte 1")

    def test_short(self) -> None:
        """
        An echo cut short exits 4.
        """
        d = self.start(["hi"])
        protocol, _ = accept(self.reactor)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertExits(d, EXIT_MISMATCH, "closed after 0 of 2")

    def test_invalidHostname(self) -> None:
        """
        A C{--host} that is not a valid host name exits 1, not with
        L{HostnameEndpoint}'s L{ValueError}.
        """
        args = build_parser().parse_args(["--host", "a..b", "hi"])
        d = Deferred.fromCoroutine(
            run(self.reactor, args, io.BytesIO(), self.stdout, self.stderr)
        )
        self.assertExits(d, EXIT_CONNECT, "cannot connect to a..b:9000: invalid")

    def test_badEndpoint(self) -> None:
        """
        An endpoint description Twisted can't parse exits 2.
        """
        args = build_parser().parse_args(["--connect", "nosuch:x", "hi"])
        d = Deferred.fromCoroutine(
            run(self.reactor, args, io.BytesIO(), self.stdout, self.stderr)
        )
        self.assertExits(d, EXIT_USAGE, "--connect 'nosuch:x'")


@implementer(IResolutionReceiver)
class RecordingReceiver:
    """
    Record a resolution's events.

    @ivar events: C{"began"}, each address, and C{"complete"}, in order.
    """

    def __init__(self) -> None:
        self.events: list[object] = []

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """
        Record the start, with the name resolved.
        """
        self.events.append(("began", resolutionInProgress.name))

    def addressResolved(self, address: IAddress) -> None:
        """
        Record an address.
        """
        self.events.append(address)

    def resolutionComplete(self) -> None:
        """
        Record the end.
        """
        self.events.append("complete")


class EncodableNamesResolverTests(SynchronousTestCase):
    """
    Tests for L{EncodableNamesResolver}, around a resolver that answers
    127.0.0.1 for every name.
    """

    def resolve(self, name: str) -> list[object]:
        """
        @return: the events of resolving C{name}.
        """
        receiver = RecordingReceiver()
        resolver = EncodableNamesResolver(LoopbackResolver())
        resolver.resolveHostName(receiver, name, 7)
        return receiver.events

    def test_unencodableName(self) -> None:
        """
        A name C{getaddrinfo} can't encode has no address, at once, without
        asking the inner resolver (whose thread would never answer).
        """
        self.assertEqual(self.resolve("a..b"), [("began", "a..b"), "complete"])

    def test_otherNames(self) -> None:
        """
        Every other name goes to the inner resolver.
        """
        self.assertEqual(
            self.resolve("example.com"),
            [("began", "example.com"), IPv4Address("TCP", "127.0.0.1", 7), "complete"],
        )
