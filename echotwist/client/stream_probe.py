"""
Probes over a stream endpoint (TCP, TLS, UNIX): L{StreamPath}.

By default every probe goes over one connection, so the time measured is
the echo's round trip alone; probes may be in flight together, and the
echo's bytes are matched to them in order. With C{reconnect}, every probe
opens its own connection, and its result carries the connect time (and the
TLS handshake time) apart from the echo's.

A stream can't be realigned once a probe's echo went wrong (differs, or did
not come back in time: later bytes could belong to either probe), so the
connection is then aborted, the probes behind it on that connection are
reported as errors, and the next probe connects again. A connection the
server drops is reported the same way, and reconnected: never fatal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IReactorTime,
    ISSLTransport,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from echotwist.client.closing import close_cleanly
from echotwist.client.errors import EchoClosedEarly, EchoMismatch, tls_failure
from echotwist.client.hints import looks_like_tls, tls_hint
from echotwist.client.oneshot import reason
from echotwist.client.probe import BasePath, Report, cancel
from echotwist.client.result import Status

__all__ = ["StreamPath"]


@dataclass(eq=False)
class _Probe:
    """
    One probe over a stream, until it is settled.
    """

    seq: int
    payload: bytes
    report: Report
    timer: IDelayedCall | None = None
    sent_at: float | None = None
    got: int = 0
    connect: float | None = None
    handshake: float | None = None
    settled: bool = False


@implementer(IHandshakeListener)
class _ProbeProtocol(Protocol):
    """
    A connection that carries probes: writes each, and matches the echoed
    bytes to them in order.
    """

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.connected_at: float | None = None
        self.closed: Deferred[None] = Deferred()
        self.abort_call: IDelayedCall | None = None

    def connectionMade(self) -> None:
        """
        Ready at once, or (TLS) once the handshake is done.
        """
        self.connected_at = self._connection.clock.seconds()
        self._connection.made(self)
        if not ISSLTransport.providedBy(self.transport):
            self._connection.ready(None)

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is done: probes may go.
        """
        self._connection.ready(self._connection.clock.seconds())

    def dataReceived(self, data: bytes) -> None:
        """
        Hand the echoed bytes to the connection.
        """
        self._connection.echoed(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Tell the connection, and fire L{closed}.
        """
        if self.abort_call is not None and self.abort_call.active():
            self.abort_call.cancel()
        self._connection.lost(reason)
        self.closed.callback(None)


class _Connection:
    """
    One connection of a L{StreamPath}, and the probes it carries.
    """

    def __init__(self, path: StreamPath) -> None:
        self.path = path
        self.clock = path.clock
        self.protocol = _ProbeProtocol(self)
        self.waiting: list[_Probe] = []
        self.outstanding: deque[_Probe] = deque()
        self.started = self.clock.seconds()
        self.is_ready = False
        self.gone = False
        self._fresh = True
        self._handshake: float | None = None
        self.connecting = connectProtocol(path.endpoint, self.protocol)
        self.connecting.addErrback(self._failed)

    @property
    def probes(self) -> list[_Probe]:
        """
        Every probe on this connection not yet settled.
        """
        return [*self.outstanding, *self.waiting]

    def made(self, protocol: _ProbeProtocol) -> None:
        """
        Connected: mark the socket if asked.
        """
        if self.path.mark is not None:
            self.path.mark(protocol.transport)

    def ready(self, handshake_done: float | None) -> None:
        """
        Connected (and TLS done): send the probes that waited.
        """
        if self.gone:
            return
        connected = self.protocol.connected_at
        assert connected is not None
        if handshake_done is not None:
            self._handshake = handshake_done - connected
        self.is_ready = True
        waiting, self.waiting = self.waiting, []
        for probe in waiting:
            self.write(probe)

    def add(self, probe: _Probe) -> None:
        """
        Send C{probe} now, or once connected.
        """
        if self.is_ready:
            self.write(probe)
        else:
            self.waiting.append(probe)

    def write(self, probe: _Probe) -> None:
        """
        Send C{probe}; the first on this connection carries its connect
        (and handshake) time.
        """
        if self._fresh:
            self._fresh = False
            assert self.protocol.connected_at is not None
            probe.connect = self.protocol.connected_at - self.started
            probe.handshake = self._handshake
        probe.sent_at = self.clock.seconds()
        self.outstanding.append(probe)
        self.protocol.transport.write(probe.payload)  # type: ignore[union-attr]

    def echoed(self, data: bytes) -> None:
        """
        Match echoed bytes to the probes in order.
        """
        while data and not self.gone:
            if not self.outstanding:
                self.path.report_extra(data)
                self.drop("bytes came back that no probe sent")
                return
            probe = self.outstanding[0]
            chunk = data[: len(probe.payload) - probe.got]
            data = data[len(chunk) :]
            expected = probe.payload[probe.got : probe.got + len(chunk)]
            if chunk != expected:
                mismatch = EchoMismatch.between(expected, chunk, probe.got)
                self.outstanding.popleft()
                self.path.settle(probe, "corrupt", detail=str(mismatch))
                self.drop(f"seq={probe.seq}'s echo differed")
                return
            probe.got += len(chunk)
            if probe.got == len(probe.payload):
                self.outstanding.popleft()
                now = self.clock.seconds()
                assert probe.sent_at is not None
                self.path.settle(probe, "ok", rtt=now - probe.sent_at)
        if self.path.reconnect and not self.probes:
            self.close()

    def timed_out(self, probe: _Probe) -> None:
        """
        C{probe} had no whole echo in time: it is lost, and the connection,
        which can't be realigned, is dropped.
        """
        timeout = self.path.timeout
        if not self.is_ready:
            detail = f"not connected within {timeout:g} s"
        elif probe.got:
            detail = (
                f"{probe.got} of {len(probe.payload)} bytes back within {timeout:g} s"
            )
        else:
            detail = f"no echo within {timeout:g} s"
        if probe in self.outstanding:
            self.outstanding.remove(probe)
        if probe in self.waiting:
            self.waiting.remove(probe)
        self.path.settle(probe, "lost", detail=detail)
        self.drop(f"seq={probe.seq} timed out")

    def drop(self, why: str) -> None:
        """
        Abort the connection; the probes still on it are errors.
        """
        if self.gone:
            return
        probes = self._end()
        if self.protocol.transport is not None:
            self.protocol.transport.abortConnection()  # type: ignore[attr-defined]
        else:
            self.connecting.cancel()
        for probe in probes:
            self.path.settle(probe, "error", detail=f"connection dropped: {why}")

    def lost(self, why: Failure) -> None:
        """
        The connection ended: probes still on it were cut short; with none
        on it, the server closed it between probes (said, and the next
        probe connects again).
        """
        if self.gone:
            return
        probes = self._end()
        detail = tls_failure(why) or _why(why)
        if not probes and self.is_ready:
            cause = "" if why.check(ConnectionDone) else f" ({detail})"
            self.path.report_dropped(
                f"connection closed by the server between probes{cause}"
            )
        for probe in probes:
            if probe.got:
                closed = EchoClosedEarly(probe.got, len(probe.payload))
                self.path.settle(probe, "corrupt", detail=f"cut short: {closed}")
            else:
                self.path.settle(
                    probe,
                    "error",
                    detail=self.path.hinted(f"connection lost: {detail}", probe),
                )

    def _failed(self, failure: Failure) -> None:
        """
        Connecting failed: the probes that waited are refused or errors.
        """
        if self.gone:
            return
        probes = self._end()
        status: Status = "refused" if failure.check(ConnectionRefusedError) else "error"
        for probe in probes:
            self.path.settle(probe, status, detail=f"cannot connect: {_why(failure)}")

    def _end(self) -> list[_Probe]:
        """
        The connection is gone (dropped, lost or never made): the next probe
        connects again.

        @return: the probes still on it, now off it, for the caller to settle.
        """
        self.gone = True
        self.path.forget(self)
        probes = self.probes
        self.outstanding.clear()
        self.waiting.clear()
        return probes

    def close(self) -> Deferred[None]:
        """
        Close cleanly (half-close or TLS C{close_notify}, then the server's
        close), or stop connecting.

        @return: fires once closed.
        """
        self.gone = True
        self.path.forget(self)
        transport = self.protocol.transport
        if transport is None:
            self.connecting.cancel()
            done: Deferred[None] = Deferred()
            done.callback(None)
            return done
        if not self.protocol.closed.called and getattr(transport, "connected", True):
            self.protocol.abort_call = close_cleanly(transport, self.clock)
        return self.protocol.closed


def _why(failure: Failure) -> str:
    """
    @return: why C{failure} happened, in words.
    """
    value = failure.value
    return reason(value) if isinstance(value, Exception) else str(value)


class StreamPath(BasePath):
    """
    Probes over any stream client endpoint.
    """

    def __init__(
        self,
        clock: IReactorTime,
        endpoint: IStreamClientEndpoint,
        address: str,
        timeout: float = 2.0,
        reconnect: bool = False,
        mark: Callable[[Any], None] | None = None,
        plain_tcp: str | None = None,
    ) -> None:
        """
        @param clock: the reactor's clock.
        @param endpoint: the server.
        @param address: how lines name it.
        @param timeout: seconds each probe gets (connecting included).
        @param reconnect: a new connection for every probe.
        @param mark: called with each new connection's transport (to set
            its TOS, say).
        @param plain_tcp: for a plain TCP endpoint, its C{tcp:HOST:PORT}:
            failures that look like a TLS port then say so.
        """
        super().__init__(clock, address)
        self.endpoint = endpoint
        self.timeout = timeout
        self.reconnect = reconnect
        self.mark = mark
        self._plain_tcp = plain_tcp
        self._current: _Connection | None = None
        self._connections: set[_Connection] = set()
        self._closing: list[Deferred[None]] = []

    def send(self, seq: int, payload: bytes, report: Report) -> None:
        """
        Send one probe (see L{ProbePath.send}).
        """
        probe = _Probe(seq, payload, report)
        self._report = report
        if self.reconnect or self._current is None:
            connection = _Connection(self)
            self._connections.add(connection)
            if not self.reconnect:
                self._current = connection
        else:
            connection = self._current
        probe.timer = self.clock.callLater(self.timeout, connection.timed_out, probe)
        connection.add(probe)

    def settle(
        self, probe: _Probe, status: Status, rtt: float | None = None, detail: str = ""
    ) -> None:
        """
        Report C{probe}'s final result, once.
        """
        if probe.settled or self._stopped:
            return
        probe.settled = True
        cancel(probe.timer)
        timed = self.reconnect or status == "ok"
        self._result(
            probe.seq,
            status,
            len(probe.payload),
            probe.report,
            rtt=rtt,
            connect=probe.connect if timed else None,
            handshake=probe.handshake if timed else None,
            detail=detail,
        )

    def report_extra(self, data: bytes) -> None:
        """
        Bytes came back that no probe sent: a corrupt reply for no probe
        (seq 0).
        """
        self._result(
            0,
            "corrupt",
            len(data),
            detail=f"{len(data)} bytes came back that no probe sent",
        )

    def report_dropped(self, detail: str) -> None:
        """
        The server closed the connection with no probe on it: an error for
        no probe (seq 0), not counted; the next probe connects again.
        """
        self._result(0, "error", 0, detail=f"{detail}; reconnecting")

    def hinted(self, detail: str, probe: _Probe) -> str:
        """
        @return: C{detail}, with the TLS hint if the probe went over plain
            TCP and failed as against a TLS port.
        """
        if self._plain_tcp is None:
            return detail
        if looks_like_tls(EchoClosedEarly(probe.got, len(probe.payload)), probe.got):
            return f"{detail} {tls_hint(self._plain_tcp)}"
        return detail

    def forget(self, connection: _Connection) -> None:
        """
        C{connection} is gone: the next probe connects again.
        """
        self._connections.discard(connection)
        if self._current is connection:
            self._current = None

    def stop(self) -> Deferred[None]:
        """
        Stop (see L{ProbePath.stop}): cancel the probes' timers and close
        every connection cleanly.
        """
        closing = []
        for connection in list(self._connections):
            for probe in connection.probes:
                cancel(probe.timer)
            closing.append(connection.close())
        self._stopped = True
        done: Deferred[None] = DeferredList(closing).addCallback(lambda _: None)
        return done
