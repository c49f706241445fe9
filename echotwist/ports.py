"""
Port numbers as every echotwist program reads them, and the one wording
they all use for a value that is not one.

A port number is 0-65535 everywhere: a server reads 0 as "any free port",
and a client, which can't connect to port 0, says so in its own words
(L{connect_zero}) rather than with another range.
"""

from __future__ import annotations

import argparse

#: The largest TCP or UDP port number.
MAX_PORT = 65535

#: The range of port numbers, as every message says it.
PORT_RANGE = f"0-{MAX_PORT}"


def port_number(text: str) -> int | None:
    """
    Read a port number as typed.

    @param text: an option's value, or the port part of one.
    @return: the number C{text} spells in ASCII digits, after an optional
        minus sign and whether or not it is in range (the caller says what
        is wrong with it), or L{None} if it spells none.  (C{str.isdigit}
        alone would accept digits C{int} rejects, such as C{"\u00b2"}.)
    """
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit():
        return int(text)
    return None


def not_a_port(text: object) -> str:
    """
    @param text: the value, as typed.
    @return: the message for a value that is not a port number:
        C{'70000' is not a port number (0-65535)}.
    """
    return f"{str(text)!r} is not a port number ({PORT_RANGE})"


def connect_zero(text: object = "0") -> str:
    """
    @param text: the value, as typed.
    @return: the message for port 0 given to a client.
    """
    return (
        f"{str(text)!r} is not a port to connect to: 0 means any free port to a server"
    )


def connect_port(text: str) -> int:
    """
    Read a client's server port from the command line (an C{argparse}
    type).

    @param text: the argument as typed.
    @return: the port, 1 to 65535 (port 0 is "any free port" to a server,
        and no server can be reached on it).
    @raise argparse.ArgumentTypeError: if C{text} is not such a number.
    """
    port = port_number(text)
    if port is None or not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(not_a_port(text))
    if port == 0:
        raise argparse.ArgumentTypeError(connect_zero(text))
    return port
