"""
Echo over TLS: C{--port ssl:...} on the server, C{--connect tls:...} on the
client, verified against a CA made at test time (no key is committed).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sockets import HOST, connect
from twistd_support import Server, environment, twistd_echo

CLIENT = [sys.executable, "-m", "echotwist.client"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(
    directory: Path, name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    Make a throwaway CA, its certificate alone in C{directory} (a
    C{trustRoots} directory).

    @return: the CA certificate and key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


@pytest.fixture
def tls_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """
    A CA, a server certificate it signed for 127.0.0.1 and localhost, and a
    second, unrelated CA.

    @return: paths: C{key}, C{cert}, C{roots} (the signing CA's directory)
        and C{other_roots}.
    """
    ca_cert, ca_key = make_ca(tmp_path / "roots", "echotwist test CA")
    make_ca(tmp_path / "other_roots", "some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "key": tmp_path / "server.key",
        "cert": tmp_path / "server.pem",
        "roots": tmp_path / "roots",
        "other_roots": tmp_path / "other_roots",
    }
    files["key"].write_bytes(_pem_key(key))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    yield files


def tls_port(tls_files: dict[str, Path]) -> str:
    """
    @param tls_files: from L{tls_files}.
    @return: the C{--port} for TLS on loopback with the server certificate.
    """
    keys = f"privateKey={tls_files['key']}:certKey={tls_files['cert']}"
    return f"ssl:0:{keys}:interface={HOST}"


@pytest.fixture
def tls_server(tls_files: dict[str, Path]) -> Iterator[Server]:
    """
    A C{twistd echo} serving TLS on loopback with the server certificate.
    """
    with twistd_echo(ports=[tls_port(tls_files)]) as server:
        yield server


def _client(
    server: Server, roots: Path, *args: str
) -> subprocess.CompletedProcess[bytes]:
    """
    Run the client against C{server} over TLS, to completion.

    @param server: the TLS server.
    @param roots: the C{trustRoots} directory the client verifies it with.
    @param args: more client arguments.
    @return: the finished client, output captured.
    """
    connect = f"tls:{HOST}:{server.port}:trustRoots={roots}"
    return subprocess.run(
        [*CLIENT, "--connect", connect, *args],
        capture_output=True,
        timeout=30,
        env=environment(),
    )


def test_tls_echo_verified(tls_server: Server, tls_files: dict[str, Path]) -> None:
    """
    The client verifies the server against the CA and gets the echo.
    """
    result = _client(tls_server, tls_files["roots"], "secret echo")
    assert (result.returncode, result.stdout) == (0, b"secret echo\n")
    assert "Connected by" in tls_server.output()


def test_tls_wrong_ca_refused(tls_server: Server, tls_files: dict[str, Path]) -> None:
    """
    Against another CA the client fails to connect (exit 1) with one line
    naming the verification failure, no traceback, and the server carries
    on.
    """
    result = _client(
        tls_server, tls_files["other_roots"], "--timeout", "10", "secret echo"
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert len(result.stderr.splitlines()) == 1
    assert b"certificate verify failed" in result.stderr
    assert b"Traceback" not in result.stderr
    ok = _client(tls_server, tls_files["roots"], "still up")
    assert ok.returncode == 0


def closed_by_server(sock: socket.socket) -> bool:
    """
    @param sock: a connected socket with a timeout.
    @return: whether the server has closed C{sock} (an end of file or a
        reset) before the timeout.
    """
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_tls_refusals_closed_quietly(tls_files: dict[str, Path]) -> None:
    """
    On an C{ssl:} port at C{--max-connections 1}, each connection over the
    limit is closed at once, the limit is logged once, and nothing is logged
    as an error.
    """
    limited = twistd_echo("--max-connections", "1", ports=[tls_port(tls_files)])
    with limited as server, connect(server.port):
        server.wait_for("Connected by")
        for _ in range(3):
            with connect(server.port) as sock:
                assert closed_by_server(sock)
        server.wait_for(r"Connection limit \(1\) reached")
        log = server.output()
    assert log.count("Connection limit (1) reached") == 1
    assert "Unhandled Error" not in log
    assert "Traceback" not in log


#: The C{--idle-timeout} of the idle TLS tests, in seconds.
IDLE = 2


@contextmanager
def handshaken(server: Server, roots: Path) -> Iterator[ssl.SSLSocket]:
    """
    A TLS connection to C{server}, its handshake done, verified against the
    CA in C{roots}.
    """
    context = ssl.create_default_context(cafile=str(roots / "ca.pem"))
    with context.wrap_socket(connect(server.port), server_hostname=HOST) as sock:
        yield sock


def idle_lines(server: Server) -> list[str]:
    """
    Wait for the connection to be freed.

    @return: the server's lines about the connection's end: C{Closing} (a
        clean close), C{Aborting}, C{Disconnected}.
    """
    server.wait_for(r"Disconnected ")
    return re.findall(
        r"(Closing|Aborting|Disconnected) .*", server.output(), flags=re.MULTILINE
    )


def test_tls_idle_client_freed_after_one_timeout(tls_files: dict[str, Path]) -> None:
    """
    A client that completes the TLS handshake, then neither sends nor
    reads, is freed at the first idle timeout: the server sends its TLS
    close and closes the connection without waiting for an answer, rather
    than waiting for one a whole timeout more and then aborting.
    """
    port = tls_port(tls_files)
    with (
        twistd_echo("--idle-timeout", str(IDLE), ports=[port]) as server,
        handshaken(server, tls_files["roots"]),
    ):
        lines = idle_lines(server)
    print("\n".join(lines))
    assert [line.split()[0] for line in lines] == ["Closing", "Disconnected"]


def test_tls_non_reading_client_aborted_at_once(tls_files: dict[str, Path]) -> None:
    """
    A client that sends over TLS and stops reading its echo is aborted at
    the first idle timeout: its echo can't be delivered, so no clean close
    is tried.
    """
    port = tls_port(tls_files)
    with (
        twistd_echo("--idle-timeout", str(IDLE), ports=[port]) as server,
        handshaken(server, tls_files["roots"]) as sock,
    ):
        sock.settimeout(IDLE / 2)
        with suppress(TimeoutError):
            sock.sendall(b"x" * 2**24)
        lines = idle_lines(server)
    print("\n".join(lines))
    assert [line.split()[0] for line in lines] == ["Aborting", "Disconnected"]
