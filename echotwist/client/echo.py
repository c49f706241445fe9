"""
One echo over a stream endpoint (TCP, TLS, UNIX).

C{echo(reactor, endpoint, data, timeout)} sends C{data} and fires with exactly
C{len(data)} echoed bytes, however TCP splits them, or fails with one of the
L{EchoError}s (or the endpoint's own L{ConnectError}).
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from echotwist.client.closing import close_cleanly
from echotwist.client.errors import (
    EchoClosedEarly,
    EchoMismatch,
    EchoTimeout,
    tls_failure,
)

__all__ = ["EchoClientProtocol", "echo", "start_echo"]


class EchoClientProtocol(Protocol):
    """
    Send one message, check the echo byte for byte as it arrives, and close
    cleanly once all of it is back.

    @ivar finished: fires with the echoed bytes, or fails with an
        L{EchoError}; cancelling it aborts the connection.
    @ivar closed: fires once the connection is closed (after L{finished}).
    @ivar connected_at: when the connection was made, by the clock given.
    """

    def __init__(self, data: bytes, clock: IReactorTime) -> None:
        self._data = data
        self._clock = clock
        self._received: list[bytes] = []
        self._count = 0
        self._abort: IDelayedCall | None = None
        self.connected_at: float | None = None
        self.finished: Deferred[bytes] = Deferred(self._cancel)
        self.closed: Deferred[None] = Deferred()

    @property
    def received(self) -> int:
        """
        Echoed bytes that came back so far.
        """
        return self._count

    def connectionMade(self) -> None:
        """
        Send the message (or finish at once if it is empty).
        """
        self.connected_at = self._clock.seconds()
        if self._data:
            self.transport.write(self._data)  # type: ignore[union-attr]
        else:
            self._done(None)

    def dataReceived(self, data: bytes) -> None:
        """
        Compare each chunk with the bytes sent at that offset.

        @param data: the next echoed bytes.
        """
        if self.finished.called:
            return
        start = self._count
        expected = self._data[start : start + len(data)]
        if data != expected:
            self._done(Failure(EchoMismatch.between(expected, data, start)))
            return
        self._received.append(data)
        self._count += len(data)
        if self._count == len(self._data):
            self._done(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Fail with L{EchoClosedEarly} if the echo was not complete.

        @param reason: why the connection ended.
        """
        if self._abort is not None and self._abort.active():
            self._abort.cancel()
        if not self.finished.called:
            tls = tls_failure(reason)
            self.finished.errback(tls or EchoClosedEarly(self._count, len(self._data)))
        if not self.closed.called:
            self.closed.callback(None)

    def _done(self, failure: Failure | None) -> None:
        """
        Close the connection and fire L{finished}.

        @param failure: L{None} for success, else why the echo failed.
        """
        if failure is None:
            self.finished.callback(b"".join(self._received))
            if self.transport is not None and not self.closed.called:
                self._abort = close_cleanly(self.transport, self._clock)
        else:
            self.finished.errback(failure)
            self.transport.loseConnection()  # type: ignore[union-attr]

    def _cancel(self, finished: Deferred[bytes]) -> None:
        """
        Abort the connection when L{finished} is cancelled (on timeout).
        """
        finished.errback(CancelledError())
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


def start_echo(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    data: bytes,
    timeout: float = 10.0,
) -> tuple[EchoClientProtocol, Deferred[bytes]]:
    """
    Like L{echo}, but also hand back the protocol, for its timings and its
    L{EchoClientProtocol.closed}.

    @return: the protocol, and the L{Deferred} L{echo} returns.
    """
    protocol = EchoClientProtocol(data, reactor)
    connecting = connectProtocol(endpoint, protocol)

    def connected(_: object) -> Deferred[bytes]:
        return protocol.finished

    def timed_out(result: object, timeout: float) -> object:
        if isinstance(result, Failure) and result.check(
            CancelledError, ConnectingCancelledError
        ):
            return Failure(EchoTimeout(timeout))
        return result

    result: Deferred[bytes] = connecting.addCallback(connected)
    result.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    return protocol, result


def echo(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    data: bytes,
    timeout: float = 10.0,
) -> Deferred[bytes]:
    """
    Send C{data} to the echo server at C{endpoint} and collect the echo.

    @param reactor: the reactor, for the timeout (a
        L{twisted.internet.task.Clock} in tests).
    @param endpoint: where the server is, e.g. from
        L{twisted.internet.endpoints.clientFromString}.
    @param data: the message; any bytes, any length.
    @param timeout: seconds allowed for connecting and the whole echo.
    @return: a L{Deferred} firing with exactly C{data}, or failing with
        L{EchoTimeout}, L{EchoMismatch}, L{EchoClosedEarly}, or the
        endpoint's L{twisted.internet.error.ConnectError}.
    """
    return start_echo(reactor, endpoint, data, timeout)[1]
