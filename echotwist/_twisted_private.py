"""
Every private or undocumented Twisted name echotwist relies on, read here and
nowhere else.

Twisted promises nothing about these names: any release may rename, drop or
change one.  Each is used only in this module, and
L{echotwist.test.test_twisted_private} has a canary test per name that fails,
naming it and what in echotwist depends on it, when the installed Twisted no
longer behaves as this module expects.  Review this module against a new
Twisted release before raising the upper end of the supported range.

The names, by what relies on them:

  - L{twisted.internet.tcp.Connection}'s write buffer (C{dataBuffer},
    C{offset}, C{_tempDataLen}) and its C{socket}: L{send} and
    L{DirectEcho} write straight to the socket when nothing is buffered
    (the fast path's writes), L{peer_closed} tells a clean end, and
    L{unsent_bytes} counts what an echo left unsent (the disconnect log
    line, the idle timeout's abort).
  - C{Connection.TLS}: L{tls_started}, for the fast path to stay off TLS.
  - The identity of C{Connection.doRead} and its replacement per instance,
    and C{Connection.reactor}: L{has_plain_do_read}, L{read_directly},
    L{stop_reading_directly}, for the fast path's reads.
  - L{twisted.internet.epollreactor.EPollReactor.doPoll}'s body (C{_poller},
    C{_selectables}, C{_doReadOrWrite}): L{EPollReactorWithoutLogContext},
    a copy of it without the log context per event, which calls a
    L{DirectEcho} straight from its own table, the echotwist-epoll reactor.
  - L{twisted.internet.tcp.Port}'s accept-error log formats and its
    C{_logger}: L{ACCEPT_CLOSED}, L{ACCEPT_FAILED}, L{ACCEPT_QUIET} and
    L{route_port_log}, for the summary of descriptor exhaustion.
  - L{twisted.application.internet.StreamServerEndpointService}'s
    C{_raiseSynchronously}: L{raise_listen_failures}, so that a port that
    can't listen stops the start instead of leaving a process with no
    listener.
  - C{tcp.Port.socket} and endpoints that listen synchronously:
    L{listening_socket} and L{listen_now}, for C{--workers} to hand its
    sockets to the workers; C{tcp.Port._shouldShutdown}:
    L{close_without_shutdown}, so that the parent closing its ports does
    not stop the workers' (still accepting) sockets under them.
  - The order in which a reactor and twistd handle signals:
    L{replace_sigterm_handler}, for the graceful shutdown's exit status 0,
    and L{wrap_signal_handler}, so that a second SIGINT is harmless.
  - twistd's C{statusPipe} option and what its daemonising parent reads
    from it: L{report_start_failure}, so that a listener that fails after
    the fork is one line, not a traceback.
  - When L{twisted.web.http.HTTPChannel} calls a request's C{gotLength}
    ("not intended for users"): before any of the body, with L{None} for a
    chunked one.  L{echotwist.server.metrics.MetricsRequest} overrides it
    to refuse a body unread; nothing is read here, only the canary checks.
  - L{twisted.protocols.haproxy}'s parsers (its private C{_v1parser},
    C{_v2parser} and C{_exceptions} modules: C{V1Parser.parse},
    C{V2Parser.parse}, C{V2Parser.PREFIX}, C{InvalidProxyHeader}):
    L{parse_proxy_v1}, L{parse_proxy_v2}, L{PROXY_V2_SIGNATURE} and
    L{ProxyHeaderError}, for L{echotwist.server.proxy}, which frames the
    header itself (Twisted's wrapper closes a connection whose first read is
    shorter than a header's start, and has no time limit).
  - C{Connection.protocol}, set: L{replace_protocol}, for a PROXY port to
    hand a connection to the echo protocol once its header is read, so that
    the reactor calls the echo (and its fast path) directly.
  - L{twisted.python.usage.Options}' C{shortOpt} and C{longOpt}, the
    getopt lists it parses with: L{option_given}, for C{twistd -n echo} to
    write no pidfile unless C{--pidfile} was given.

Names the hot path reads are bound at import time, and L{send} and
L{DirectEcho} are themselves defined here: reading those names costs no
Python call per echo.
"""

from __future__ import annotations

