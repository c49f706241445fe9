"""
Tests for L{echotwist._twisted_private}: a canary per private or undocumented
Twisted name echotwist relies on, failing with a message that names it and
what in echotwist depends on it; and the copy of L{EPollReactor.doPoll}, one
poll of an L{EchoReactor} instance that is never installed nor run.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from functools import partial
from typing import Any, cast

from twisted.application import app
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import main, posixbase, tcp, unix
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import fail
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.interfaces import IHalfCloseableDescriptor, IHalfCloseableProtocol
from twisted.internet.posixbase import _PollLikeMixin
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.testing import MemoryReactor, MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, LogEvent, capturedLogs
from twisted.python.failure import Failure
from twisted.scripts import twistd
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer

import twisted
from echotwist import _twisted_private as private
from echotwist.server.reactor import EchoReactor
from echotwist.test.support import BareTLSContext, proxy_v2_header

#: The SHA-256 of C{inspect.getsource(EPollReactor.doPoll)} in each Twisted
#: release whose C{doPoll} L{private.EPollReactorWithoutLogContext} was
#: reviewed against.
REVIEWED_DO_POLL = {
    "24.7.0": "09b62ae68ef01b4b",
    "26.10.0": "09b62ae68ef01b4b",
}


#: The same for L{_PollLikeMixin._doReadOrWrite}, whose work for a plain
#: read event the copy does inline.
REVIEWED_DO_READ_OR_WRITE = {
    "24.7.0": "5ffee55b79492b00",
    "26.10.0": "5ffee55b79492b00",
}


def canary(test: SynchronousTestCase, holds: bool, name: str, dependent: str) -> None:
    """
    Fail, naming the Twisted name and what relies on it, unless C{holds}.

    @param test: the test case.
    @param holds: whether the installed Twisted still behaves as expected.
    @param name: the private or undocumented Twisted name.
    @param dependent: what in echotwist relies on it.
    """
    if not holds:
        test.fail(
            f"Twisted {twisted.__version__}: {name} is gone or has changed; "
            f"{dependent} relies on it (see echotwist/_twisted_private.py)"
        )


def connection_pair(
    test: SynchronousTestCase,
) -> tuple[tcp.Connection, socket.socket]:
    """
    @return: a Twisted connection on one end of a socket pair (driven by a
        L{MemoryReactorClock}), and the other end, both non-blocking.
    """
    ours, theirs = socket.socketpair()
    for end in ours, theirs:
        end.setblocking(False)
        test.addCleanup(end.close)
    connection = tcp.Connection(ours, Protocol(), MemoryReactorClock())
    connection.connected = True
    return connection, theirs


def drained(peer: socket.socket) -> int:
    """
    @return: how many bytes the peer could read now.
    """
    count = 0
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return count
        if not chunk:
            return count
        count += len(chunk)


class ConnectionCanaryTests(SynchronousTestCase):
    """
    Canaries for what echotwist reads of L{tcp.Connection}.
    """

    def test_writeBuffer(self) -> None:
        """
        C{transport.write} keeps what it could not send yet in C{dataBuffer}
        (from C{offset}) and C{_tempDataLen}: L{private.unsent_bytes} counts
        it, and L{private.send} writes straight to the socket only when both
        are empty.
        """
        dependent = (
            "echotwist.server.fastpath's send and the unsent count of Echo's "
            "disconnect line and idle timeout"
        )
        connection, peer = connection_pair(self)
        canary(
            self,
            connection.dataBuffer == b"" and connection._tempDataLen == 0,
            "FileDescriptor.dataBuffer/_tempDataLen",
            dependent,
        )
        data = b"x" * (8 << 20)
        connection.write(data)
        canary(
            self,
            connection._tempDataLen == len(data),
            "FileDescriptor._tempDataLen",
            dependent,
        )
        connection.doWrite()
        received = drained(peer)
        canary(
            self,
            0 < len(connection.dataBuffer) - connection.offset == len(data) - received,
            "FileDescriptor.dataBuffer/offset",
            dependent,
        )
        self.assertEqual(private.unsent_bytes(connection), len(data) - received)

    def test_socket(self) -> None:
        """
        A connection's C{socket} is the socket C{getHandle} returns.
        """
        connection, _peer = connection_pair(self)
        canary(
            self,
            getattr(connection, "socket", None) is connection.getHandle(),
            "Connection.socket",
            "echotwist.server.fastpath's send",
        )

    def test_tls(self) -> None:
        """
        C{TLS} is false on a plain connection and true once TLS is started.
        """
        ours, theirs = socket.socketpair()
        for end in ours, theirs:
            self.addCleanup(end.close)
        connection = tcp.Server(
            ours,
            Protocol(),
            ("127.0.0.1", 57854),
            None,  # type: ignore[arg-type]
            0,
            MemoryReactorClock(),
        )
        dependent = "echotwist.server.fastpath (no direct writes under TLS)"
        canary(self, connection.TLS is False, "Connection.TLS", dependent)
        self.assertFalse(private.tls_started(connection))
        connection.startTLS(BareTLSContext())
        canary(self, bool(connection.TLS), "Connection.TLS", dependent)
        self.assertTrue(private.tls_started(connection))

    def test_plainDoRead(self) -> None:
        """
        TCP connections read with L{tcp.Connection.doRead} itself, and UNIX
        server connections (which also receive descriptors) override it.
        """
        dependent = "echotwist.server.fastpath's can_read_directly"
        canary(
            self,
            tcp.Server.doRead is tcp.Connection.doRead,
            "tcp.Connection.doRead (tcp.Server's)",
            dependent,
        )
        unix_do_read: object = unix.Server.doRead
        canary(
            self,
            unix_do_read is not tcp.Connection.doRead,
            "unix.Server.doRead",
            dependent,
        )
        connection, _peer = connection_pair(self)
        self.assertTrue(private.has_plain_do_read(connection))

    def test_doReadPerInstance(self) -> None:
        """
        The reactor (Twisted's epoll one, and ours) calls the C{doRead} set
        on the connection itself, and forgetting it brings back the class's.
        """
        for reactor_type in EPollReactor, EchoReactor:
            reactor = reactor_type()
            self.addCleanup(reactor._poller.close)
            connection, peer = connection_pair(self)
            connection.reactor = reactor
            called: list[object] = []
            connection.doRead = partial(called.append, None)  # type: ignore[method-assign]
            connection.startReading()
            peer.send(b"x")
            reactor.doPoll(1)
            connection.stopReading()
            canary(
                self,
                called == [None],
                f"{reactor_type.__name__}'s call of the instance's doRead",
                "echotwist.server.protocol's direct reads (DirectEcho)",
            )
            del connection.doRead
            self.assertIs(connection.doRead.__func__, tcp.Connection.doRead)  # type: ignore[attr-defined]

    def test_readDirectly(self) -> None:
        """
        L{private.read_directly} has a L{private.DirectEcho} read and echo
        for its connection on either reactor, and
        L{private.stop_reading_directly} brings back the connection's own
        C{doRead} and forgets the L{private.DirectEcho}.
        """
        for reactor_type in EPollReactor, EchoReactor:
            reactor = reactor_type()
            self.addCleanup(reactor._poller.close)
            connection, peer = connection_pair(self)
            connection.reactor = reactor
            echo = private.DirectEcho(connection)
            private.read_directly(echo)
            connection.startReading()
            peer.send(b"ping")
            reactor.doPoll(1)
            self.assertEqual((peer.recv(10), echo.bytes_in), (b"ping", 4))
            connection.stopReading()
            private.stop_reading_directly(echo)
            self.assertNotIn("doRead", vars(connection))
            self.assertEqual(getattr(reactor, "_direct_echoes", {}), {})


class EPollReactorCanaryTests(SynchronousTestCase):
    """
    Canaries for the copy of L{EPollReactor.doPoll}.
    """

    def test_doPollUnchanged(self) -> None:
        """
        Twisted's own C{doPoll} is one that our copy was reviewed against.
        """
        source = inspect.getsource(EPollReactor.doPoll)
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        if digest not in REVIEWED_DO_POLL.values():
            self.fail(
                f"Twisted {twisted.__version__}: EPollReactor.doPoll has changed "
                f"(sha256 {digest}); echotwist._twisted_private."
                "EPollReactorWithoutLogContext.doPoll (the echotwist-epoll "
                "reactor) is a copy of it: review the copy, then add the hash "
                "to REVIEWED_DO_POLL"
            )

    def test_doReadOrWriteUnchanged(self) -> None:
        """
        Twisted's own C{_doReadOrWrite}, whose work for a plain read event
        the copy does inline, is one that the copy was reviewed against.
        """
        source = inspect.getsource(_PollLikeMixin._doReadOrWrite)
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        if digest not in REVIEWED_DO_READ_OR_WRITE.values():
            self.fail(
                f"Twisted {twisted.__version__}: _PollLikeMixin._doReadOrWrite "
                f"has changed (sha256 {digest}); echotwist._twisted_private."
                "EPollReactorWithoutLogContext.doPoll does its work for a read "
                "event inline: review the copy, then add the hash to "
                "REVIEWED_DO_READ_OR_WRITE"
            )

    def test_pollerAttributes(self) -> None:
        """
        An epoll reactor has the C{_poller}, C{_selectables} and
        C{_doReadOrWrite} the copy uses.
        """
        reactor = EPollReactor()
        self.addCleanup(reactor._poller.close)
        for name, holds in [
            (
                "_poller",
                callable(getattr(getattr(reactor, "_poller", None), "poll", None)),
            ),
            ("_selectables", isinstance(getattr(reactor, "_selectables", None), dict)),
            ("_doReadOrWrite", callable(getattr(reactor, "_doReadOrWrite", None))),
        ]:
            canary(
                self,
                holds,
                f"EPollReactor.{name}",
                "the echotwist-epoll reactor's doPoll",
            )


class Reader(FileDescriptor):
    """
    A selectable that reads one end of a socket pair and records what it
    read; or, told to fail, raises from C{doRead} and again from
    C{connectionLost}, so that an error escapes the reactor's own handling.
    """

    def __init__(self, reactor: EchoReactor, sock: socket.socket, fail: bool) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.fail = fail
        self.read: list[bytes] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        if self.fail:
            raise ZeroDivisionError("boom")
        self.read.append(self.sock.recv(100))

    def connectionLost(self, reason: object) -> None:
        """
        Forget the descriptor, as a transport does when it closes.
        """
        self.stopReading()
        if self.fail:
            raise RuntimeError("connectionLost failed too")


class EchoReactorTests(SynchronousTestCase):
    """
    Tests for L{EchoReactor.doPoll}.
    """

    def reader(self, reactor: EchoReactor, fail: bool = False) -> Reader:
        """
        @return: a L{Reader} watched by C{reactor}, with a byte waiting.
        """
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        reader = Reader(reactor, ours, fail)
        reader.startReading()
        theirs.send(b"x")
        return reader

    def recording_reactor(
        self,
    ) -> tuple[EchoReactor, list[tuple[object, object, bool]]]:
        """
        @return: a reactor that records each disconnection (the selectable,
            why, whether on reading) instead of making it, and the record.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        ended: list[tuple[object, object, bool]] = []

        def disconnect(selectable: object, why: object, is_read: bool) -> None:
            ended.append((selectable, why, is_read))

        reactor._disconnectSelectable = disconnect  # type: ignore[method-assign,assignment]
        return reactor, ended

    def test_dispatchesEvents(self) -> None:
        """
        A readable descriptor's C{doRead} is called.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        reader = self.reader(reactor)
        reactor.doPoll(1)
        self.assertEqual(reader.read, [b"x"])

    def test_errorIsLoggedAndOthersStillServed(self) -> None:
        """
        An exception escaping an event's handling is logged with its
        traceback, and the other events of the same poll are still served.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        bad = self.reader(reactor, fail=True)
        good = self.reader(reactor)
        with capturedLogs() as events:
            reactor.doPoll(1)
        self.assertEqual(good.read, [b"x"])
        self.assertNotIn(bad, reactor.getReaders())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn(
            "Error handling an event", [e.get("log_format", "")[:23] for e in events]
        )

    def test_readEndsConnection(self) -> None:
        """
        A C{doRead} that returns why its connection ended has it
        disconnected, as a read (a clean close is a half-close for a
        half-closeable descriptor); a descriptor already gone is
        disconnected without being read.
        """
        reactor, ended = self.recording_reactor()
        reader = self.reader(reactor)
        reader.doRead = lambda: main.CONNECTION_DONE  # type: ignore[method-assign,assignment]
        reactor.doPoll(1)
        self.assertEqual(ended, [(reader, main.CONNECTION_DONE, True)])
        del ended[:]
        reader.fileno = lambda: -1  # type: ignore[method-assign]
        reactor.doPoll(1)
        self.assertEqual(len(ended), 1)
        self.assertIs(ended[0][1], posixbase._NO_FILEDESC)

    def direct_echo(
        self, reactor: EchoReactor
    ) -> tuple[private.DirectEcho, socket.socket]:
        """
        @return: a L{private.DirectEcho} for a connection that C{reactor}
            reads, added with L{private.read_directly}, and the
            connection's peer.
        """
        connection, peer = connection_pair(self)
        connection.reactor = reactor
        echo = private.DirectEcho(connection)
        private.read_directly(echo)
        connection.startReading()
        return echo, peer

    def test_directEchoCalledWithoutTheConnection(self) -> None:
        """
        A read event on a connection that a L{private.DirectEcho} reads for
        is handled by the L{private.DirectEcho}, which echoes, without the
        connection's C{fileno} or C{doRead} being looked up.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        echo, peer = self.direct_echo(reactor)
        looked_up: list[str] = []

        def fileno() -> int:
            looked_up.append("fileno")
            return -1

        echo.connection.fileno = fileno
        echo.connection.doRead = partial(looked_up.append, "doRead")  # type: ignore[method-assign]
        peer.send(b"ping")
        reactor.doPoll(1)
        self.assertEqual((peer.recv(10), looked_up), (b"ping", []))

    def test_reusedDescriptorNotReadForOldConnection(self) -> None:
        """
        Once another selectable is watched on a L{private.DirectEcho}'s
        descriptor (as when a closed connection's descriptor is reused), a
        read event there goes to that selectable, not to the
        L{private.DirectEcho}.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        echo, peer = self.direct_echo(reactor)
        echo.connection.stopReading()
        newcomer = Reader(reactor, echo.connection.socket, fail=False)
        newcomer.startReading()
        peer.send(b"x")
        reactor.doPoll(1)
        self.assertEqual(newcomer.read, [b"x"])
        self.assertEqual(drained(peer), 0)

    def test_directEchoEndsConnection(self) -> None:
        """
        A L{private.DirectEcho} that reads the end of the stream has its
        connection disconnected, as a read.
        """
        reactor, ended = self.recording_reactor()
        echo, peer = self.direct_echo(reactor)
        peer.shutdown(socket.SHUT_WR)
        reactor.doPoll(1)
        self.assertEqual(ended, [(echo.connection, private.CLOSED_AFTER_ECHO, True)])

    def test_directEchoErrorLogged(self) -> None:
        """
        An exception from a L{private.DirectEcho} is logged and its
        connection disconnected with it; the other events of the same poll
        are still served.
        """
        reactor, ended = self.recording_reactor()
        echo, peer = self.direct_echo(reactor)
        echo.fd = None  # type: ignore[assignment]
        good = self.reader(reactor)
        peer.send(b"x")
        reactor.doPoll(1)
        self.assertEqual(good.read, [b"x"])
        [(selectable, why, _is_read)] = ended
        self.assertIs(selectable, echo.connection)
        self.assertIsInstance(why, TypeError)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_removeOnlyItsOwnDirectEcho(self) -> None:
        """
        Removing a L{private.DirectEcho} leaves another one added since for
        the same descriptor.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        old, peer = self.direct_echo(reactor)
        new = private.DirectEcho(old.connection)
        reactor.add_direct_echo(new)
        reactor.remove_direct_echo(old)
        peer.send(b"ping")
        reactor.doPoll(1)
        self.assertEqual(peer.recv(10), b"ping")
        self.assertEqual((old.bytes_in, new.bytes_in), (0, 4))
        reactor.remove_direct_echo(new)
        self.assertEqual(reactor._direct_echoes, {})

    def test_writeEventsDispatched(self) -> None:
        """
        An event other than a plain read (here a writable socket) goes to
        C{_doReadOrWrite}, as in Twisted's own C{doPoll}.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        reader = self.reader(reactor)
        written: list[bool] = []
        reader.doWrite = lambda: written.append(True)  # type: ignore[method-assign]
        reader.startWriting()
        reactor.doPoll(1)
        self.assertEqual((reader.read, written), ([b"x"], [True]))

    def test_keyboardInterruptPropagates(self) -> None:
        """
        A L{KeyboardInterrupt} escaping an event's handling is not swallowed
        (as with Twisted's own reactors): it ends the poll, so Ctrl-C works.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        reader = self.reader(reactor, fail=True)

        def interrupted(reason: object) -> None:
            reader.stopReading()
            raise KeyboardInterrupt()

        reader.connectionLost = interrupted  # type: ignore[method-assign]
        self.assertRaises(KeyboardInterrupt, reactor.doPoll, 1)
        self.flushLoggedErrors(ZeroDivisionError)


class _Listener:
    """
    A listening socket whose C{accept} fails as told, then has no more.

    @ivar errors: the errors C{accept} raises, in turn; a C{(socket,
        address)} pair among them is accepted instead.
    """

    def __init__(self, *errors: object) -> None:
        self.errors = list(errors)

    def accept(self) -> object:
        if not self.errors:
            raise OSError(errno.EAGAIN, "no more")
        outcome = self.errors.pop(0)
        if isinstance(outcome, OSError):
            raise outcome
        return outcome


class _Reservation:
    """
    A reserved descriptor that is always available to release.
    """

    def available(self) -> bool:
        return True

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc_info: object) -> None:
        pass


class PortCanaryTests(SynchronousTestCase):
    """
    Canaries for what echotwist reads of L{tcp.Port}.
    """

    def port_events(self, *errors: object) -> list[LogEvent]:
        """
        @param errors: what the port's C{accept} meets in turn.
        @return: the events the port logged while accepting, through
            L{private.route_port_log}.
        """
        port = tcp.Port(0, Factory(), interface="127.0.0.1", reactor=MemoryReactor())
        events: list[LogEvent] = []
        private.route_port_log(port, cast(ILogObserver, events.append))
        port.socket = _Listener(*errors)
        port.numberAccepts = 10
        port.doRead()
        return events

    def test_logger(self) -> None:
        """
        A port logs its accept errors through its C{_logger}.
        """
        events = self.port_events(OSError(errno.ENOBUFS, "no buffers"))
        canary(
            self,
            len(events) == 1,
            "tcp.Port._logger",
            "echotwist.server.accept_errors (the summary of descriptor exhaustion)",
        )

    def test_acceptFailedFormat(self) -> None:
        """
        A connection that could not be accepted is logged with
        L{private.ACCEPT_FAILED}.
        """
        [event] = self.port_events(OSError(errno.ENOBUFS, "no buffers"))
        canary(
            self,
            event.get("log_format") == private.ACCEPT_FAILED,
            f"tcp.Port's log format {private.ACCEPT_FAILED!r}",
            "echotwist.server.accept_errors (else the log floods again)",
        )

    def test_emfileFormats(self) -> None:
        """
        Out of descriptors, the port closes what it accepts, logging
        L{private.ACCEPT_CLOSED} for each between the two
        L{private.ACCEPT_QUIET} events.
        """
        self.patch(tcp, "_reservedFD", _Reservation())
        client = socket.socket()
        self.addCleanup(client.close)
        events = self.port_events(
            OSError(errno.EMFILE, "too many"), (client, ("127.0.0.1", 5))
        )
        formats = [event.get("log_format") for event in events]
        canary(
            self,
            len(formats) == 3
            and formats[1] == private.ACCEPT_CLOSED
            and {formats[0], formats[2]} == private.ACCEPT_QUIET,
            f"tcp.Port's EMFILE log formats (got {formats!r})",
            "echotwist.server.accept_errors (else the log floods again)",
        )

    def test_socket(self) -> None:
        """
        A TCP or UNIX port's C{socket} is its listening socket.
        """
        reactor = MemoryReactor()
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "echo.sock")
        for port in [
            tcp.Port(0, Factory(), interface="127.0.0.1", reactor=reactor),
            unix.Port(os.fsencode(path), Factory(), reactor=reactor),
        ]:
            port.startListening()
            sock: Any = getattr(port, "socket", None)
            self.addCleanup(sock.close)
            canary(
                self,
                isinstance(sock, socket.socket) and sock.fileno() == port.fileno(),
                f"{type(port).__module__}.Port.socket",
                "echotwist.server.workers (the sockets handed to workers)",
            )
            self.assertIs(private.listening_socket(port), sock)

    def test_closeWithoutShutdown(self) -> None:
        """
        A port told not to shut its socket down leaves it listening for
        another descriptor of it (another process's) once it stops.
        """
        reactor = MemoryReactorClock()
        port = tcp.Port(0, Factory(), interface="127.0.0.1", reactor=reactor)
        port.startListening()
        other = socket.socket(fileno=os.dup(port.fileno()))
        self.addCleanup(other.close)
        private.close_without_shutdown(port)
        port.stopListening()
        reactor.advance(0)
        with socket.socket() as client:
            client.settimeout(5)
            try:
                client.connect(other.getsockname())
            except OSError:
                listening = False
            else:
                listening = True
        canary(
            self,
            listening,
            "tcp.Port._shouldShutdown",
            "echotwist.server.workers (the parent closes its ports as it "
            "stops, without stopping its workers' sockets under them)",
        )

    def test_listenAtOnce(self) -> None:
        """
        The endpoints C{--workers} shares listen before C{listen} returns.
        """
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "echo.sock")
        for description in ["tcp:0", "tcp6:0", f"unix:{path}"]:
            endpoint = serverFromString(MemoryReactor(), description)
            listened: list[object] = []
            endpoint.listen(Factory()).addCallback(listened.append)
            canary(
                self,
                len(listened) == 1,
                f"{type(endpoint).__name__}.listen firing at once",
                "echotwist.server.workers (the parent listens for its workers)",
            )
            self.assertIsNotNone(private.listen_now(endpoint, Factory(), description))


class RoutePortLogTests(SynchronousTestCase):
    """
    Tests for L{private.route_port_log} beyond Twisted's ports.
    """

    def test_portWithoutLogger(self) -> None:
        """
        A port without Twisted's logger is handed back untouched.
        """
        port = self.successResultOf(
            TCP4ServerEndpoint(MemoryReactor(), 0).listen(Factory())
        )
        private.route_port_log(port, cast(ILogObserver, [].append))
        self.assertFalse(hasattr(port, "_logger"))


class ServiceCanaryTests(SynchronousTestCase):
    """
    Canaries for L{StreamServerEndpointService}.
    """

    def test_raiseSynchronously(self) -> None:
        """
        With C{_raiseSynchronously} set, a service whose endpoint can't
        listen raises from its start.
        """

        class Failing:
            def listen(self, factory: object) -> object:
                return fail(CannotListenError("127.0.0.1", 9, OSError("taken")))

        service = StreamServerEndpointService(Failing(), Factory())
        private.raise_listen_failures(service)
        try:
            service.privilegedStartService()
        except CannotListenError:
            raised = True
        else:
            raised = False
            self.flushLoggedErrors(CannotListenError)
        canary(
            self,
            raised,
            "StreamServerEndpointService._raiseSynchronously",
            "echotwist.server.listeners (a port that can't listen must stop "
            "twistd echo, not leave it running with no listener)",
        )


class OptionsCanaryTests(SynchronousTestCase):
    """
    Canaries for L{usage.Options}' getopt lists.
    """

    def test_optionGiven(self) -> None:
        """
        L{private.option_given} tells an option given, in full, abbreviated
        or as C{--name=value}, from its default, and stops at the subcommand.
        """
        from twisted.scripts._twistd_unix import ServerOptions

        options = ServerOptions()
        options.parseOptions(["-n", "--logfile=-", "web"])
        seen = [
            private.option_given(options, "pidfile", argv)
            for argv in (
                ["-n", "--pidfile", "x.pid", "echo"],
                ["-n", "--pidfile=", "echo"],
                ["-n", "--pidf=x.pid", "echo"],
                ["-n", "echo"],
                ["-n", "echo", "--pidfile=x.pid"],
            )
        ]
        canary(
            self,
            seen == [True, True, True, False, False],
            "usage.Options.shortOpt/longOpt",
            "echotwist.server.options (twistd -n echo writes no pidfile "
            "unless --pidfile is given)",
        )


class SignalCanaryTests(SynchronousTestCase):
    """
    Canaries for the order in which the reactor and twistd handle signals.
    """

    def test_exitSignal(self) -> None:
        """
        The reactor's SIGTERM handler records the signal, which twistd
        reads once the reactor stops to kill itself with it.
        """
        reactor = EPollReactor()
        self.addCleanup(reactor._poller.close)
        reactor.sigTerm(signal.SIGTERM, None)
        dependent = (
            "echotwist.server.shutdown (replaces the reactor's SIGTERM "
            "handler so that twistd exits 0)"
        )
        canary(
            self,
            getattr(reactor, "_exitSignal", None) == signal.SIGTERM,
            "ReactorBase._exitSignal",
            dependent,
        )
        canary(
            self,
            hasattr(app, "_exitWithSignal")
            and "_exitSignal" in inspect.getsource(twistd.runApp),
            "twisted.scripts.twistd.runApp's _exitSignal",
            dependent,
        )

    def test_handlersBeforeWhenRunning(self) -> None:
        """
        A running reactor has installed its signal handlers before the calls
        C{callWhenRunning} scheduled, so L{private.replace_sigterm_handler}
        replaces the reactor's SIGTERM handler.  (In a child process: the
        reactor's handlers are the process's.)
        """
        script = textwrap.dedent(
            """
            import signal
            from twisted.internet.selectreactor import SelectReactor
            from echotwist._twisted_private import replace_sigterm_handler

            def ours(signum, frame):
                pass

            reactor = SelectReactor()
            replace_sigterm_handler(reactor, ours)

            def check():
                print(signal.getsignal(signal.SIGTERM) is ours)
                reactor.stop()

            reactor.callWhenRunning(check)
            reactor.run()
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        canary(
            self,
            result.stdout.strip() == "True",
            "the reactor installing its signal handlers before callWhenRunning calls",
            "echotwist.server.shutdown (its SIGTERM handler must replace the "
            "reactor's)",
        )


class StatusPipeCanaryTests(SynchronousTestCase):
    """
    Canaries for twistd's status pipe, through which
    L{private.report_start_failure} tells a daemonising twistd's parent
    that the start failed.
    """

    def test_parentShowsTheLine(self) -> None:
        """
        twistd reports through its C{statusPipe} option, and its parent shows
        what L{private.report_start_failure} writes there and exits 1.
        """
        from twisted.scripts._twistd_unix import UnixApplicationRunner

        read, write = os.pipe()
        self.addCleanup(os.close, read)
        config = {"statusPipe": write, "pidfile": ""}
        self.assertTrue(private.report_start_failure(config, "--port 'x': no"))
        stderr = io.StringIO()
        self.patch(sys, "__stderr__", stderr)
        runner = UnixApplicationRunner({})
        code = runner._waitForStart(read)
        source = inspect.getsource(UnixApplicationRunner.postApplication)
        canary(
            self,
            code == 1
            and "--port 'x': no" in stderr.getvalue()
            and 'self.config.get("statusPipe"' in source,
            "twistd's statusPipe option and _waitForStart",
            "echotwist.server.tap.EchoService (a daemonised listener failure "
            "must reach twistd's parent as one line)",
        )


class HAProxyCanaryTests(SynchronousTestCase):
    """
    Canaries for L{twisted.protocols.haproxy}'s private parsers, which
    L{echotwist.server.proxy} reads headers with.
    """

    dependent = "echotwist.server.proxy (PROXY protocol ports)"

    def test_v1(self) -> None:
        """
        C{V1Parser.parse} reads a C{TCP4} or C{TCP6} v1 line without its
        CRLF into source and destination addresses.  (echotwist reads
        C{UNKNOWN} itself: Twisted's parser refuses a bare C{PROXY UNKNOWN}.)
        """
        try:
            source, destination = private.parse_proxy_v1(
                b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 9000"
            )
            six, _ = private.parse_proxy_v1(b"PROXY TCP6 ::7 ::1 5555 9000")
        except Exception:
            source = destination = six = None
        canary(
            self,
            source == IPv4Address("TCP", "192.0.2.7", 5555)
            and destination == IPv4Address("TCP", "10.0.0.1", 9000)
            and six == IPv6Address("TCP", "::7", 5555),
            "twisted.protocols.haproxy._v1parser.V1Parser.parse",
            self.dependent,
        )

    def test_v2(self) -> None:
        """
        C{V2Parser.parse} reads a whole v2 header, L{None} for C{LOCAL}, and
        C{V2Parser.PREFIX} is the v2 signature.
        """
        canary(
            self,
            private.PROXY_V2_SIGNATURE == b"\r\n\r\n\x00\r\nQUIT\n",
            "twisted.protocols.haproxy._v2parser.V2Parser.PREFIX",
            self.dependent,
        )
        try:
            source, _destination = private.parse_proxy_v2(proxy_v2_header())
            local = private.parse_proxy_v2(proxy_v2_header(command=0, family=0))
        except Exception:
            source, local = None, (1, 1)  # type: ignore[assignment]
        canary(
            self,
            source == IPv4Address("TCP", "192.0.2.7", 5555) and local == (None, None),
            "twisted.protocols.haproxy._v2parser.V2Parser.parse",
            self.dependent,
        )

    def test_error(self) -> None:
        """
        A header that is not one raises C{InvalidProxyHeader}.
        """
        raised: list[type[BaseException]] = []
        for parse, header in [
            (private.parse_proxy_v1, b"PROXI TCP4"),
            (private.parse_proxy_v2, b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00"),
        ]:
            try:
                parse(header)
            except Exception as e:
                raised.append(type(e))
        canary(
            self,
            len(raised) == 2
            and all(issubclass(e, private.ProxyHeaderError) for e in raised),
            "twisted.protocols.haproxy._exceptions.InvalidProxyHeader",
            self.dependent,
        )


class _Recorder(Protocol):
    """
    Record what a connection delivers.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.half_closed = False
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost = True


@implementer(IHalfCloseableProtocol)
class _HalfCloseRecorder(_Recorder):
    def readConnectionLost(self) -> None:
        self.half_closed = True

    def writeConnectionLost(self) -> None:
        pass


class ReplaceProtocolCanaryTests(SynchronousTestCase):
    """
    Canaries for setting C{Connection.protocol}: a PROXY port hands its
    connections to the echo that way.
    """

    dependent = "echotwist.server.proxy's hand-over to the echo after a header"

    def test_deliversToNewProtocol(self) -> None:
        """
        Data, a half-close and the loss are delivered to the protocol set
        last, and L{private.can_replace_protocol} accepts only a plain
        connection delivering to the given protocol.
        """
        connection, peer = connection_pair(self)
        first = _Recorder()
        connection.protocol = first
        self.assertTrue(private.can_replace_protocol(connection, first))
        self.assertFalse(private.can_replace_protocol(connection, Protocol()))
        self.assertFalse(private.can_replace_protocol(object(), first))
        second = _HalfCloseRecorder()
        private.replace_protocol(connection, second)
        peer.sendall(b"data")
        connection.doRead()
        peer.shutdown(socket.SHUT_WR)
        reason = connection.doRead()
        connection.readConnectionLost(Failure(reason))
        canary(
            self,
            first.received == []
            and second.received == [b"data"]
            and second.half_closed,
            "tcp.Connection.protocol",
            self.dependent,
        )
        connection.connectionLost(Failure(ConnectionDone()))
        canary(self, second.lost, "tcp.Connection.protocol", self.dependent)


class RequestBodyCanaryTests(SynchronousTestCase):
    """
    Canaries for the order in which L{twisted.web.http.HTTPChannel} hands a
    request its body, which L{echotwist.server.metrics.MetricsRequest}
    relies on to refuse a body before reading it (C{gotLength} is marked
    "not intended for users").
    """

    def test_gotLengthBeforeBody(self) -> None:
        """
        C{gotLength} is called once the headers are read, with the
        C{Content-Length} or L{None} for a chunked body, before any
        C{handleContentChunk}; C{requestReceived} once the body is whole.
        """
        from twisted.web.http import HTTPChannel, Request

        calls: list[object] = []

        class Recording(Request):
            def gotLength(self, length: int | None) -> None:
                calls.append(("gotLength", length))
                super().gotLength(length)

            def handleContentChunk(self, data: bytes) -> None:
                calls.append("chunk")
                super().handleContentChunk(data)

            def requestReceived(
                self, command: bytes, path: bytes, version: bytes
            ) -> None:
                calls.append("received")

        seen: list[object] = []
        for head in [b"Content-Length: 3", b"Transfer-Encoding: chunked"]:
            calls.clear()
            channel = HTTPChannel()
            channel.requestFactory = Recording
            channel.makeConnection(StringTransport())
            body = b"abc" if b"Length" in head else b"3\r\nabc\r\n0\r\n\r\n"
            channel.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n")
            seen.append(list(calls))
            channel.dataReceived(body)
            seen.append(calls[-1])
        canary(
            self,
            seen == [[("gotLength", 3)], "received", [("gotLength", None)], "received"],
            "HTTPChannel's calls of Request.gotLength and handleContentChunk",
            "echotwist.server.metrics.MetricsRequest (a metrics request's body "
            "must be refused before it is read)",
        )


class _Accepted(Protocol):
    """
    A protocol that records, in its factory's list, that it was connected.
    """

    factory: _AcceptedFactory

    def connectionMade(self) -> None:
        """
        Record the connection.
        """
        self.factory.made.append(self)


class _AcceptedFactory(Factory):
    """
    Build L{_Accepted} protocols and keep them.
    """

    protocol = _Accepted  # type: ignore[assignment]

    def __init__(self) -> None:
        self.made: list[_Accepted] = []


class QueuedAcceptsTests(SynchronousTestCase):
    """
    Tests for L{private.QueuedAccepts} in front of a real listening port, and
    the canary for what it relies on: L{tcp.Port.doRead} accepting through
    C{port.socket.accept()}.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.factory = _AcceptedFactory()
        self.port = tcp.Port(
            0, self.factory, interface="127.0.0.1", reactor=self.reactor
        )
        self.port.startListening()
        self.addCleanup(self.close)
        self.clients: list[socket.socket] = []

    def close(self) -> None:
        """
        Close the clients, the accepted connections and the port.
        """
        for client in self.clients:
            client.close()
        for protocol in self.factory.made:
            protocol.transport.getHandle().close()  # type: ignore[union-attr]
        self.port.socket.close()

    def connect(self, count: int) -> None:
        """
        Open C{count} connections to the port (the kernel completes them).
        """
        for _ in range(count):
            client = socket.socket()
            self.clients.append(client)
            client.settimeout(5)
            client.connect(self.port.socket.getsockname())

    def test_portAcceptsThroughItsSocket(self) -> None:
        """
        C{Port.doRead} accepts through C{port.socket.accept()}, so that a
        L{private.QueuedAccepts} put there serves every connection, in order.
        """
        self.assertTrue(private.queue_accepts(self.port, self.reactor))
        self.connect(5)
        self.port.doRead()
        canary(
            self,
            len(self.factory.made) == 5,
            "tcp.Port.doRead calling self.socket.accept()",
            "echotwist.server.listeners (the listen queue emptied in a storm)",
        )
        peers = [p.transport.getPeer().port for p in self.factory.made]  # type: ignore[union-attr]
        self.assertEqual(peers, [c.getsockname()[1] for c in self.clients])

    def test_drainsTheKernelQueue(self) -> None:
        """
        The first C{accept} takes every connection waiting in the kernel;
        those the port did not get to are served on the reactor's next turn.
        """
        private.queue_accepts(self.port, self.reactor)
        self.port.numberAccepts = 2
        self.connect(5)
        self.port.doRead()
        self.assertEqual(len(self.factory.made), 2)
        queued = self.port.socket
        assert isinstance(queued, private.QueuedAccepts)
        self.assertRaises(BlockingIOError, queued.listener.accept)
        self.reactor.advance(0)
        self.assertEqual(len(self.factory.made), 5)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_drainsAgainInAStorm(self) -> None:
        """
        While connections are handed out, the kernel's queue is drained
        again after every C{DRAIN_EVERY}: connections that arrive meanwhile
        are taken before the port gets to them.
        """
        listener = self.port.socket
        queued = private.QueuedAccepts(self.port, listener, lambda f: None)
        queued.DRAIN_EVERY = 2
        self.connect(3)
        first = queued.accept()
        self.addCleanup(first[0].close)
        self.connect(1)
        second = queued.accept()
        self.addCleanup(second[0].close)
        self.assertEqual(len(queued._pending), 1)
        third = queued.accept()
        self.addCleanup(third[0].close)
        self.assertEqual(len(queued._pending), 1)
        self.assertRaises(BlockingIOError, listener.accept)

    def test_errorsAfterTheQueue(self) -> None:
        """
        An error from C{accept} reaches the port only once the connections
        accepted before it are handed out, and only if C{accept} still
        meets it then (as C{EMFILE} does while descriptors last).
        """
        listener = _Listener(
            (socket.socket(), ("127.0.0.1", 1)),
            OSError(errno.ENOBUFS, "none"),
            OSError(errno.ENOBUFS, "none"),
        )
        queued = private.QueuedAccepts(self.port, listener, lambda f: None)  # type: ignore[arg-type]
        sock, _ = queued.accept()
        sock.close()
        error = self.assertRaises(OSError, queued.accept)
        self.assertEqual(error.errno, errno.ENOBUFS)
        error = self.assertRaises(OSError, queued.accept)
        self.assertEqual(error.errno, errno.EAGAIN)

    def test_oneByOneAfterAnError(self) -> None:
        """
        After C{accept} meets an error (out of descriptors), connections are
        accepted one at a time, as the port's recovery expects, until none
        is waiting; then they are queued again.
        """
        sockets = [socket.socket() for _ in range(4)]
        for sock in sockets:
            self.addCleanup(sock.close)
        listener = _Listener(
            (sockets[0], ("127.0.0.1", 1)),
            OSError(errno.EMFILE, "too many"),
            (sockets[1], ("127.0.0.1", 2)),
            OSError(errno.EAGAIN, "none"),
            (sockets[2], ("127.0.0.1", 3)),
            (sockets[3], ("127.0.0.1", 4)),
        )
        queued = private.QueuedAccepts(self.port, listener, lambda f: None)  # type: ignore[arg-type]
        self.assertIs(queued.accept()[0], sockets[0])
        self.assertIs(queued.accept()[0], sockets[1])
        self.assertEqual(len(listener.errors), 3)
        self.assertRaises(BlockingIOError, queued.accept)
        self.assertIs(queued.accept()[0], sockets[2])
        self.assertEqual(len(queued._pending), 1)

    def test_closeClosesTheQueued(self) -> None:
        """
        Closing closes the connections still queued, and the listener.
        """
        private.queue_accepts(self.port, self.reactor)
        self.port.numberAccepts = 1
        self.connect(2)
        self.port.doRead()
        queued = self.port.socket
        assert isinstance(queued, private.QueuedAccepts)
        [(waiting, _)] = queued._pending
        queued.close()
        self.assertEqual(waiting.fileno(), -1)
        self.assertEqual(queued.listener.fileno(), -1)
        self.reactor.advance(0)
        self.assertEqual(len(self.factory.made), 1)

    def test_optionsInherited(self) -> None:
        """
        On Linux a TCP port's listening socket gets C{TCP_NODELAY} and
        C{SO_OOBINLINE}, which every accepted socket has then, and
        L{private.options_inherited} says so of its connections (the
        canary for C{tcp.Server.server}); it says no of anything else.
        """
        if not sys.platform.startswith("linux"):
            raise SkipTest("only Linux is known to copy them to accepted sockets")
        private.queue_accepts(self.port, self.reactor)
        self.connect(1)
        self.port.doRead()
        [protocol] = self.factory.made
        transport = protocol.transport
        sock = transport.getHandle()  # type: ignore[union-attr]
        self.assertEqual(
            (
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE),
            ),
            (1, 1),
        )
        canary(
            self,
            private.options_inherited(transport),
            "tcp.Server.server (the port a connection was accepted on)",
            "echotwist.server.protocol (a storm's connections set no socket "
            "options of their own)",
        )
        self.assertFalse(private.options_inherited(StringTransport()))

    def test_listeningSocket(self) -> None:
        """
        L{private.listening_socket} still finds the listening socket, and
        anything but a listening L{tcp.Port} is left alone.
        """
        listener = self.port.socket
        private.queue_accepts(self.port, self.reactor)
        self.assertIs(private.listening_socket(self.port), listener)
        self.assertFalse(private.queue_accepts(self.port, self.reactor))
        self.assertFalse(private.queue_accepts(object(), self.reactor))  # type: ignore[arg-type]


@implementer(IHalfCloseableDescriptor)
class _HalfCloseable:
    """
    A half-closeable selectable that records how the reactor ended it.

    @ivar calls: C{readConnectionLost} or C{connectionLost}, as called.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Failure]] = []

    def fileno(self) -> int:
        return -1

    def readConnectionLost(self, reason: Failure) -> None:
        self.calls.append(("readConnectionLost", reason))

    def writeConnectionLost(self, reason: Failure) -> None:
        self.calls.append(("writeConnectionLost", reason))

    def connectionLost(self, reason: Failure) -> None:
        self.calls.append(("connectionLost", reason))


class DisconnectCanaryTests(SynchronousTestCase):
    """
    Canary for L{private.peer_closed}: the reactor ends a half-closeable
    connection at once for a C{ConnectionDone} subclass, and only half for
    C{ConnectionDone} itself.
    """

    def test_subclassClosesAtOnce(self) -> None:
        """
        Given L{private.CLOSED_AFTER_ECHO}, C{_disconnectSelectable} calls
        C{connectionLost} with a clean-close reason; given
        C{main.CONNECTION_DONE}, C{readConnectionLost}.
        """
        reactor = EchoReactor()
        self.addCleanup(reactor._poller.close)
        ended = _HalfCloseable()
        reactor._disconnectSelectable(ended, private.CLOSED_AFTER_ECHO, True)
        reactor._disconnectSelectable(ended, main.CONNECTION_DONE, True)
        [(first, reason), (second, _)] = ended.calls
        canary(
            self,
            (first, second) == ("connectionLost", "readConnectionLost")
            and reason.check(ConnectionDone) is not None,
            "_DisconnectSelectableMixin._disconnectSelectable's failures by "
            "exact class",
            "echotwist.server.fastpath (a client's close after its echo ends "
            "the connection without a write event)",
        )
        self.assertEqual(reason.getErrorMessage(), "Connection was closed cleanly.")
