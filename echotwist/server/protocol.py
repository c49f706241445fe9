"""
The echo protocol (RFC 862, TCP) and the factory that serves it.

Every byte received is written back, in order.  Three things make it safe to
put on an open network, all of them Twisted machinery rather than our own:

  - backpressure: the transport is registered as its own streaming producer,
    so once its outgoing buffer passes C{bufferSize} the reactor stops
    reading from that client until the buffer drains;
  - half-close: L{IHalfCloseableProtocol} lets a client shut its sending side
    and still receive the rest of its echo before the server closes;
  - limits: an idle timeout (L{Echo.check_idle}, called by one
    L{IdleSweep} for all connections: L{echotwist.server.idle}), and a cap
    on open connections enforced in L{EchoFactory.buildProtocol} (a
    connection over it gets a L{RefusedEcho}, which closes it at once).
"""

from __future__ import annotations

import socket
from contextlib import suppress
from typing import TYPE_CHECKING, TypeGuard, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHalfCloseableProtocol,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from echotwist._twisted_private import (
    DirectEcho,
    options_inherited,
    read_directly,
    stop_reading_directly,
    unsent_bytes,
)
from echotwist.server.connlog import ConnectionLog
from echotwist.server.fastpath import (
    can_read_directly,
    can_send_directly,
    direct_echo,
    send,
)
from echotwist.server.idle import IdleSweep
from echotwist.words import counted, were

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

    from echotwist.server.proxy import ProxyHeader

#: The peer's name until it is known.
_UNNAMED = "?"
#: How much of each chunk C{--verbose} logs.
VERBOSE_CHUNK_BYTES = 64
#: What L{Echo.check_idle} takes as silent for the whole timeout: all but a
#: billionth of it.
_ROUNDING = 1 - 1e-9