import errno
import getopt
import os
import select
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import main, posixbase, tcp
from twisted.internet.defer import Deferred
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorCore,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.tcp import Connection
from twisted.logger import ILogObserver, Logger
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.python import log as _legacy_log
from twisted.python import usage
from twisted.python.failure import Failure

# tcp.Connection: the fast path and the disconnect count.


def send(connection: Connection, data: bytes) -> None:
    """
    Write C{data} to C{connection}, straight to its socket when nothing is
    buffered, else (and for whatever the socket does not take) through
    C{connection.write}, with its buffering and backpressure.

    Only what a connection's own life changes is checked: something
    buffered (Twisted's private C{dataBuffer} and C{_tempDataLen}), closing
    or closed.  Neither TLS (see L{tls_started}) nor a shut sending side
    (C{loseWriteConnection}) can come about unless the protocol asks for it.

    @param connection: a TCP or UNIX connection with no TLS started, whose
        protocol neither starts TLS nor calls C{loseWriteConnection}.
    @param data: the bytes to write, after any written before.
    """
    if (
        connection.dataBuffer
        or connection._tempDataLen
        or not connection.connected
        or connection.disconnecting
    ):
        connection.write(data)
        return
    try:
        sent = connection.socket.send(data)
    except OSError:
        # Full (EAGAIN), interrupted, or broken: transport.write buffers
        # it, and meets any error itself on its next write and closes.
        sent = 0
    if sent < len(data):
        connection.write(data[sent:] if sent else data)


#: What L{DirectEcho} asks C{read} for: a connection's C{bufferSize}, as
#: L{Connection.doRead} does.
_RECV_BYTES = Connection.bufferSize

#: What L{DirectEcho} reads and writes its descriptor with.
_read = os.read
_write = os.write


class DirectEcho:
    """
    A connection's C{doRead} that echoes: L{Connection.doRead}, the echo
    protocol's C{dataReceived} and L{send} in one call.

    For an echo those Python calls, not the two system calls, are most of
    the server's own time per echo; and with many connections, each object
    an echo reads is likely a cache miss.  So one echo reads this object
    and no more of the connection than its write buffer (Twisted's private
    C{dataBuffer} and C{_tempDataLen}): with nothing buffered, nothing can
    be overtaken, and the echo goes straight to the socket; otherwise, and
    for whatever the socket does not take, it goes through
    C{connection.write}, with its buffering, backpressure and error
    handling.  (Unlike L{send}, it need not check that the connection is
    open: the reactor reads only from an open connection, and where its
    echo is closing, C{write} would send the same bytes in the same order.)

    It reads and writes the descriptor with C{os.read} and C{os.write} (the
    same system calls as C{recv} and C{send} without flags), which parse
    their arguments faster than the socket object's methods do: it is
    called only while its connection is open (by a reactor, for a read
    event on the connection), so the descriptor is the connection's own.
    It keeps the count of bytes read, which the echo protocol adds to its
    own.

    @ivar connection: the connection it reads for.
    @ivar fd: the connection's descriptor, under which the echotwist-epoll
        reactor finds it (see L{read_directly}).
    @ivar bytes_in: bytes it has read.
    """

    __slots__ = ("bytes_in", "connection", "fd")

    def __init__(self, connection: Connection) -> None:
        """
        @param connection: a TCP or UNIX connection with no TLS started,
            whose protocol is an echo for the rest of its life and neither
            starts TLS nor calls C{loseWriteConnection}.
        """
        self.connection = connection
        self.fd: int = connection.fileno()
        self.bytes_in = 0

    def do_read(self) -> ConnectionDone | ConnectionLost | None:
        """
        Read what the socket has and echo it.

        @return: what C{doRead} returns: why the connection ended (the peer
            closed or reset it), or L{None} while it goes on.
        """
        try:
            data = _read(self.fd, _RECV_BYTES)
        except BlockingIOError:
            return None
        except OSError:
            return main.CONNECTION_LOST
        if not data:
            return peer_closed(self.connection)
        size = len(data)
        self.bytes_in += size
        connection = self.connection
        if connection.dataBuffer or connection._tempDataLen:
            connection.write(data)
            return None
        try:
            sent = _write(self.fd, data)
        except OSError:
            # As in send: transport.write buffers it or meets the error.
            sent = 0
        if sent != size:
            connection.write(data[sent:] if sent else data)
        return None


