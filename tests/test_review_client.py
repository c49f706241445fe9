"""
Live tests of C{echotwist-client} for what review found: long UDP echoes,
IPv6 addresses written differently from the sender's, and every expected
failure as one line and a non-zero exit, never a traceback or a hang.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from _hostile_helpers import environment


def _serve(sock: socket.socket, stop: threading.Event) -> None:
    """
    Echo every datagram on C{sock} back to its sender until C{stop} is set.
    """
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            datagram, source = sock.recvfrom(65535)
        except TimeoutError:
            continue
        sock.sendto(datagram, source)


def _udp_echo(family: socket.AddressFamily, host: str) -> Iterator[int]:
    """
    A plain socket UDP echo on C{host}, in a thread.

    @return: its port.
    """
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        stop = threading.Event()
        thread = threading.Thread(target=_serve, args=(sock, stop))
        thread.start()
        try:
            yield sock.getsockname()[1]
        finally:
            stop.set()
            thread.join()


@pytest.fixture
def udp_echo() -> Iterator[int]:
    """
    A UDP echo on 127.0.0.1 that answers datagrams of any size.

    @return: its port.
    """
    yield from _udp_echo(socket.AF_INET, "127.0.0.1")


def _client(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """
    @return: how C{python -m echotwist.client ARGS} ended.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        env=environment(),
    )


def test_udp_long_echo(udp_echo: int) -> None:
    """
    A 20,000-byte datagram comes back whole (not cut at 8,192 bytes and
    reported as a mismatch).
    """
    data = bytes(range(256)) * 78
    result = _client(
        "--udp", "--host", "127.0.0.1", "--port", str(udp_echo), "-", stdin=data
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == data


@pytest.fixture
def udp_echo6() -> Iterator[int]:
    """
    A UDP echo on C{::1}, or a skip where IPv6 is off.

    @return: its port.
    """
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        yield from _udp_echo(socket.AF_INET6, "::1")
    except OSError as e:
        pytest.skip(f"no IPv6 loopback: {e}")


def test_udp_ipv6_written_long(udp_echo6: int) -> None:
    """
    C{--host ::0001} gets its echo, though the reply comes from C{::1}.
    """
    result = _client(
        "--udp", "--host", "::0001", "--port", str(udp_echo6), "--timeout", "2", "hi"
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hi\n", b"")


@pytest.mark.parametrize(
    "argv",
    [
        ["--udp", "--host", "255.255.255.255", "hi"],
        ["--host", "a..b", "hi"],
        ["--udp", "--host", "a..b", "hi"],
        ["--connect", "tcp:host=a..b:port=1", "hi"],
    ],
)
def test_cannot_connect(argv: list[str]) -> None:
    """
    A broadcast address, or a host name that can't be valid, over TCP or
    UDP: exit 1 with one line, not a traceback or a hang.
    """
    result = _client(*argv)
    assert result.returncode == 1
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("echotwist-client: cannot connect to ")
