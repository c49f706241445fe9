"""
The echo over a real loopback connection is exact for any chunks.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from sockets import connect, recv_exactly
from twistd_support import Server, twistd_echo

from echotwist.test.test_fuzz import MiB, chunks


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """
    One twistd echo for every example.
    """
    with twistd_echo() as running:
        yield running


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=chunks)
def test_loopback_echo_is_exact(server: Server, data: list[bytes]) -> None:
    """
    Chunks sent one by one on a connection, then a half-close: the bytes
    read back until the server closes are exactly the bytes sent.
    """
    assume(sum(map(len, data)) <= MiB)
    expected = b"".join(data)
    with connect(server.port) as sock:
        for piece in data:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, len(expected) + 1) == expected