class _ClosedAfterEcho(ConnectionDone):
    """
    The peer closed its side of a connection whose echo has all been sent.
    """


#: What L{peer_closed} returns when nothing is left to send.
CLOSED_AFTER_ECHO = _ClosedAfterEcho()


def peer_closed(connection: Connection) -> ConnectionDone:
    """
    Say, as a C{doRead} that read the end of the stream, that the peer
    closed: C{main.CONNECTION_DONE} where some echo is still buffered (the
    reactor then calls the protocol's C{readConnectionLost}, which closes
    once it is sent), else L{CLOSED_AFTER_ECHO}.

    The reactor has a ready-made failure for C{ConnectionDone} itself only
    (C{_disconnectSelectable}'s table of them is keyed by exact class): for
    an instance of a subclass it closes the connection at once
    (C{connectionLost}, with the same "closed cleanly" reason), which is
    where C{readConnectionLost} would get to with nothing to send, without
    its extra trip round the reactor for a write event.

    @param connection: the connection whose peer closed.
    @return: why it ended, for the reactor.
    """
    if connection.dataBuffer or connection._tempDataLen or connection.disconnecting:
        return main.CONNECTION_DONE
    return CLOSED_AFTER_ECHO


def unsent_bytes(transport: object) -> int:
    """
    @param transport: a transport, connected or lost.
    @return: bytes written to it and still in its buffer (0 where the
        transport does not keep Twisted's C{FileDescriptor} buffer).
    """
    buffered = getattr(transport, "dataBuffer", b"")
    pending = getattr(transport, "_tempDataLen", 0)
    offset = getattr(transport, "offset", 0)
    return max(0, len(buffered) - offset + pending)


def tls_started(connection: Connection) -> bool:
    """
    @param connection: a TCP or UNIX connection.
    @return: whether TLS has been started on it (its C{TLS} flag).
    """
    return bool(connection.TLS)


#: Twisted's plain C{recv} C{doRead}, which a connection class that reads
#: differently (UNIX's, which also receives descriptors) overrides.
_PLAIN_DO_READ = Connection.doRead


def has_plain_do_read(connection: Connection) -> bool:
    """
    @param connection: a TCP or UNIX connection.
    @return: whether its class reads with L{Connection.doRead} itself.
    """
    return type(connection).doRead is _PLAIN_DO_READ


def read_directly(echo: DirectEcho) -> None:
    """
    Have the reactor call C{echo.do_read} instead of its connection's own
    C{doRead}: reactors look C{doRead} up on the instance each time, and the
    echotwist-epoll reactor also finds C{echo} by its descriptor (see
    L{EPollReactorWithoutLogContext}).

    @param echo: a L{DirectEcho} for a connection L{has_plain_do_read}
        accepted.
    """
    connection = echo.connection
    connection.doRead = echo.do_read  # type: ignore[method-assign]
    reactor = connection.reactor
    if isinstance(reactor, EPollReactorWithoutLogContext):
        reactor.add_direct_echo(echo)


def stop_reading_directly(echo: DirectEcho) -> None:
    """
    Undo L{read_directly}, so that the connection and its L{DirectEcho}
    need no cyclic collection.

    @param echo: the L{DirectEcho} given to L{read_directly}; its
        connection may be open or lost.
    """
    connection = echo.connection
    vars(connection).pop("doRead", None)
    reactor = connection.reactor
    if isinstance(reactor, EPollReactorWithoutLogContext):
        reactor.remove_direct_echo(echo)


# EPollReactor.doPoll: the echotwist-epoll reactor.


#: The event C{doPoll} handles inline: readable, and nothing else.
_EPOLLIN = select.EPOLLIN if hasattr(select, "EPOLLIN") else 1

#: What C{_doReadOrWrite} reports for a selectable whose descriptor is gone.
_NO_FILEDESC = posixbase._NO_FILEDESC


