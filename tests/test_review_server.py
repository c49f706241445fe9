"""
Live tests of the server fixes from review: real C{twistd echo} processes,
real sockets.
"""

from __future__ import annotations

import datetime
import select
import shutil
import socket
import tempfile
from contextlib import ExitStack, suppress
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twistd_support import TIMEOUT, twistd_echo

HOST = "127.0.0.1"
#: Seconds a socket must stay unwritable to count as stalled.
STALL = 2.0
#: What a worker's relayed log says once it listens.
WORKER_STARTED = r"worker \d+: \[-\] EchoFactory starting on"


def self_signed_pem() -> bytes:
    """
    @return: a throwaway key and a certificate for it, in one PEM.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


def closed_by_server(sock: socket.socket) -> bool:
    """
    @return: whether the server has closed C{sock} (an end of file or a
        reset), waiting at most L{TIMEOUT} for it.
    """
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_tls_refusals_closed_quietly(tmp_path: Path) -> None:
    """
    On an C{ssl:} port at C{--max-connections 1}, each connection over the
    limit is closed at once, the limit is logged once, and nothing is logged
    as an error.
    """
    pem = tmp_path / "server.pem"
    pem.write_bytes(self_signed_pem())
    options = [
        "--port",
        f"ssl:0:interface={HOST}:privateKey={pem}",
        "--max-connections",
        "1",
    ]
    with twistd_echo(tmp_path, options) as twistd, ExitStack() as stack:
        log = twistd.wait_for_log(r"EchoFactory \(TLS\) starting on \d+")
        port = int(log.split("EchoFactory (TLS) starting on ")[1].split()[0])
        stack.enter_context(socket.create_connection((HOST, port), timeout=TIMEOUT))
        twistd.wait_for_log("Connected by")
        for _ in range(3):
            sock = stack.enter_context(socket.create_connection((HOST, port)))
            assert closed_by_server(sock)
        log = twistd.log()
    assert log.count("Connection limit (1) reached") == 1
    assert "Unhandled Error" not in log
    assert "Traceback" not in log


def test_non_reading_client_aborted_at_idle_timeout(tmp_path: Path) -> None:
    """
    A client that sends until the server stops reading from it, and never
    reads its echo, is aborted at C{--idle-timeout}, which frees its slot:
    at C{--max-connections 1} the next client is served.
    """
    options = [
        "--port",
        f"tcp:0:interface={HOST}",
        "--idle-timeout",
        "1",
        "--max-connections",
        "1",
    ]
    with twistd_echo(tmp_path, options) as twistd, socket.socket() as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((HOST, twistd.port))
        stuck.setblocking(False)
        chunk = b"x" * 65536
        # Fill every buffer on the way, until the server stops reading (or
        # has already aborted the connection).
        with suppress(ConnectionResetError, BrokenPipeError):
            while select.select([], [stuck], [], STALL)[1]:
                with suppress(BlockingIOError):
                    stuck.send(chunk)
        twistd.wait_for_log(r"Aborting .*: nothing received for 1.0 s")
        with socket.create_connection((HOST, twistd.port), TIMEOUT) as sock:
            sock.sendall(b"next")
            assert sock.recv(4) == b"next"


def test_udp_large_datagram_whole(tmp_path: Path) -> None:
    """
    A 10,000-byte datagram comes back whole (Twisted's default read size
    would have cut it to 8192 bytes).
    """
    options = ["--port", f"tcp:0:interface={HOST}", "--udp", f"{HOST}:0"]
    with twistd_echo(tmp_path, options) as twistd:
        log = twistd.wait_for_log(r"EchoDatagramProtocol starting on \d+")
        port = int(log.split("EchoDatagramProtocol starting on ")[1].split()[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.bind((HOST, 0))
            datagram = bytes(range(256)) * 39 + b"x" * 16
            sock.sendto(datagram, (HOST, port))
            assert sock.recv(65535) == datagram


def test_worker_stopping_keeps_unix_path(tmp_path: Path) -> None:
    """
    With C{--workers 2} on a C{unix:} port, a worker that is stopped (and
    replaced) leaves the socket's path in place: clients still connect.
    """
    path = Path(tempfile.mkdtemp()) / "echo.sock"
    options = ["--port", f"unix:{path}", "--workers", "2"]
    try:
        with twistd_echo(tmp_path, options) as twistd:
            twistd.wait_for_log(WORKER_STARTED, count=2)
            [first, _] = psutil.Process(twistd.process.pid).children()
            first.terminate()
            twistd.wait_for_log(r"worker \d exited")
            assert path.exists()
            for _ in range(5):
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(TIMEOUT)
                    sock.connect(str(path))
                    sock.sendall(b"still here")
                    sock.shutdown(socket.SHUT_WR)
                    assert sock.recv(64) == b"still here"
    finally:
        shutil.rmtree(path.parent)
