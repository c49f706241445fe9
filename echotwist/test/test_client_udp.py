"""
Tests for L{echotwist.client.udp} and the client's C{--udp} option.
"""

from __future__ import annotations

import io

from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError, DNSLookupError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from echotwist.client import EchoMismatch, EchoTimeout
from echotwist.client.__main__ import build_parser
from echotwist.client.exits import EXIT_CONNECT, EXIT_TIMEOUT, ClientExit
from echotwist.client.oneshot import run, run_udp
from echotwist.client.udp import MAX_DATAGRAM, UDPEchoClientProtocol, echo_udp
from echotwist.test.test_udp import FakeDatagramTransport

SERVER = ("127.0.0.1", 7007)


class FakeUDPReactor(Clock):
    """
    A clock that also listens on fake UDP ports and resolves names only when
    the test says.

    @ivar listening: C{(port, protocol, interface, maxPacketSize)} for each
        C{listenUDP}.
    @ivar listen_error: raised by C{listenUDP} if set.
    @ivar transport: what every listening protocol writes to.
    @ivar resolving: the L{Deferred} handed out for each name resolved.
    @ivar stopped: how many ports have stopped listening.
    """

    def __init__(self) -> None:
        super().__init__()
        self.listening: list[tuple[int, DatagramProtocol, str, int]] = []
        self.listen_error: Exception | None = None
        self.transport = FakeDatagramTransport()
        self.resolving: dict[str, Deferred[str]] = {}
        self.stopped = 0

    def resolve(self, name: str) -> Deferred[str]:
        """
        @return: a L{Deferred} for C{name}'s address, fired by the test.
        """
        return self.resolving.setdefault(name, Deferred())

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> FakeUDPReactor:
        """
        Start C{protocol} on L{transport} at once, as Twisted does.

        @return: this reactor, standing in for the port.
        """
        if self.listen_error is not None:
            raise self.listen_error
        self.listening.append((port, protocol, interface, maxPacketSize))
        protocol.makeConnection(self.transport)  # type: ignore[arg-type]
        return self

    def stopListening(self) -> None:
        """
        Count a port stopped.
        """
        self.stopped += 1


def start(
    clock: Clock, retries: int = 2
) -> tuple[UDPEchoClientProtocol, FakeDatagramTransport]:
    """
    @return: a started client protocol sending C{b"ping"} and its transport.
    """
    protocol = UDPEchoClientProtocol(b"ping", *SERVER, clock, 1.0, retries)
    transport = FakeDatagramTransport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.startProtocol()
    return protocol, transport