def describe_peer(address: IAddress) -> str:
    """
    Name a peer the way the socket labs print it.

    @param address: the peer's address (the transport's C{getPeer()}, or
        what the port gave C{buildProtocol}).
    @return: C{('127.0.0.1', 57854)} for an IP peer (as the lab's
        C{Connected by} line shows it; an IPv4 client of the dual-stack
        default port, C{::ffff:127.0.0.1} to its IPv6 socket, by its IPv4
        address), the socket path for a named UNIX peer, and
        C{repr(address)} for anything else.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        if isinstance(host, str):
            host = _unmapped(host)
        return repr((host, port))
    name = getattr(address, "name", "missing")
    if not name:
        # None from getPeer(), b"" as a UNIX port hands it to buildProtocol.
        return "unix:(unnamed)"
    if isinstance(name, bytes):
        return "unix:" + name.decode("utf-8", "replace")
    return repr(address)


def _unmapped(host: str) -> str:
    """
    @param host: an IP address as text.
    @return: the IPv4 address in an IPv4-mapped IPv6 one (C{::ffff:1.2.3.4},
        the form the system gives), else C{host}.  (Plain string work: the
        C{ipaddress} module's parse costs more than the rest of a
        connection's set-up in Python.)
    """
    if host[:7].lower() == "::ffff:":
        rest = host[7:]
        if ":" not in rest and rest.count(".") == 3:
            return rest
    return host


def _over_tcp(transport: ITransport) -> TypeGuard[ITCPTransport]:
    """
    Tell whether a transport runs over TCP (TLS included), where Nagle's
    algorithm can be turned off.

    (A UNIX connection claims L{ITCPTransport} too, as a subclass of the TCP
    one, but its socket has no C{TCP_NODELAY}.)

    @param transport: a connected transport.
    @return: whether it has C{setTcpNoDelay} and its own address is an IP
        one.
    """
    return ITCPTransport.providedBy(transport) and isinstance(
        transport.getHost(), (IPv4Address, IPv6Address)
    )


def _tcp_socket(transport: object) -> socket.socket | None:
    """
    Find the TCP socket under a transport, through any protocol wrappers
    (TLS, PROXY protocol) on the way.

    @param transport: a connected transport.
    @return: the IP socket it reads from, or L{None} if there is none (a
        UNIX connection, a fake).
    """
    for _ in range(4):  # a wrapper in a wrapper at most, in practice
        get_handle = getattr(transport, "getHandle", None)
        if ITCPTransport.providedBy(transport) and get_handle is not None:
            handle = get_handle()
            if isinstance(handle, socket.socket):
                family = handle.family
                ip = family in (socket.AF_INET, socket.AF_INET6)
                return handle if ip else None
        transport = getattr(transport, "transport", None)
        if transport is None:
            return None
    return None


def _lowest_transport(transport: object) -> ITransport:
    """
    Find the transport at the bottom of any protocol wrappers (TLS).

    @param transport: a connected transport.
    @return: the transport the lowest wrapper writes to (C{transport}
        itself if it wraps none).
    """
    for _ in range(4):  # a wrapper in a wrapper at most, in practice
        below = getattr(transport, "transport", None)
        if below is None:
            break
        transport = below
    return cast("ITransport", transport)


def keep_urgent_inline(transport: object) -> None:
    """
    Have TCP urgent data (C{MSG_OOB}) arrive in the byte stream, in place,
    so that it is echoed like any other byte instead of being dropped
    (C{SO_OOBINLINE}).

    Linux reads the option when the data is read, not when it arrives, so
    setting it as the connection is made also keeps an urgent byte that
    came before.

    @param transport: a connected transport; one with no TCP socket under
        it is left alone.
    """
    sock = _tcp_socket(transport)
    if sock is not None:
        # As for TCP_NODELAY: a socket already reset may refuse it.
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)


@implementer(IHalfCloseableProtocol)
class Echo(Protocol):
    """
    Write back every byte received, exactly and in order.

    @ivar factory: the L{EchoFactory} that built this protocol.
    @ivar peer: the peer as L{describe_peer} names it (behind a PROXY
        header, the client and the proxy, as L{ProxyHeader.describe} names
        them).
    @ivar proxy_header: the PROXY header the connection came with, set
        before it is connected (L{echotwist.server.proxy}), or L{None}.
    """

    factory: EchoFactory
    log = Logger()
    proxy_header: ProxyHeader | None = None
    #: Whether echoes are written with L{send} (on a plain connection) rather
    #: than C{transport.write}; decided once the connection is made.
    _sends_directly = False
    #: The L{DirectEcho} that reads for it, where one does.
    _direct_echo: DirectEcho | None = None

    def __init__(self) -> None:
        self._bytes_received = 0
        self.peer = self._host = _UNNAMED
        self._started = 0.0
        self._closing = False
        self._quiet_since = 0.0
        self._bytes_at_check = 0

    @property
    def bytes_in(self) -> int:
        """
        Bytes received so far on this connection: by L{dataReceived}, and
        by its L{DirectEcho}, which keeps its own count.
        """
        direct = self._direct_echo
        if direct is None:
            return self._bytes_received
        return self._bytes_received + direct.bytes_in

    def connectionMade(self) -> None:
        """
        Register the transport as its own producer, turn Nagle's algorithm
        off over TCP (an echo must not wait for the peer's delayed ACK),
        keep urgent data in the stream (L{keep_urgent_inline}), choose the
        direct paths where they apply, start the idle timer and log the peer.
        """
        transport = self.transport
        assert transport is not None
        factory = self.factory
        self._started = self._quiet_since = factory.clock.seconds()
        header = self.proxy_header
        if header is not None:
            self.peer = self._host = header.describe()
        elif self._host is _UNNAMED:
            self.name_peer(transport.getPeer())
        transport.registerProducer(transport, True)  # type: ignore[attr-defined]
        if not options_inherited(transport):
            # (Where the listening socket had them, this socket has them.)
            if _over_tcp(transport):
                # Some systems refuse it on a socket the peer has already
                # reset; the connection is then about to be reported lost.
                with suppress(OSError):
                    transport.setTcpNoDelay(True)
            keep_urgent_inline(transport)
        if can_send_directly(transport):
            self._sends_directly = True
            if (
                not factory.verbose
                and type(self).dataReceived is Echo.dataReceived
                and can_read_directly(transport, self)
            ):
                self._direct_echo = direct_echo(transport)
                read_directly(self._direct_echo)
        factory.connection_opened(self)
        if factory.connection_log.made(self._host):
            self.log.info("Connected by {peer}", peer=self.peer)

    def name_peer(self, address: IAddress) -> None:
        """
        Name the peer (L{describe_peer}) and its host, from the address
        L{EchoFactory.buildProtocol} was given, or else the transport's
        C{getPeer()} (which builds that address again).

        @param address: the peer's address.
        """
        self.peer = describe_peer(address)
        self._host = str(getattr(address, "host", self.peer))

    def dataReceived(self, data: bytes) -> None:
        """
        Echo C{data} back at once.

        @param data: the bytes TCP delivered, of any length.
        """
        self._bytes_received += len(data)
        if self.factory.verbose:
            self.log.info(
                "Received {size_text} from {peer}: {chunk}",
                size=len(data),
                size_text=counted(len(data), "byte"),
                peer=self.peer,
                chunk=_truncated_repr(data),
            )
        if self._sends_directly:
            send(self.transport, data)  # type: ignore[arg-type]
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def readConnectionLost(self) -> None:
        """
        The client shut its sending side: flush what is buffered, then close.

        The idle checks go on: a client that does not read the rest of its
        echo in time has its connection aborted by L{check_idle}.
        """
        self._finish()

    def writeConnectionLost(self) -> None:
        """
        Our sending side has been shut: close.

        Twisted calls this only once C{loseWriteConnection} has flushed and
        shut our sending side, which L{Echo} never asks for; it is here
        because L{IHalfCloseableProtocol} requires it.
        """
        self._finish()

    def check_idle(self, now: float) -> None:
        """
        Look at the byte count (the factory's L{IdleSweep} calls this
        L{echotwist.server.idle.IDLE_CHECKS} times per C{idle_timeout}), and
        once nothing was received for the factory's C{idle_timeout}, close
        the connection, or abort it if a close could wait forever.  A
        connection is closed between C{idle_timeout} and C{idle_timeout} and
        a tenth after its last byte.

        A connection with nothing left to send is closed cleanly, and
        watched again; under TLS, our close alert is sent and the TCP
        connection closed without waiting for the client's (which a client
        that does not read would never send), so it is freed at this
        timeout, not the next.  One whose echo is not being read (its buffer
        can't drain: a clean close would wait for it forever, holding the
        connection and its C{max_connections} slot), or one already closing
        (the client half-closed, or it timed out once) that has not finished
        in that time, is aborted, its unsent echo dropped.

        @param now: the clock's time.
        """
        timeout = self.factory.idle_timeout
        if timeout is None:
            return
        if self.bytes_in != self._bytes_at_check:
            self._bytes_at_check = self.bytes_in
            self._quiet_since = now
            return
        # (The checks fall on multiples of a tenth of the timeout: allow for
        # the rounding of those sums.)
        if now - self._quiet_since < timeout * _ROUNDING:
            return
        if self._closing or self._unsent():
            self.log.info(
                "Aborting {peer}: nothing received for {timeout} s and its "
                "echo not read",
                peer=self.peer,
                timeout=timeout,
            )
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.log.info(
            "Closing {peer}: idle for {timeout} s", peer=self.peer, timeout=timeout
        )
        self._quiet_since = now
        self._finish()
        lowest = _lowest_transport(self.transport)
        if lowest is not self.transport:
            # Under TLS a clean close waits for the client's close_notify,
            # which a client that does not read never sends: close the TCP
            # connection as soon as ours has gone out.
            lowest.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Log one line with the totals and let the factory forget us.

        @param reason: why the connection ended; a reset by the peer is logged
            in the same single line, never as a traceback.
        """
        if self._direct_echo is not None:
            # A DirectEcho put in the connection's doRead (and the
            # reactor's table) refers to the connection: drop it, so that
            # the two need no cyclic collection.
            stop_reading_directly(self._direct_echo)
        factory = self.factory
        duration = factory.clock.seconds() - self._started
        factory.connection_closed(self)
        sent = self.bytes_in - self._unsent()
        why = reason.getErrorMessage()
        if factory.connection_log.ended(self._host, self.bytes_in, sent, duration, why):
            self.log.info(
                "Disconnected {peer}: {bytes_in_text} in, {bytes_out_text} "
                "out, {duration:.3f} s ({why})",
                peer=self.peer,
                bytes_in=self.bytes_in,
                bytes_out=sent,
                bytes_in_text=counted(self.bytes_in, "byte"),
                bytes_out_text=counted(sent, "byte"),
                duration=duration,
                why=why,
            )

    def _finish(self) -> None:
        """
        Close once the outgoing buffer is flushed.

        The transport is unregistered as its own producer first: a transport
        with a producer still registered never finishes closing.
        """
        transport: ITransport | None = self.transport
        assert transport is not None
        self._closing = True
        transport.unregisterProducer()  # type: ignore[attr-defined]
        transport.loseConnection()

    def _unsent(self) -> int:
        """
        @return: bytes accepted for echo but still in the transport's buffer
            when the connection ended (0 where the transport can't tell).
        """
        return unsent_bytes(self.transport)


class RefusedEcho(Echo):
    """
    The protocol of a connection over the factory's C{max_connections}: it
    closes the connection as soon as it is made, and is never counted as
    open.

    (Returning L{None} from C{buildProtocol} would have a TCP port close the
    socket itself, but a TLS wrapper would be left with no protocol to
    deliver the connection to: it logs tracebacks and keeps the socket.  It
    is an L{Echo} only so that C{buildProtocol} returns one either way.)
    """

    def connectionMade(self) -> None:
        """
        Close the connection, cleanly: the close can't wait on anything, as
        nothing has been written, no producer is registered and, under TLS,
        no handshake has started.  (An abort would reset it instead, which a
        client can meet as early as its C{connect}.)
        """
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Nothing to count or log: the refusal was counted when it was built.

        @param reason: ignored.
        """


def _truncated_repr(data: bytes) -> str:
    """
    @return: C{repr(data)}, cut to L{VERBOSE_CHUNK_BYTES} bytes with a note
        of how much more there was.
    """
    if len(data) <= VERBOSE_CHUNK_BYTES:
        return repr(data)
    rest = len(data) - VERBOSE_CHUNK_BYTES
    return f"{data[:VERBOSE_CHUNK_BYTES]!r}... (+{rest} bytes)"


class EchoFactory(Factory):
    """
    Build L{Echo} protocols and keep the counts an operator wants.

    @ivar idle_timeout: seconds of silence before a connection is closed, or
        L{None} (or 0) for never; set when the factory is built.
    @ivar max_connections: how many connections may be open at once, or
        L{None} for no limit; more are closed as soon as they are accepted.
    @ivar verbose: log every chunk received.
    @ivar clock: where time comes from (a L{twisted.internet.task.Clock} in
        tests).
    @ivar open_connections: the protocols now connected.
    @ivar connections_total: connections accepted since start.
    @ivar refused_total: connections closed for being over the limit.
    @ivar proxy_rejected_total: connections to PROXY ports serving this
        factory closed for their header or their peer
        (L{echotwist.server.proxy}).
    @ivar bytes_echoed: bytes received (and so echoed) by closed and open
        connections.
    @ivar connection_log: which connections get their own log lines, and
        the summaries of a storm (L{ConnectionLog}).
    """

    protocol = Echo  # type: ignore[assignment]
    noisy = False
    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        idle_timeout: float | None = None,
        max_connections: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.verbose = verbose
        self.open_connections: set[Echo] = set()
        self.connections_total = 0
        self.refused_total = 0
        self.proxy_rejected_total = 0
        self.connection_log = ConnectionLog(clock)
        self._bytes_closed = 0
        self._refused_since_full = 0
        self._idle_sweep = (
            IdleSweep(clock, idle_timeout, self.open_connections)
            if idle_timeout
            else None
        )

    @property
    def bytes_echoed(self) -> int:
        """
        @return: bytes received on every connection so far.
        """
        return self._bytes_closed + sum(p.bytes_in for p in self.open_connections)

    def buildProtocol(self, addr: IAddress) -> Echo:  # type: ignore[override]
        """
        Build an L{Echo}, or a L{RefusedEcho} when at C{max_connections}.

        Refusals are logged once when the limit is reached and summed up when
        a slot frees, so a flood can't flood the log too.

        @param addr: the peer's address.
        @return: the protocol: a L{RefusedEcho} closes its connection.
        """
        limit = self.max_connections
        if limit is not None and len(self.open_connections) >= limit:
            self.refused_total += 1
            if self._refused_since_full == 0:
                self.log.warn(
                    "Connection limit ({limit}) reached: closing new "
                    "connections until one ends (first refused: {peer})",
                    limit=limit,
                    peer=describe_peer(addr),
                )
            self._refused_since_full += 1
            return RefusedEcho()
        protocol: Echo = super().buildProtocol(addr)  # type: ignore[assignment]
        protocol.name_peer(addr)
        return protocol

    def connection_opened(self, protocol: Echo) -> None:
        """
        Count a connection that has been made, and watch it for silence.

        @param protocol: its L{Echo}.
        """
        self.open_connections.add(protocol)
        self.connections_total += 1
        if self._idle_sweep is not None:
            self._idle_sweep.watch()

    def connection_closed(self, protocol: Echo) -> None:
        """
        Forget a connection that has ended, and report refusals if it freed
        a slot under the limit.

        @param protocol: its L{Echo}.
        """
        self.open_connections.discard(protocol)
        self._bytes_closed += protocol.bytes_in
        if self._idle_sweep is not None and not self.open_connections:
            self._idle_sweep.stop()
        if self._refused_since_full:
            self.log.warn(
                "Below the connection limit again; {count_text} {were} "
                "refused while it was reached",
                count=self._refused_since_full,
                count_text=counted(self._refused_since_full, "connection"),
                were=were(self._refused_since_full),
            )
            self._refused_since_full = 0
