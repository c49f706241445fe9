"""
Live tests of PROXY protocol ports (C{--port haproxy:...}), C{--proxy-from},
and the info ports (C{--info}, C{--info-udp}), against C{twistd echo}
processes; the clients send the headers themselves (C{tests/test_haproxy.py}
puts a real HAProxy in front).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT, connect, listen_backlog
from test_workers import metrics_port, scrape, two_workers
from twistd_support import LOOPBACK, environment, twistd_echo

from echotwist.test.support import proxy_v2_header, tlv
from echotwist.tls import write_files

PROXY_PORT = f"haproxy:tcp:0:interface={HOST}"
V1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 9000\r\n"
VIA = r"\('192\.0\.2\.7', 5555\) via PROXY v1 from \('127\.0\.0\.1', \d+\)"
INFO_STARTED = r"InfoFactory(?: \((?:TLS|PROXY)\))* starting on (\d+)"


def read_all(sock: socket.socket) -> bytes:
    """
    @return: what C{sock} receives until the peer closes.
    """
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def proxied_echo(port: int, header: bytes, data: bytes) -> bytes:
    """
    Send C{header} and C{data} on a new connection, shut the sending side,
    and read to the end.
    """
    with connect(port) as sock:
        sock.sendall(header + data)
        sock.shutdown(socket.SHUT_WR)
        return read_all(sock)


def test_echo_half_close_backlog(tmp_path: Path) -> None:
    """
    A v1 and a v2 header (the v2 one sent a byte at a time) are followed by
    the echo; a half-close gets the whole echo then the close; the log
    names the client and the proxy; C{--backlog} reaches the socket.
    """
    with twistd_echo("--backlog", "7", ports=[PROXY_PORT], directory=tmp_path) as s:
        assert proxied_echo(s.port, V1, b"hello" * 1000) == b"hello" * 1000
        s.wait_for(f"Connected by {VIA}")
        s.wait_for(f"Disconnected {VIA}: 5000 bytes in, 5000 bytes out")
        with connect(s.port) as sock:
            for byte in proxy_v2_header(tlvs=tlv(0x02, b"example.com")):
                sock.sendall(bytes([byte]))
            sock.sendall(b"two")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock) == b"two"
        s.wait_for(r"Connected by \('192\.0\.2\.7', 5555\) via PROXY v2")
        assert listen_backlog(s.port) == 7


@pytest.mark.parametrize(
    ("port", "family", "address"),
    [
        ("haproxy:tcp6:0:interface=\\:\\:1", socket.AF_INET6, ("::1",)),
        ("haproxy:unix:{}/echo.sock", socket.AF_UNIX, ()),
    ],
)
def test_tcp6_and_unix(
    tmp_path: Path, port: str, family: socket.AddressFamily, address: tuple[str]
) -> None:
    """
    IPv6 and UNIX socket ports take headers too (a UNIX socket's peer is not
    checked against C{--proxy-from}).
    """
    port = port.format(tmp_path)
    with twistd_echo(ports=[port, LOOPBACK], directory=tmp_path) as server:
        if family == socket.AF_UNIX:
            target: tuple[str, int] | str = str(tmp_path / "echo.sock")
        else:
            number = server.wait_for(r"EchoFactory \(PROXY\) starting on (\d+)")
            target = (*address, int(number.group(1)))
        with socket.socket(family) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(target)
            sock.sendall(b"PROXY TCP6 2001:db8::7 ::1 5555 9000\r\nsix")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock) == b"six"
        server.wait_for(r"Connected by \('2001:db8::7', 5555\) via PROXY v1 from")


def test_limits(tmp_path: Path) -> None:
    """
    C{--max-connections} and C{--idle-timeout} work as on a plain port: the
    connection over the limit is closed after its header (the refusal
    naming its client), an idle one is closed, named by its client.
    """
    with twistd_echo(
        "--max-connections",
        "1",
        "--idle-timeout",
        "3",
        ports=[PROXY_PORT],
        directory=tmp_path,
    ) as server:
        with connect(server.port) as first:
            first.sendall(V1 + b"a")
            assert first.recv(1) == b"a"
            other = b"PROXY TCP4 192.0.2.8 10.0.0.1 6666 9000\r\n"
            assert proxied_echo(server.port, other, b"b") == b""
            server.wait_for(r"first refused: \('192\.0\.2\.8', 6666\)")
            assert read_all(first) == b""
        server.wait_for(f"Closing {VIA}: idle for 3.0 s")


def test_rejected(tmp_path: Path) -> None:
    """
    Garbage, a malformed header, and a header not complete within
    C{--proxy-timeout} are each closed with one line, nothing echoed; and
    C{--proxy-from} shuts out a peer outside it.
    """
    with twistd_echo(
        "--proxy-timeout", "0.5", ports=[PROXY_PORT], directory=tmp_path
    ) as server:
        assert proxied_echo(server.port, b"", b"GET / HTTP/1.0\r\n\r\n") == b""
        server.wait_for(r"on a PROXY port: no PROXY header \(first bytes b'GET /")
        assert proxied_echo(server.port, b"PROXY TCP4 x y 1 2\r\n", b"z") == b""
        server.wait_for(r"on a PROXY port: malformed PROXY v1 header")
        with connect(server.port) as sock:
            sock.sendall(V1[:10])
            assert read_all(sock) == b""
        server.wait_for(r"no complete PROXY header within 0\.5 s \(10 bytes\)")
        assert "Connected by" not in server.output()
    with twistd_echo(
        "--proxy-from", "10.0.0.0/8", ports=[PROXY_PORT], directory=tmp_path
    ) as server:
        assert proxied_echo(server.port, V1, b"spoofed") == b""
        server.wait_for(r"Closed \('127\.0\.0\.1', \d+\) on a PROXY port: its address")
        assert "Connected by" not in server.output()


def test_flood_summarised(tmp_path: Path) -> None:
    """
    A flood of bad connections gets ten lines, then one count at the end of
    the interval, not a line each.
    """
    with twistd_echo(ports=[PROXY_PORT], directory=tmp_path) as server:
        for _ in range(40):
            proxied_echo(server.port, b"", b"garbage")
        server.wait_for(r"Closed 30 more connections on PROXY ports in the last 10")
        assert len(re.findall("on a PROXY port", server.output())) == 10


def test_workers_and_metrics(tmp_path: Path) -> None:
    """
    C{--workers} shares a PROXY port: each worker reads the headers (the
    relayed log names the clients), and C{/metrics} counts the connections
    and the bytes echoed, not the headers, and the connections closed for
    want of one; the parent serves C{--info}.
    """
    with two_workers(
        "--metrics",
        LOOPBACK,
        "--info",
        PROXY_PORT,
        ports=[PROXY_PORT],
        directory=tmp_path,
    ) as twistd:
        for i in range(10):
            assert proxied_echo(twistd.port, V1, b"%d" % i) == b"%d" % i
        twistd.wait_for(rf"worker \d+: .*Connected by {VIA}", count=10)
        port = metrics_port(twistd)
        deadline = time.monotonic() + TIMEOUT
        while sum(scrape(port)["echotwist_connections"].values()) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert sum(scrape(port)["echotwist_bytes_echoed"].values()) == 10
        assert proxied_echo(twistd.port, b"", b"no header") == b""
        while sum(scrape(port)["echotwist_proxy_rejected_connections"].values()) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        info_port = int(twistd.wait_for(INFO_STARTED).group(1))
        info = json.loads(proxied_echo(info_port, V1, b""))
        assert info["client"] == {"host": "192.0.2.7", "port": 5555}


def test_info_ports(tmp_path: Path) -> None:
    """
    A plain info port describes the connection; a PROXY one the header too;
    UDP answers a datagram at least as long as its answer, and only that.
    """
    with twistd_echo(
        "--info",
        LOOPBACK,
        "--info-udp",
        f"{HOST}:0",
        ports=[PROXY_PORT],
        directory=tmp_path,
    ) as server:
        info_port = int(server.wait_for(INFO_STARTED).group(1))
        with connect(info_port) as sock:
            local_port = sock.getsockname()[1]
            info = json.loads(read_all(sock))
        assert info["client"] == info["peer"] == {"host": HOST, "port": local_port}
        assert info["local"] == {"host": HOST, "port": info_port}
        assert info["transport"] == "tcp"
        assert "proxy" not in info and "tls" not in info
        assert set(info) == {"client", "peer", "local", "transport", "time", "version"}

        udp_port = int(
            server.wait_for(r"InfoDatagramProtocol starting on (\d+)").group(1)
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(1.0)
            udp.bind((HOST, 0))
            client_port = udp.getsockname()[1]
            udp.sendto(b"x", (HOST, udp_port))
            with pytest.raises(TimeoutError):
                udp.recv(65536)
            udp.settimeout(TIMEOUT)
            udp.sendto(b"x" * 512, (HOST, udp_port))
            answer = udp.recv(65536)
        assert len(answer) <= 512
        udp_info = json.loads(answer)
        assert udp_info["client"] == {"host": HOST, "port": client_port}
        assert udp_info["transport"] == "udp"


def test_info_proxy_and_tls(tmp_path: Path) -> None:
    """
    A PROXY info port reports the header and its TLVs; a TLS info port the
    session: version, cipher and the SNI name the client sent.
    """
    files = write_files(tmp_path / "tls")
    tls = f"ssl:0:privateKey={files.key}:certKey={files.cert}:interface={HOST}"
    with twistd_echo("--info", PROXY_PORT, ports=[tls], directory=tmp_path) as server:
        info_port = int(server.wait_for(INFO_STARTED).group(1))
        header = proxy_v2_header(tlvs=tlv(0x02, b"example.com") + tlv(0x05, b"id-1"))
        info = json.loads(proxied_echo(info_port, header, b""))
        assert info["client"] == {"host": "192.0.2.7", "port": 5555}
        assert info["proxy"] == {
            "version": 2,
            "command": "PROXY",
            "family": "inet/stream",
            "source": {"host": "192.0.2.7", "port": 5555},
            "destination": {"host": "10.0.0.1", "port": 9000},
            "tlvs": {"authority": "example.com", "unique_id": "id-1"},
        }
    with twistd_echo("--info", tls, ports=[LOOPBACK], directory=tmp_path) as server:
        info_port = int(server.wait_for(INFO_STARTED).group(1))
        context = ssl.create_default_context(cafile=files.trust_roots / "ca.pem")
        with (
            connect(info_port) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            info = json.loads(read_all(sock))
            cipher = sock.cipher()
        assert info["transport"] == "tls"
        assert info["tls"]["sni"] == "localhost"
        assert cipher is not None
        assert info["tls"]["cipher"] == cipher[0]
        assert info["tls"]["version"] == cipher[1]
        assert info["tls"]["client_certificate"] is None


def test_bad_options() -> None:
    """
    A bad C{--proxy-from}, C{--info} or C{--info-udp} is one line and a
    non-zero exit.
    """
    twistd = str(Path(sys.executable).with_name("twistd"))
    for option, value, message in [
        ("--proxy-from", "10.0.0.0/33", "--proxy-from '10.0.0.0/33'"),
        ("--info", "nosuch:1", "--info 'nosuch:1'"),
        ("--info-udp", "x", "--info-udp 'x'"),
    ]:
        result = subprocess.run(
            [twistd, "-n", "--pidfile=", "echo", option, value],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=TIMEOUT,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert message in output, output
        assert "Traceback" not in output


def client(*args: str) -> subprocess.CompletedProcess[str]:
    """
    @return: how C{python -m echotwist.client ARGS} ran.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=TIMEOUT,
        check=False,
    )