class EPollReactorWithoutLogContext(EPollReactor):
    """
    L{EPollReactor} without L{twisted.python.log.callWithLogger} per event.

    Its C{doPoll} is a copy of L{EPollReactor.doPoll} (with the same private
    C{_poller}, C{_selectables} and C{_doReadOrWrite}) whose wrap of each
    event is a plain C{try}, and which does C{_doReadOrWrite}'s work for a
    plain read event itself (the most frequent event by far: every echo's,
    every accept's), with the same C{fileno} check, error handling and
    C{_disconnectSelectable} call; canary tests notice when Twisted's
    C{doPoll} or C{_doReadOrWrite} change, so the copy is reviewed.

    For a read event on a connection that a L{DirectEcho} reads for (see
    L{read_directly}), it calls the L{DirectEcho}, found in its own table by
    descriptor, without reading the connection: with many connections,
    each object read is likely a cache miss, and the connection's
    attributes (C{fileno}, C{doRead}) are several.  The L{DirectEcho} is
    called only while its connection is the selectable watched on that
    descriptor, so it is open (which is what the C{fileno} check is for),
    and a descriptor reused by another connection is never read for the
    old one.
    """

    _log = Logger()

    def __init__(self) -> None:
        super().__init__()
        self._direct_echoes: dict[int, DirectEcho] = {}

    def add_direct_echo(self, echo: DirectEcho) -> None:
        """
        Call C{echo.do_read} for its connection's read events.

        @param echo: a L{DirectEcho} whose connection is being read.
        """
        self._direct_echoes[echo.fd] = echo

    def remove_direct_echo(self, echo: DirectEcho) -> None:
        """
        Forget C{echo} (not another one since added for its descriptor).

        @param echo: a L{DirectEcho} L{add_direct_echo} was given.
        """
        if self._direct_echoes.get(echo.fd) is echo:
            del self._direct_echoes[echo.fd]

    def doPoll(self, timeout: float | None) -> None:
        """
        Wait for events and dispatch each to its selectable.

        @param timeout: seconds to wait at most, L{None} for no limit.
        """
        try:
            events = self._poller.poll(
                -1 if timeout is None else timeout, len(self._selectables)
            )
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        echoes = self._direct_echoes
        dispatch = self._doReadOrWrite
        disconnect = self._disconnectSelectable
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                if event == _EPOLLIN:
                    # _doReadOrWrite's work for a plain read event, inline:
                    # one Python call less per event (an echo's, an accept's).
                    why: object
                    echo = echoes.get(fd)
                    try:
                        if echo is not None and echo.connection is selectable:
                            why = echo.do_read()
                        elif selectable.fileno() == -1:
                            why = _NO_FILEDESC
                        else:
                            why = selectable.doRead()
                    except BaseException:
                        why = sys.exc_info()[1]
                        _legacy_log.err()
                    if why:
                        disconnect(selectable, why, True)
                else:
                    dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure(
                    "Error handling an event on {selectable}", selectable=selectable
                )

    doIteration = doPoll


# tcp.Port: accept errors, and the sockets workers share.

#: The C{log_format} of L{twisted.internet.tcp.Port}'s event for each
#: connection it accepts and closes at once while out of descriptors.
ACCEPT_CLOSED = "EMFILE recovery: Closed socket from {address}"

#: The C{log_format} of its event for a connection it could not accept.
ACCEPT_FAILED = "Could not accept new connection ({acceptError})"

#: The C{log_format}s of the events around an C{EMFILE} recovery.
ACCEPT_QUIET = frozenset(
    {
        "EMFILE encountered; releasing reserved file descriptor.",
        "Re-reserving EMFILE recovery file descriptor.",
    }
)


def route_port_log(port: object, observer: ILogObserver) -> None:
    """
    Send a listening port's own log events (those with the formats above)
    to C{observer}, keeping their namespace.

    Twisted's ports log through a private C{_logger}; a port without one is
    left alone.

    @param port: a listening port.
    @param observer: where its events go from now on.
    """
    logger: Any = getattr(port, "_logger", None)
    if isinstance(logger, Logger):
        port._logger = Logger(  # type: ignore[attr-defined]
            namespace=logger.namespace, source=port, observer=observer
        )


def listening_socket(port: IListeningPort) -> socket.socket:
    """
    @param port: a port a TCP, TCP6, UNIX or systemd endpoint listened on.
    @return: its listening socket (the socket itself where L{queue_accepts}
        stands in front of it).
    """
    sock = port.socket  # type: ignore[attr-defined]
    if isinstance(sock, QueuedAccepts):
        return sock.listener
    return cast(socket.socket, sock)


