"""
Check, before twistd daemonises, that each listener will be able to listen.

A daemonising twistd forks before it starts the service: a port that can't
be listened on is then only reported by twistd's own frame (C{An error has
occurred: ...}, truncated, and a traceback in the log).  So C{twistd echo}
without C{-n} tries what listening would meet first, while it still has the
terminal: a TCP, TLS or UDP address is bound (and let go at once), a UNIX
socket's directory must exist and be writable.  Whatever the check misses,
or what changes between the check and the start, is still reported when
the listener starts (see L{echotwist.server.tap.EchoService}).

Endpoint descriptions are read with Twisted's documented syntax: fields
separated by C{:}, C{name=value} for a named one, a backslash quoting the
next character.
"""

from __future__ import annotations

import os
import socket

from echotwist.server.endpoints import ListenerError, endpoint_kind, failure_reason

#: Kinds that wrap a whole inner description after their prefix.
_WRAPPERS = ("haproxy",)


def fields(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Split a description into its fields.

    @param description: an endpoint description, e.g. C{tcp:0:interface=\\:\\:1}.
    @return: the positional fields (the kind first) and the named ones.
    """
    positional: list[str] = []
    named: dict[str, str] = {}
    current: list[str] = []
    name: str | None = None
    chars = iter(description)

    def end_field() -> None:
        text = "".join(current)
        if name is None:
            positional.append(text)
        else:
            named[name] = text
        current.clear()

    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            end_field()
            name = None
        elif char == "=" and name is None:
            name = "".join(current)
            current.clear()
        else:
            current.append(char)
    end_field()
    return positional, named


def check_stream(description: str, option: str = "port") -> None:
    """
    Check that a stream endpoint will be able to listen.

    @param description: the full description (C{tcp}, C{tcp6}, C{ssl},
        C{unix}, any of them behind C{haproxy:}; other kinds are left to
        their start).
    @param option: the option it came from, for the message.
    @raise ListenerError: naming the option and why it can't listen.
    """
    inner = description
    while endpoint_kind(inner) in _WRAPPERS:
        inner = inner.split(":", 1)[1]
    kind = endpoint_kind(inner)
    positional, named = fields(inner)
    try:
        if kind in ("tcp", "tcp6", "ssl"):
            port = named.get("port", positional[1] if len(positional) > 1 else "")
            interface = named.get("interface", "::" if kind == "tcp6" else "")
            if port.isascii() and port.isdigit():
                _bind(socket.SOCK_STREAM, interface, int(port))
        elif kind == "unix":
            path = named.get("address", positional[1] if len(positional) > 1 else "")
            _check_directory(path)
    except OSError as e:
        raise ListenerError(option, description, failure_reason(e)) from None


def check_udp(interface: str, port: int, option: str = "udp") -> None:
    """
    Check that a UDP option (C{--udp}, C{--info-udp}) will be able to listen.

    @param interface: the interface (C{""} for all).
    @param port: the port number.
    @param option: the option, for the message.
    @raise ListenerError: naming the option and why it can't listen.
    """
    try:
        _bind(socket.SOCK_DGRAM, interface, port)
    except OSError as e:
        value = udp_value(interface, port)
        raise ListenerError(option, value, failure_reason(e)) from None


def udp_value(interface: str, port: int) -> str:
    """
    @param interface: C{--udp}'s interface (C{""} for all).
    @param port: its port.
    @return: C{--udp}'s value as it would be typed.
    """
    if ":" in interface:
        return f"[{interface}]:{port}"
    return f"{interface}:{port}" if interface else str(port)


def _bind(kind: socket.SocketKind, interface: str, port: int) -> None:
    """
    Bind a socket of C{kind} as Twisted's port would (C{SO_REUSEADDR} for a
    stream one), then close it.

    @raise OSError: as binding fails.
    """
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((interface, port))


def _check_directory(path: str) -> None:
    """
    Check that a UNIX socket (and the C{.lock} file Twisted makes beside it)
    can be made at C{path}: its directory exists and can be written.

    @raise OSError: saying what is wrong, naming the directory.
    """
    if not path or path.startswith(("\0", "@")):
        return  # the abstract namespace has no directory
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise FileNotFoundError(2, os.strerror(2), directory)
    if not os.path.isdir(directory):
        raise NotADirectoryError(20, os.strerror(20), directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(13, os.strerror(13), directory)
