"""
Marking probes: the IP TOS byte (or IPv6 traffic class) of their sockets,
C{--tos} or C{--dscp} (the TOS byte's upper six bits), so a path's QoS
treatment can be checked. A TCP connection is marked once connected: its
SYN goes unmarked, its probes marked.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["mark_socket", "socket_of", "tos_marker"]


def socket_of(transport: Any) -> socket.socket | None:
    """
    @param transport: a connected transport, possibly TLS over TCP.
    @return: the socket under it, or L{None} if there is none to reach.
    """
    while transport is not None:
        get_handle = getattr(transport, "getHandle", None)
        handle = get_handle() if get_handle is not None else None
        if isinstance(handle, socket.socket):
            return handle
        transport = getattr(transport, "transport", None)
    return None


def mark_socket(sock: socket.socket, tos: int) -> None:
    """
    Set C{sock}'s TOS byte (IPv4) or traffic class (IPv6) to C{tos}.
    """
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
    elif sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)


def tos_marker(tos: int) -> Callable[[Any], None]:
    """
    @return: a function that marks a transport's socket with C{tos}.
    """

    def mark(transport: Any) -> None:
        sock = socket_of(transport)
        if sock is not None:
            mark_socket(sock, tos)

    return mark