class QueuedAccepts:
    """
    A listening socket's C{accept} that empties the kernel's listen queue
    into this process's own queue, and hands connections out from there.

    L{twisted.internet.tcp.Port.doRead} accepts one connection and builds
    its transport and protocol before it accepts the next; in a storm of
    connects the kernel's queue (at most C{somaxconn}) fills meanwhile, and
    each connect it drops costs its client a one-second SYN retransmission.
    Standing in for the port's socket (Twisted's ports call
    C{self.socket.accept()}), this accepts everything waiting whenever its
    own queue is empty and again after every L{DRAIN_EVERY} handed out, so
    the kernel's queue is emptied many times while the port works through a
    storm.  The connections are handed out in order, and errors from
    C{accept} reach the port as before once the connections accepted before
    them are handed out, so its C{EMFILE} recovery is unchanged.  Where the
    port stops (its C{numberAccepts}) with connections still queued here,
    that the kernel no longer reports, its C{doRead} is called again on the
    reactor's next turn.

    Every other attribute is the listening socket's.

    @ivar listener: the listening socket.
    """

    #: Connections handed out between two drains of the kernel's queue.
    DRAIN_EVERY = 32

    def __init__(
        self,
        port: Any,
        listener: socket.socket,
        call_soon: Callable[[Callable[[], object]], object],
    ) -> None:
        self.listener = listener
        self.options_inherited = _set_inherited_options(listener)
        self._port = port
        self._call_soon = call_soon
        self._pending: deque[tuple[socket.socket, Any]] = deque()
        self._handed = 0
        self._resuming = False
        self._direct = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.listener, name)

    def accept(self) -> tuple[socket.socket, Any]:
        """
        @return: the next connection and its address, as C{socket.accept}.
        @raise OSError: as C{socket.accept} does (C{EAGAIN} when none is
            waiting), once the connections accepted before are handed out.
        """
        pending = self._pending
        if self._direct and not pending:
            try:
                return self.listener.accept()
            except BlockingIOError:
                self._direct = False
                raise
        if not self._direct and (not pending or self._handed >= self.DRAIN_EVERY):
            self._handed = 0
            self._drain()
        self._handed += 1
        connection = pending.popleft()
        if pending and not self._resuming:
            self._resuming = True
            self._call_soon(self._resume)
        return connection

    def _drain(self) -> None:
        """
        Accept every connection the kernel has waiting.

        @raise OSError: what C{accept} raised, if nothing is queued here.
            After an error other than C{EAGAIN} (C{EMFILE}: out of
            descriptors), C{accept} calls the socket's own, one connection
            at a time, until it meets C{EAGAIN}: the port's recovery
            (release its reserved descriptor, accept and close until
            C{EAGAIN}) then works exactly as without this queue.
        """
        accept = self.listener.accept
        pending = self._pending
        while True:
            try:
                pending.append(accept())
            except BlockingIOError:
                if pending:
                    return
                raise
            except OSError:
                self._direct = True
                if pending:
                    return
                raise

    def _resume(self) -> None:
        """
        Have the port accept what is still queued here.
        """
        self._resuming = False
        if self._pending and self._port.socket is self:
            self._port.doRead()

    def close(self) -> None:
        """
        Close the connections still queued here, then the listening socket.
        """
        while self._pending:
            self._pending.popleft()[0].close()
        self.listener.close()


