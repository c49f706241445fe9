"""
The speed work keeps every transport correct: a large echo in order, with
the client not reading while it sends (so backpressure engages), then a
half-close, over TCP, UNIX and TLS, on C{twistd echo}'s default reactor
(C{echotwist-epoll}) and on Twisted's own epoll reactor.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sockets import HOST, TIMEOUT
from twistd_support import LOOPBACK, twistd_echo

SIZE = 4 * 1024 * 1024  # far past the transport's 64 KiB bufferSize


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """
    Write a self-signed certificate and its key for C{localhost}.

    @return: the key's path and the certificate's path.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(params=["default", "epoll"])
def ports(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[dict[str, object]]:
    """
    A C{twistd echo} on TCP, UNIX and TLS, on one of the two reactors.

    @return: C{tcp} and C{tls} port numbers and the C{unix} path.
    """
    key, cert = write_certificate(tmp_path)
    path = tmp_path / "echo.sock"
    reactor = [] if request.param == "default" else ["--reactor", request.param]
    tls_port = f"ssl:0:interface={HOST}:privateKey={key}:certKey={cert}"
    # UNIX before TLS: a UNIX port logs before it binds, a TLS one once it
    # listens, so by the time all three have logged all three are up.
    listen = [LOOPBACK, f"unix:{path}", tls_port]
    with twistd_echo(
        ports=listen, directory=tmp_path, twistd_options=reactor
    ) as server:
        tcp = server.wait_for(r"EchoFactory starting on (\d+)")
        tls = server.wait_for(r"EchoFactory \(TLS\) starting on (\d+)")
        yield {"tcp": int(tcp.group(1)), "tls": int(tls.group(1)), "unix": str(path)}


def send_then_read(sock: socket.socket, data: bytes, half_close: bool) -> bytes:
    """
    Send all of C{data} from a thread while reading nothing for a moment,
    then read the echo.

    @param half_close: shut our sending side once sent and read to EOF;
        otherwise read exactly C{len(data)} bytes.
    @return: what came back.
    """
    sock.settimeout(TIMEOUT)

    def send() -> None:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(0.3)  # not reading: the server's buffer fills and it pauses
    chunks, got = [], 0
    while half_close or got < len(data):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    sender.join(TIMEOUT)
    return b"".join(chunks)


def tls_echo(sock: ssl.SSLSocket, data: bytes) -> bytes:
    """
    Send C{data} over TLS without reading for a moment, then send and read
    together until all of it is back; one thread, since an SSL socket must
    not be used from two at once.

    @return: what came back.
    """
    sock.setblocking(False)
    want = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
    sent, got, chunks = 0, 0, []
    quiet_until = time.monotonic() + 0.3  # not reading: backpressure engages
    deadline = time.monotonic() + TIMEOUT
    while got < len(data) and time.monotonic() < deadline:
        select.select([sock], [sock] if sent < len(data) else [], [], 0.05)
        if sent < len(data):
            with contextlib.suppress(*want):
                sent += sock.send(data[sent : sent + 65536])
        if time.monotonic() < quiet_until:
            continue
        with contextlib.suppress(*want):
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
                got += len(chunk)
    return b"".join(chunks)


def test_tcpHalfClose(ports: dict[str, object]) -> None:
    """
    TCP: a 4 MiB echo comes back whole and in order, then EOF after the
    client's half-close.
    """
    data = os.urandom(SIZE)
    with socket.create_connection((HOST, ports["tcp"])) as sock:  # type: ignore[arg-type]
        assert send_then_read(sock, data, half_close=True) == data


def test_unixHalfClose(ports: dict[str, object]) -> None:
    """
    UNIX: the same over a UNIX socket (which takes the direct-send path too).
    """
    data = os.urandom(SIZE)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(ports["unix"]))
        assert send_then_read(sock, data, half_close=True) == data


def test_tls(ports: dict[str, object]) -> None:
    """
    TLS: a 4 MiB echo comes back decrypted, whole and in order (the direct-send
    path must never bypass TLS).
    """
    data = os.urandom(SIZE)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HOST, ports["tls"])) as raw,  # type: ignore[arg-type]
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        assert tls_echo(sock, data) == data