def test_client_info(tmp_path: Path) -> None:
    """
    C{python -m echotwist.client --info} prints the info port's answer
    readably, C{--json} as the server sent it, over TCP and UDP; a message
    with C{--info} is a usage error.
    """
    with twistd_echo(
        "--info",
        LOOPBACK,
        "--info-udp",
        f"{HOST}:0",
        ports=[LOOPBACK],
        directory=tmp_path,
    ) as server:
        tcp = server.wait_for(INFO_STARTED).group(1)
        udp = server.wait_for(r"InfoDatagramProtocol starting on (\d+)").group(1)
        readable = client("--info", "--host", HOST, "--port", tcp)
        assert readable.returncode == 0, readable.stderr
        lines = readable.stdout.splitlines()
        assert re.fullmatch(rf"client +{re.escape(HOST)} port \d+", lines[0]), lines
        assert f"local      {HOST} port {tcp}" in lines
        assert "transport  tcp" in lines
        raw = client("--info", "--json", "--host", HOST, "--port", tcp)
        assert raw.returncode == 0, raw.stderr
        assert raw.stdout.count("\n") == 1
        assert json.loads(raw.stdout)["local"] == {"host": HOST, "port": int(tcp)}
        over_udp = client("--info", "--udp", "--json", "--host", HOST, "--port", udp)
        assert over_udp.returncode == 0, over_udp.stderr
        assert json.loads(over_udp.stdout)["transport"] == "udp"
    both = client("--info", "message")
    assert both.returncode == 2
    assert "--info takes no message" in both.stderr


def test_benchmark_runs() -> None:
    """
    C{benchmarks/proxy_fastpath.py} runs, short, and prints its ratios
    (the figures themselves are for people: no timed assertion here).
    """
    script = Path(__file__).resolve().parent.parent / "benchmarks/proxy_fastpath.py"
    result = subprocess.run(
        [sys.executable, str(script), "--echoes", "2000", "--rounds", "1"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "PROXY/plain server CPU per echo: " in result.stdout
    assert "control/plain round trip per echo: median" in result.stdout
