"""
What a probe carries: C{--size} bytes of a C{--pattern}.

C{random} (the default) is new bytes for every probe, so an echo that is
shifted, truncated or spliced from another probe's can't pass as exact;
C{zeros} and C{ascii} are the same every time (a middlebox that compresses
or filters text shows with them); a hex string is repeated to the size.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable

__all__ = ["PATTERNS", "PatternError", "payloads"]

#: The named patterns.
PATTERNS = ("random", "zeros", "ascii")
_ASCII = (string.ascii_letters + string.digits + string.punctuation).encode()


class PatternError(ValueError):
    """
    A C{--pattern} that is neither a name nor a hex string.
    """


def payloads(pattern: str, size: int) -> Callable[[int], bytes]:
    """
    @param pattern: C{random}, C{zeros}, C{ascii}, or a hex string (such as
        C{deadbeef}) to repeat.
    @param size: bytes per probe.
    @return: a function of the sequence number giving each probe's bytes.
    @raise PatternError: for a pattern that is none of those.
    """
    if pattern == "random":
        return lambda seq: os.urandom(size)
    if pattern == "zeros":
        fixed = bytes(size)
    elif pattern == "ascii":
        fixed = _repeat(_ASCII, size)
    else:
        try:
            unit = bytes.fromhex(pattern)
        except ValueError:
            unit = b""
        if not unit:
            raise PatternError(
                f"{pattern!r} is not a pattern (random, zeros, ascii, or hex "
                "digits such as deadbeef)"
            )
        fixed = _repeat(unit, size)
    return lambda seq: fixed


def _repeat(unit: bytes, size: int) -> bytes:
    """
    @return: C{unit} repeated and cut to C{size} bytes.
    """
    return (unit * (size // len(unit) + 1))[:size]
