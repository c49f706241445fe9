"""
Counts in log lines and messages, in English: C{1 connection}, C{2
connections}.
"""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """
    @param number: how many.
    @param noun: the noun for one (C{connection}).
    @param plural: the noun for any other number, if not C{noun} + C{s}.
    @return: C{"1 connection"}, C{"0 connections"}, C{"2 connections"}.
    """
    if number == 1:
        return f"1 {noun}"
    return f"{number} {plural or noun + 's'}"


def were(number: int) -> str:
    """
    @param number: how many.
    @return: C{was} for one, C{were} for any other number.
    """
    return "was" if number == 1 else "were"