class UDPEchoClientProtocolTests(SynchronousTestCase):
    """
    Tests for L{UDPEchoClientProtocol}.
    """

    def test_echo(self) -> None:
        """
        The datagram is sent to the server and the same bytes back finish
        the echo, with no timer left.
        """
        clock = Clock()
        protocol, transport = start(clock)
        self.assertEqual(transport.written, [(b"ping", SERVER)])
        protocol.datagramReceived(b"ping", SERVER)
        self.assertEqual(self.successResultOf(protocol.finished), b"ping")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_retriesThenTimeout(self) -> None:
        """
        Without a reply the datagram is sent again each timeout, C{retries}
        times, then the echo fails with L{EchoTimeout}.
        """
        clock = Clock()
        protocol, transport = start(clock, retries=2)
        clock.advance(1.0)
        clock.advance(1.0)
        self.assertEqual(len(transport.written), 3)
        self.assertNoResult(protocol.finished)
        clock.advance(1.0)
        self.failureResultOf(protocol.finished, EchoTimeout)
        self.assertEqual(len(transport.written), 3)

    def test_oneTry(self) -> None:
        """
        With no retries, the timeout says it was one try.
        """
        clock = Clock()
        protocol, _ = start(clock, retries=0)
        clock.advance(1.0)
        failure = self.failureResultOf(protocol.finished, EchoTimeout)
        self.assertEqual(str(failure.value), "no complete echo within 1 s (1 try)")

    def test_lateReplyAfterRetry(self) -> None:
        """
        A reply arriving after a retry still completes the echo.
        """
        clock = Clock()
        protocol, _ = start(clock)
        clock.advance(1.0)
        protocol.datagramReceived(b"ping", SERVER)
        self.assertEqual(self.successResultOf(protocol.finished), b"ping")

    def test_otherSenderIgnored(self) -> None:
        """
        A datagram from anywhere but the server is ignored.
        """
        protocol, _ = start(Clock())
        protocol.datagramReceived(b"pong", ("127.0.0.1", 9999))
        self.assertNoResult(protocol.finished)

    def test_addressesComparedAsAddresses(self) -> None:
        """
        A reply from C{::1} answers a datagram sent to C{::0001}: the same
        address, written another way.
        """
        protocol = UDPEchoClientProtocol(b"ping", "::0001", 7007, Clock(), 1.0, 0)
        transport = FakeDatagramTransport()
        protocol.transport = transport  # type: ignore[assignment]
        protocol.startProtocol()
        self.assertEqual(transport.written, [(b"ping", ("::1", 7007))])
        protocol.datagramReceived(b"pong", ("::2", 7007, 0, 0))
        self.assertNoResult(protocol.finished)
        protocol.datagramReceived(b"ping", ("::1", 7007, 0, 0))
        self.assertEqual(self.successResultOf(protocol.finished), b"ping")

    def test_mismatch(self) -> None:
        """
        A different reply fails the echo with the offset of the difference.
        """
        protocol, _ = start(Clock())
        protocol.datagramReceived(b"pint", SERVER)
        failure = self.failureResultOf(protocol.finished, EchoMismatch)
        self.assertEqual(failure.value.offset, 3)


class EchoUDPTests(SynchronousTestCase):
    """
    Tests for L{echo_udp}.
    """

    def test_wholeLargeDatagram(self) -> None:
        """
        The client's port reads datagrams of up to 65,535 bytes, not
        Twisted's default 8,192, so a long echo is not cut short; the port
        stops once the echo is back.
        """
        reactor = FakeUDPReactor()
        data = bytes(range(256)) * 40
        d = Deferred.fromCoroutine(echo_udp(reactor, *SERVER, data))
        [(_, protocol, interface, size)] = reactor.listening
        self.assertEqual((interface, size), ("0.0.0.0", 65535))
        protocol.datagramReceived(data, SERVER)
        self.assertEqual(self.successResultOf(d), data)
        self.assertEqual(reactor.stopped, 1)