def _set_inherited_options(listener: socket.socket) -> bool:
    """
    Set on a TCP listening socket the options every connection gets
    (C{TCP_NODELAY}, C{SO_OOBINLINE}; see L{echotwist.server.protocol}), so
    that each accepted socket has them from the start and needs no system
    call of its own: Linux copies both to the sockets C{accept} returns.

    @param listener: the listening socket.
    @return: whether they were set: only on Linux, and only for an IPv4 or
        IPv6 socket.
    """
    if not sys.platform.startswith("linux"):
        return False
    if getattr(listener, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    except OSError:
        return False
    return True


def options_inherited(transport: object) -> bool:
    """
    @param transport: a connected transport.
    @return: whether it is a plain TCP connection (L{tcp.Server}) that its
        port (the undocumented C{server} attribute) accepted through a
        L{QueuedAccepts} that set C{TCP_NODELAY} and C{SO_OOBINLINE} on the
        listening socket, so that the connection's socket has them already.
    """
    if type(transport) is not tcp.Server:
        return False
    queued = getattr(getattr(transport, "server", None), "socket", None)
    return isinstance(queued, QueuedAccepts) and queued.options_inherited


def queue_accepts(port: IListeningPort, reactor: IReactorTime) -> bool:
    """
    Put a L{QueuedAccepts} in front of a listening port's socket.

    @param port: a port, listening.
    @param reactor: what calls the port's C{doRead} on its next turn.
    @return: whether it was done: only a L{tcp.Port} (TCP, TLS, UNIX) is
        changed, and only once.
    """
    if not isinstance(port, tcp.Port):
        return False
    sock = getattr(port, "socket", None)
    if not isinstance(sock, socket.socket):
        return False
    port.socket = QueuedAccepts(port, sock, lambda f: reactor.callLater(0, f))
    return True


def close_without_shutdown(port: IListeningPort) -> None:
    """
    Make C{port}'s C{stopListening} close only this process's descriptor
    of its socket, without C{shutdown()}, which would stop the socket
    listening in every process that holds it (a worker still accepting on
    it would then fail in C{accept()}, with a traceback).  Twisted's ports
    do so for an adopted socket (C{_shouldShutdown}).

    @param port: a port a TCP, TCP6 or UNIX endpoint listened on.
    """
    port._shouldShutdown = False  # type: ignore[attr-defined]


def listen_now(
    endpoint: IStreamServerEndpoint, factory: IProtocolFactory, description: str
) -> IListeningPort:
    """
    Listen on an endpoint that listens at once (TCP, TCP6, UNIX, systemd:
    their C{listen} fires before it returns, though endpoints promise only a
    L{Deferred}).

    @param endpoint: the endpoint.
    @param factory: the factory to listen with.
    @param description: the endpoint's description, for the error.
    @return: the listening port.
    @raise RuntimeError: if the endpoint did not listen at once.
    @raise Exception: whatever the endpoint failed with.
    """
    outcome: list[IListeningPort | Failure] = []
    listening: Deferred[IListeningPort] = endpoint.listen(factory)
    listening.addBoth(outcome.append)
    if not outcome:
        raise RuntimeError(f"{description!r} did not listen at once")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


# StreamServerEndpointService: failures to listen.


def raise_listen_failures(service: StreamServerEndpointService) -> None:
    """
    Make C{service}'s start raise when its endpoint fails to listen at once,
    rather than only log it, as L{twisted.application.strports.service}
    does (with the same private C{_raiseSynchronously}).

    @param service: the listening service.
    """
    service._raiseSynchronously = True


# Signals: the graceful shutdown.


def replace_sigterm_handler(
    reactor: IReactorCore, handler: Callable[[int, Any], None]
) -> None:
    """
    Handle SIGTERM with C{handler} instead of the reactor's own, from the
    moment the reactor runs.

    The reactor installs its signal handlers as it starts, before the calls
    C{callWhenRunning} schedules, so C{handler} replaces its handler.  That
    handler records the signal (the reactor's private C{_exitSignal}), and
    twistd, once the reactor stops, kills itself with it: a supervisor sees
    a death by SIGTERM rather than exit status 0.

    @param reactor: the reactor.
    @param handler: the new handler, as for L{signal.signal}.
    """
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, handler)


# twistd's daemonisation: a start-up failure after the fork.

#: How many bytes of a start-up failure a daemonising twistd's waiting
#: parent reads from the status pipe, the first two of which it drops.
STATUS_PIPE_READ = 100


