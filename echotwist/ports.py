"""
Port numbers as every echotwist program reads them, and the one wording
they all use for one that is out of range.

A port number is 0-65535 everywhere: a server reads 0 as "any free port",
and a client, which can't connect to port 0, says so in its own words
(L{CONNECT_ZERO}) rather than with another range.
"""

from __future__ import annotations

#: The largest TCP or UDP port number.
MAX_PORT = 65535

#: What a port number is, in every message about one.
PORT_RANGE = f"a port number is 0-{MAX_PORT}"

#: Why a client refuses port 0.
CONNECT_ZERO = "port 0 means any free port to a server: connect to the port it chose"


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


def not_a_port(what: str, text: str) -> str:
    """
    @param what: the option or argument, as the user typed it (C{--port}).
    @param text: its value, as typed.
    @return: the message for a value that is not a port number.
    """
    return f"{what} {text}: {PORT_RANGE}"