class RunUDPTests(SynchronousTestCase):
    """
    Tests for the command line's C{--udp} checks.
    """

    def setUp(self) -> None:
        self.reactor = FakeUDPReactor()
        self.stdout = io.BytesIO()

    def start(self, *argv: str) -> Deferred[None]:
        """
        Run the command line with C{--udp} against the fake reactor.
        """
        args = build_parser().parse_args(["--udp", *argv])
        return Deferred.fromCoroutine(
            run(self.reactor, args, io.BytesIO(), self.stdout, io.BytesIO())
        )

    def test_printsEcho(self) -> None:
        """
        The echo is printed with a newline, as over TCP.
        """
        d = self.start("--host", "127.0.0.1", "--port", "7007", "ping")
        [(_, protocol, _, _)] = self.reactor.listening
        protocol.datagramReceived(b"ping", SERVER)
        self.successResultOf(d)
        self.assertEqual(self.stdout.getvalue(), b"ping\n")

    def test_timeoutCountsTries(self) -> None:
        """
        No reply to any try exits 3, saying how many tries were made.
        """
        d = self.start("--host", "127.0.0.1", "--timeout", "1", "--retries", "1", "x")
        self.reactor.advance(1)
        self.reactor.advance(1)
        failure = self.failureResultOf(d, ClientExit)
        self.assertEqual(failure.value.code, EXIT_TIMEOUT)
        self.assertEqual(
            str(failure.value),
            "udp:127.0.0.1:9000: no complete echo within 2 s (2 tries)",
        )
        self.assertEqual(self.reactor.stopped, 1)

    def assertExits(self, d: Deferred[None], code: int, message: str) -> None:
        """
        Assert that C{d} failed with a L{ClientExit} of C{code} and
        C{message}, and that nothing went to standard output.
        """
        failure = self.failureResultOf(d, ClientExit)
        self.assertEqual((failure.value.code, str(failure.value)), (code, message))
        self.assertEqual(self.stdout.getvalue(), b"")

    def test_sendRefused(self) -> None:
        """
        A datagram the OS will not send (to a broadcast address, say) exits
        1 with the OS's reason, and the port is closed.
        """
        self.reactor.transport.error = PermissionError(13, "Permission denied")
        d = self.start("--host", "255.255.255.255", "hi")
        self.assertExits(
            d,
            EXIT_CONNECT,
            "cannot connect to udp:255.255.255.255:9000: Permission denied",
        )
        self.assertEqual(self.reactor.stopped, 1)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cannotListen(self) -> None:
        """
        No UDP port to send from (say, C{::1} where IPv6 is off) exits 1.
        """
        self.reactor.listen_error = CannotListenError(
            "::", 0, OSError(97, "Address family not supported by protocol")
        )
        d = self.start("--host", "::1", "hi")
        self.assertExits(
            d,
            EXIT_CONNECT,
            "cannot connect to udp:::1:9000: Address family not supported by protocol",
        )

    def test_resolved(self) -> None:
        """
        A host name is resolved first, and the datagram sent to its address.
        """
        d = self.start("--host", "echo.test", "--port", "7007", "ping")
        self.assertEqual(self.reactor.listening, [])
        self.reactor.resolving["echo.test"].callback("127.0.0.1")
        [(_, protocol, _, _)] = self.reactor.listening
        self.assertEqual(self.reactor.transport.written, [(b"ping", SERVER)])
        protocol.datagramReceived(b"ping", SERVER)
        self.successResultOf(d)
        self.assertEqual(self.stdout.getvalue(), b"ping\n")

    def test_nameNotFound(self) -> None:
        """
        A host name with no address exits 1.
        """
        d = self.start("--host", "nosuch.test", "hi")
        self.reactor.resolving["nosuch.test"].errback(DNSLookupError("nosuch.test"))
        self.assertExits(
            d, EXIT_CONNECT, "cannot connect to udp:nosuch.test:9000: name not found"
        )

    def test_resolutionTimeout(self) -> None:
        """
        A host name not resolved within C{--timeout} exits 3, and the
        resolution is abandoned.
        """
        d = self.start("--host", "slow.test", "--timeout", "2", "hi")
        self.reactor.advance(1.9)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        self.assertExits(
            d, EXIT_TIMEOUT, "udp:slow.test:9000: no address for slow.test within 2 s"
        )
        self.assertEqual(self.reactor.listening, [])
        self.reactor.resolving["slow.test"].callback("127.0.0.1")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_tooLarge(self) -> None:
        """
        A message over one datagram is a usage error (exit 2).
        """
        args = build_parser().parse_args(["--udp", "-"])
        data = b"x" * (MAX_DATAGRAM + 1)
        failure = self.failureResultOf(
            Deferred.fromCoroutine(run_udp(Clock(), args, data)), ClientExit
        )
        self.assertEqual(failure.value.code, 2)

    def test_connectRefused(self) -> None:
        """
        C{--udp} with C{--connect} is a usage error (exit 2).
        """
        args = build_parser().parse_args(["--udp", "--connect", "tcp:a:1", "x"])
        failure = self.failureResultOf(
            Deferred.fromCoroutine(run_udp(Clock(), args, b"x")), ClientExit
        )
        self.assertEqual(failure.value.code, 2)

    def test_retriesParsed(self) -> None:
        """
        C{--retries} takes a count from 0 to 100 only.
        """
        self.assertEqual(build_parser().parse_args(["--retries", "0", "x"]).retries, 0)
        for bad in ["-1", "101", "two"]:
            with self.assertRaises(SystemExit):
                build_parser().parse_args(["--retries", bad, "x"])