def report_start_failure(twistd_config: Any, message: str) -> bool:
    """
    Tell the waiting parent of a daemonising twistd that the start failed,
    with C{message}, as twistd's own C{postApplication} does for an
    exception (its undocumented C{statusPipe} option: C{"1 "} and the
    message, of which the parent shows 98 bytes), and remove the pid file
    as it would; the caller then exits without a traceback.

    @param twistd_config: twistd's options (C{ServerOptions}).
    @param message: one line.
    @return: whether there was a status pipe to write to.
    """
    pipe = twistd_config.get("statusPipe")
    if pipe is None:
        return False
    data = message.encode("utf-8", "backslashreplace")[: STATUS_PIPE_READ - 2]
    try:
        os.write(pipe, b"1 " + data)
    finally:
        os.close(pipe)
        twistd_config["statusPipe"] = None
    pidfile = twistd_config.get("pidfile")
    if pidfile:
        with suppress(OSError):
            os.remove(pidfile)
    return True


def wrap_signal_handler(
    reactor: IReactorCore,
    signum: int,
    wrap: Callable[[Callable[[int, Any], object]], Callable[[int, Any], None]],
) -> None:
    """
    Once the reactor runs, replace the handler of C{signum} (the reactor's
    own, installed as it starts) by C{wrap(handler)}; a signal that is
    ignored or left to its default action is left alone.

    @param reactor: the reactor.
    @param signum: the signal.
    @param wrap: called with the handler in place, returns its replacement.
    """

    def install() -> None:
        previous = signal.getsignal(signum)
        if callable(previous):
            signal.signal(signum, wrap(previous))

    reactor.callWhenRunning(install)


# twisted.protocols.haproxy: the PROXY header's parsers.

#: The twelve bytes that start a PROXY protocol v2 header.
PROXY_V2_SIGNATURE: bytes = V2Parser.PREFIX

#: What Twisted's parsers raise for a header they can't read (some malformed
#: headers raise C{ValueError}, C{KeyError} or C{struct.error} instead).
ProxyHeaderError = InvalidProxyHeader


def parse_proxy_v1(line: bytes) -> tuple[IAddress | None, IAddress | None]:
    """
    @param line: a whole PROXY v1 header line, without its CRLF.
    @return: the source and destination addresses it names (L{None} for
        C{UNKNOWN}).
    @raise ProxyHeaderError: or another exception, if it is not one.
    """
    info = V1Parser.parse(line)
    return info.source, info.destination


def parse_proxy_v2(header: bytes) -> tuple[IAddress | None, IAddress | None]:
    """
    @param header: a whole PROXY v2 header (its 16 bytes, then as many as
        its length field says).
    @return: the source and destination addresses it names (L{None} for a
        C{LOCAL} command or an unspecified family).
    @raise ProxyHeaderError: or another exception, if it is not one.
    """
    info = V2Parser.parse(header)
    return info.source, info.destination


# Connection.protocol: handing a connection on after its PROXY header.


def can_replace_protocol(transport: object, current: IProtocol) -> bool:
    """
    @param transport: a connected transport.
    @param current: the protocol now connected to it.
    @return: whether it is a TCP or UNIX connection (with no TLS started)
        delivering to C{current}, whose protocol L{replace_protocol} can
        change.
    """
    return (
        isinstance(transport, Connection)
        and not transport.TLS
        and transport.protocol is current
    )


def replace_protocol(connection: Connection, protocol: IProtocol) -> None:
    """
    Have C{connection} deliver everything from now on (data, half-close,
    loss) to C{protocol} instead of its current protocol: it looks its
    C{protocol} up at each event.

    @param connection: a connection L{can_replace_protocol} accepted.
    @param protocol: the new protocol, not yet connected (the caller calls
        its C{makeConnection} next).
    """
    connection.protocol = protocol


# usage.Options: which options were given.


def option_given(options: usage.Options, name: str, argv: list[str]) -> bool:
    """
    Whether C{argv}, the arguments C{options} parsed, gives the long option
    C{name} itself (rather than leaving its default), abbreviated or not.

    L{usage.Options} keeps no record of it; this parses C{argv} again with
    the same getopt lists (C{shortOpt}, C{longOpt}), up to the first
    argument that is not an option (a subcommand).

    @param options: options that have parsed C{argv}.
    @param name: the long option's name, without dashes.
    @param argv: the arguments parsed.
    @return: whether C{--name} is among them.
    """
    try:
        given, _ = getopt.getopt(argv, options.shortOpt, options.longOpt)
    except (getopt.GetoptError, AttributeError):
        return False
    return any(flag == f"--{name}" for flag, _ in given)
