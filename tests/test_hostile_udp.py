"""
UDP echo (RFC 862 datagrams), live: echoed to ordinary clients, whole up
to 64 KiB, rate limited per source, never answered to reflector ports, with
a client that retries, reads long echoes and matches IPv6 addresses however
they are written.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sockets import HOST, TIMEOUT
from twistd_support import Server, environment, twistd_echo

from echotwist.server.udp import REFLECTOR_PORTS


@pytest.fixture
def udp_server(request: pytest.FixtureRequest) -> Iterator[tuple[Server, int]]:
    """
    A twistd echo with UDP on 127.0.0.1 (or the IPv6 loopback C{::1}, given
    by indirect parametrisation, skipped where IPv6 is off), a burst of 5
    and a very slow refill, so rate limiting shows within one test.

    @return: the server and its UDP port.
    """
    address = f"{HOST}:0"
    if getattr(request, "param", HOST) == "::1":
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.bind(("::1", 0))
        except OSError as e:
            pytest.skip(f"no IPv6 loopback: {e}")
        address = "[::1]:0"
    with twistd_echo(
        "--udp", address, "--udp-burst", "5", "--udp-rate", "0.01"
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


def _client(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", "--udp", *args],
        input=stdin,
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


def test_udp_large_datagram_whole(udp_server: tuple[Server, int]) -> None:
    """
    A 10,000-byte datagram comes back whole (Twisted's default read size
    would have cut it to 8192 bytes).
    """
    _, port = udp_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.bind((HOST, 0))
        datagram = bytes(range(256)) * 39 + b"x" * 16
        sock.sendto(datagram, (HOST, port))
        assert sock.recv(65535) == datagram


def test_udp_long_echo(udp_server: tuple[Server, int]) -> None:
    """
    A 20,000-byte datagram comes back whole to the client (not cut at 8,192
    bytes and reported as a mismatch).
    """
    _, port = udp_server
    data = bytes(range(256)) * 78
    result = _client("--host", HOST, "--port", str(port), "-", stdin=data)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == data


@pytest.mark.parametrize("udp_server", ["::1"], indirect=True)
def test_udp_ipv6_written_long(udp_server: tuple[Server, int]) -> None:
    """
    C{--host ::0001} gets its echo, though the reply comes from C{::1}.
    """
    _, port = udp_server
    result = _client("--host", "::0001", "--port", str(port), "--timeout", "2", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hi\n", b"")
