"""
UDP echo (RFC 862 datagrams), live: echoed to ordinary clients, rate
limited per source, never answered to reflector ports, with a client that
retries.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sockets import HOST
from twistd_support import Server, environment, twistd_echo

from echotwist.udp import REFLECTOR_PORTS


@pytest.fixture
def udp_server() -> Iterator[tuple[Server, int]]:
    """
    A twistd echo with UDP on 127.0.0.1, a burst of 5 and a very slow
    refill, so rate limiting shows within one test.

    @return: the server and its UDP port.
    """
    with twistd_echo(
        "--udp", f"{HOST}:0", "--udp-burst", "5", "--udp-rate", "0.01"
    ) as server:
        match = server.wait_for(r"EchoDatagramProtocol starting on (\d+)")
        yield server, int(match.group(1))


def _replies(sock: socket.socket, count: int) -> list[bytes]:
    """
    @return: the datagrams received until none comes for 0.5 s (at most
        C{count}).
    """
    sock.settimeout(0.5)
    replies = []
    for _ in range(count):
        try:
            replies.append(sock.recv(65535))
        except TimeoutError:
            break
    return replies


def test_udp_echo_and_rate_limit(udp_server: tuple[Server, int]) -> None:
    """
    The first five datagrams from a source come back unchanged; the rest of
    a burst of twenty are dropped, and the count shows in the summary line.
    """
    server, port = udp_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        for i in range(20):
            sock.sendto(b"datagram %d" % i, (HOST, port))
        assert _replies(sock, 20) == [b"datagram %d" % i for i in range(5)]
    assert server.stop() == 0
    server.wait_for(r"UDP: 5 datagrams echoed, 15 dropped")


def test_udp_reflector_port_ignored(udp_server: tuple[Server, int]) -> None:
    """
    A datagram from a known reflector's port (one this test can bind) is
    never answered.
    """
    server, port = udp_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for source in sorted(REFLECTOR_PORTS):
            try:
                sock.bind((HOST, source))
                break
            except OSError:
                continue
        else:
            pytest.fail("no reflector port free to send from")
        sock.sendto(b"loop?", (HOST, port))
        assert _replies(sock, 1) == []
    assert server.stop() == 0
    server.wait_for(r"UDP: 0 datagrams echoed, 1 dropped")
    server.wait_for(r"1 from refused source ports")


def _client(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", "--udp", *args],
        capture_output=True,
        timeout=30,
        env=environment(),
    )


def test_udp_client(udp_server: tuple[Server, int]) -> None:
    """
    C{echotwist-client --udp} prints the echo; once its source is over the
    limit it retries, then gives up with exit code 3 and one line.
    """
    _, port = udp_server
    ok = _client("--host", HOST, "--port", str(port), "hello udp")
    assert (ok.returncode, ok.stdout) == (0, b"hello udp\n")
    for _ in range(4):
        _client("--host", HOST, "--port", str(port), "x")
    limited = _client(
        "--host",
        HOST,
        "--port",
        str(port),
        "--timeout",
        "0.2",
        "--retries",
        "2",
        "x",
    )
    assert limited.returncode == 3
    assert limited.stderr.decode().endswith("(3 tries)\n")
    assert len(limited.stderr.splitlines()) == 1
