"""
An echo client on Twisted endpoints.

C{echo(reactor, endpoint, data, timeout)} sends C{data} and fires with exactly
C{len(data)} echoed bytes, however TCP splits them, or fails with one of the
L{EchoError}s below (or the endpoint's own L{ConnectError}).
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

__all__ = [
    "EchoClientProtocol",
    "EchoClosedEarly",
    "EchoError",
    "EchoMismatch",
    "EchoTLSFailed",
    "EchoTimeout",
    "echo",
    "start_echo",
]


class EchoError(Exception):
    """
    The echo did not come back as sent.
    """


class EchoTimeout(EchoError):
    """
    No complete echo within the time allowed.
    """

    def __init__(self, timeout: float, message: str = "") -> None:
        """
        @param timeout: the seconds allowed.
        @param message: what to say, if not that no complete echo came back
            in C{timeout}.
        """
        super().__init__(message or f"no complete echo within {timeout:g} s")
        self.timeout = timeout


class EchoMismatch(EchoError):
    """
    A byte came back that was not the byte sent.
    """

    def __init__(self, offset: int, expected: bytes, received: bytes) -> None:
        super().__init__(
            f"echo differs at byte {offset}: sent {expected!r}, got {received!r}"
        )
        self.offset = offset

    @classmethod
    def between(cls, expected: bytes, received: bytes, start: int = 0) -> EchoMismatch:
        """
        @param expected: bytes sent.
        @param received: the bytes that came back in their place, not equal
            to C{expected}.
        @param start: the offset of both in the whole message.
        @return: the mismatch at the first byte that differs, or where the
            shorter of the two ends.
        """
        pairs = zip(expected, received, strict=False)
        i = next(
            (i for i, (a, b) in enumerate(pairs) if a != b),
            min(len(expected), len(received)),
        )
        return cls(start + i, expected[i : i + 16], received[i : i + 16])


class EchoClosedEarly(EchoError):
    """
    The server closed before the whole message came back.
    """

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(
            f"connection closed after {received} of {expected} echoed bytes"
        )
        self.received = received
        self.expected = expected


class EchoTLSFailed(EchoError):
    """
    The TLS handshake failed (for instance, the server's certificate did not
    verify): nothing was echoed because no connection was really made.
    """


def _tls_failure(reason: Failure) -> EchoTLSFailed | None:
    """
    @param reason: why a connection ended.
    @return: an L{EchoTLSFailed} naming the OpenSSL error if C{reason} is
        one, else L{None}.
    """
    error = reason.value
    if error is None or not type(error).__module__.startswith("OpenSSL"):
        return None
    errors = error.args[0] if error.args else []
    detail = errors[-1][-1] if errors and isinstance(errors[-1], tuple) else ""
    return EchoTLSFailed(f"TLS handshake failed: {detail or error}")


class EchoClientProtocol(Protocol):
    """
    Send one message, check the echo byte for byte as it arrives, and close
    once all of it is back.

    @ivar finished: fires with the echoed bytes, or fails with an
        L{EchoError}; cancelling it aborts the connection.
    @ivar connected_at: when the connection was made, by the clock given.
    """

    def __init__(self, data: bytes, clock: IReactorTime) -> None:
        self._data = data
        self._clock = clock
        self._received: list[bytes] = []
        self._count = 0
        self.connected_at: float | None = None
        self.finished: Deferred[bytes] = Deferred(self._cancel)

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
        if not self.finished.called:
            tls = _tls_failure(reason)
            self.finished.errback(tls or EchoClosedEarly(self._count, len(self._data)))

    def _done(self, failure: Failure | None) -> None:
        """
        Close the connection and fire L{finished}.

        @param failure: L{None} for success, else why the echo failed.
        """
        self.transport.loseConnection()  # type: ignore[union-attr]
        if failure is None:
            self.finished.callback(b"".join(self._received))
        else:
            self.finished.errback(failure)

    def _cancel(self, finished: Deferred[bytes]) -> None:
        """
        Abort the connection when L{finished} is cancelled (on timeout).
        """
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


def start_echo(
    reactor: IReactorTime,
    endpoint: IStreamClientEndpoint,
    data: bytes,
    timeout: float = 10.0,
) -> tuple[EchoClientProtocol, Deferred[bytes]]:
    """
    Like L{echo}, but also hand back the protocol, for its timings.

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
