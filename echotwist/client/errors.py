"""
Why an echo failed: the errors the client's library raises.
"""

from __future__ import annotations

from twisted.python.failure import Failure

__all__ = [
    "EchoClosedEarly",
    "EchoError",
    "EchoMismatch",
    "EchoTLSFailed",
    "EchoTimeout",
    "tls_failure",
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
        self.received = received

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


def tls_failure(reason: Failure) -> EchoTLSFailed | None:
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
