"""
Hints for the mistakes a user makes most: a plain client against a TLS
port.
"""

from __future__ import annotations

from echotwist.client.errors import EchoClosedEarly, EchoError, EchoMismatch

#: The first bytes of a TLS alert record (content type 21, version 3.x):
#: what a TLS server sends back to a plaintext client.
TLS_ALERT = b"\x15\x03"


def looks_like_tls(error: EchoError, received: int) -> bool:
    """
    @param error: why a plain (not TLS) echo failed.
    @param received: echoed bytes that had come back when it failed.
    @return: whether the server may have been speaking TLS: it closed with
        nothing echoed, answered with a TLS alert, or sent nothing back at
        all (a TLS server waits for the rest of a record).
    """
    if isinstance(error, EchoClosedEarly):
        return error.received == 0
    if isinstance(error, EchoMismatch):
        return error.offset == 0 and error.received.startswith(TLS_ALERT)
    return received == 0


def tls_hint(plain: str) -> str:
    """
    @param plain: the plain TCP endpoint used, as C{tcp:HOST:PORT}.
    @return: the hint to add to the error's line: the same over TLS.
    """
    tls = "tls:" + plain.split(":", 1)[1]
    return f"(the port may speak TLS: try --connect {tls}:trustRoots=DIR)"
