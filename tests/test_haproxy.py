"""
A live test of C{contrib/haproxy/echotwist.cfg}: a real HAProxy on loopback
in front of two C{twistd echo} instances with PROXY protocol ports
(C{haproxy:tcp:...}) and info ports; one instance is then stopped.  And
HAProxy in front of a TLS PROXY port (C{haproxy:ssl:...}), sending the
header before the TLS handshake, as C{ssl} and C{send-proxy-v2} on a
C{server} line do.

HAProxy comes from Debian's package (C{.ci/run} installs it); without the
C{haproxy} program the test is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sockets import HOST, TIMEOUT, echo_once, free_port
from twistd_support import Server, stop, twistd_echo

from echotwist.tls import write_files

CONFIG = Path(__file__).parent.parent / "contrib" / "haproxy" / "echotwist.cfg"
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
#: The address the clients connect from: not HAProxy's (127.0.0.1).
CLIENT = "127.0.0.5"
#: A PROXY port on loopback, port chosen by the system.
PROXY_PORT = f"haproxy:tcp:0:interface={HOST}"
INFO_STARTED = r"InfoFactory(?: \((?:TLS|PROXY)\))* starting on (\d+)"

pytestmark = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)"
)


def loopback_config(
    fronts: Mapping[str, int], backends: Mapping[str, Sequence[int]], check_ms: int
) -> str:
    """
    The contrib configuration, made to run here: a plain foreground global
    section instead of its own (no chroot, user or syslog), each frontend
    on the loopback port C{fronts} gives for its name, each backend's
    servers on the ports C{backends} gives for its name, checked every
    C{check_ms} ms instead of 2 s.
    """
    text = CONFIG.read_text()
    sections = re.split(r"(?m)^(?=\S)", text)
    kept = []
    for section in sections:
        if section.startswith(("global", "#")):
            continue
        kind, _, rest = section.partition(" ")
        name = rest.split(None, 1)[0] if rest else ""
        if kind == "frontend":
            section = re.sub(
                r"(?m)^(\s+bind\s+)\S+", rf"\g<1>{HOST}:{fronts[name]}", section
            )
        elif kind == "backend":
            ports = iter(backends[name])
            section = re.sub(
                r"(?m)^(\s+server\s+\S+\s+)\S+",
                lambda m, ports=ports: f"{m.group(1)}{HOST}:{next(ports)}",
                section,
            )
        kept.append(section)
    config = "global\n    maxconn 256\n\n" + "".join(kept)
    config = config.replace("inter 2s", f"inter {check_ms}ms")
    count = len(fronts) + sum(len(ports) for ports in backends.values())
    assert config.count(f"{HOST}:") == count, config
    return config


@contextmanager
def haproxy(config: str, directory: Path) -> Iterator[Path]:
    """
    Run HAProxy in the foreground with C{config} until the block ends.

    @return: the path of its log (its standard output and error).
    """
    assert HAPROXY is not None
    path = directory / "haproxy.cfg"
    path.write_text(config)
    log_path = directory / "haproxy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield log_path
        assert process.poll() is None, log_path.read_text()
    finally:
        stop(process)


def until(check: Any, what: str, log: Path) -> Any:
    """
    Call C{check} until it returns something true (an L{OSError} counts as
    false), for up to L{TIMEOUT} seconds.

    @return: what it returned.
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
        time.sleep(0.1)


def from_client(port: int, data: bytes | None) -> tuple[bytes, int]:
    """
    Connect from L{CLIENT} to C{port} on L{HOST}, send C{data} and shut the
    sending side (unless C{data} is L{None}), and read to the end.

    @return: what came back, and the client's port.
    """
    with socket.socket() as sock:
        sock.settimeout(TIMEOUT)
        sock.bind((CLIENT, 0))
        client_port: int = sock.getsockname()[1]
        sock.connect((HOST, port))
        if data is not None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), client_port


@pytest.fixture
def echo_hosts(tmp_path: Path) -> Iterator[list[tuple[Server, int]]]:
    """
    Two C{twistd echo} instances with a PROXY echo port and a PROXY info
    port on loopback, logging what they receive.

    @return: each server and its info port.
    """
    with ExitStack() as stack:
        hosts = []
        for name in ["one", "two"]:
            directory = tmp_path / name
            directory.mkdir()
            server = twistd_echo(
                "--verbose",
                "--info",
                PROXY_PORT,
                ports=[PROXY_PORT],
                directory=directory,
            )
            host = stack.enter_context(server)
            info = int(host.wait_for(INFO_STARTED).group(1))
            hosts.append((host, info))
        yield hosts


@pytest.fixture
def balanced(
    tmp_path: Path, echo_hosts: list[tuple[Server, int]]
) -> Iterator[tuple[int, int, Path]]:
    """
    HAProxy with the contrib configuration in front of L{echo_hosts}, once
    it echoes.

    @return: its echo port, its info port, and its log.
    """
    front, info = free_port(), free_port()
    config = loopback_config(
        {"echo": front, "info": info},
        {
            "echotwist": [host.port for host, _ in echo_hosts],
            "echotwist-info": [port for _, port in echo_hosts],
        },
        200,
    )
    with haproxy(config, tmp_path) as log:
        until(lambda: echo_once(front, b"first") == b"first", "no echo", log)
        yield front, info, log


def test_failover(
    balanced: tuple[int, int, Path], echo_hosts: list[tuple[Server, int]]
) -> None:
    """
    Clients through HAProxy reach both hosts through their PROXY ports
    (health checks included); once one is stopped, HAProxy marks it down
    and new clients are still all served.
    """
    front, _info, log = balanced
    for i in range(8):
        assert echo_once(front, b"client %d" % i) == b"client %d" % i
    for host, _ in echo_hosts:
        host.wait_for(r"b'client \d'")
        host.wait_for(r"b'echotwist-health-check'")

    echo_hosts[0][0].stop()
    for i in range(20):
        assert echo_once(front, b"after %d" % i) == b"after %d" % i
    down = r"Server echotwist/echo1 is DOWN"
    until(lambda: re.search(down, log.read_text()), "echo1 never marked down", log)
    for i in range(5):
        assert echo_once(front, b"later %d" % i) == b"later %d" % i
    echo_hosts[1][0].wait_for(r"b'later \d'", count=5)


def test_client_address(
    balanced: tuple[int, int, Path], echo_hosts: list[tuple[Server, int]]
) -> None:
    """
    A client connecting from C{127.0.0.5} through HAProxy is logged, and
    described by the info port, as C{127.0.0.5} and its own port, come
    through HAProxy (from C{127.0.0.1}); HAProxy's health checks (v2
    C{LOCAL} headers) name HAProxy.
    """
    front, info_front, log = balanced
    echoed, port = from_client(front, b"who am I")
    assert echoed == b"who am I"
    via = rf"\('{CLIENT}', {port}\) via PROXY v2 from \('127\.0\.0\.1', \d+\)"
    for pattern in (f"Connected by {via}", f"Disconnected {via}: 8 bytes in"):
        until(
            lambda p=pattern: any(re.search(p, h.output()) for h, _ in echo_hosts),
            f"no {pattern!r} in the echo hosts' logs",
            log,
        )
    host, _ = echo_hosts[0]
    host.wait_for(r"Connected by \('127\.0\.0\.1', \d+\) \(PROXY v2 LOCAL")

    answer, port = from_client(info_front, None)
    info = json.loads(answer)
    assert info["client"] == {"host": CLIENT, "port": port}
    assert info["proxy"]["version"] == 2
    assert info["proxy"]["command"] == "PROXY"
    assert info["proxy"]["source"] == {"host": CLIENT, "port": port}
    assert info["proxy"]["destination"] == {"host": HOST, "port": info_front}
    assert info["peer"]["host"] == "127.0.0.1"
    assert info["transport"] == "tcp"


def test_tls_behind_proxy(tmp_path: Path) -> None:
    """
    HAProxy with C{ssl} and C{send-proxy-v2} on its server line sends the
    header, then starts TLS: a C{haproxy:ssl:} port echoes through it, logs
    the client, and its info port reports the header and the TLS session
    HAProxy opened (SNI included).
    """
    files = write_files(tmp_path / "tls")
    tls = f"haproxy:ssl:0:privateKey={files.key}:certKey={files.cert}:interface={HOST}"
    with twistd_echo(
        "--verbose", "--info", tls, ports=[tls], directory=tmp_path
    ) as server:
        info_port = int(server.wait_for(INFO_STARTED).group(1))
        front, info_front = free_port(), free_port()
        server_options = "ssl verify none sni str(localhost) send-proxy-v2"
        config = f"""global
    maxconn 64

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen echo
    bind {HOST}:{front}
    server echo1 {HOST}:{server.port} {server_options}

listen info
    bind {HOST}:{info_front}
    server info1 {HOST}:{info_port} {server_options}
"""
        with haproxy(config, tmp_path) as log:
            _echoed, port = until(
                lambda: (r := from_client(front, b"secret"))[0] == b"secret" and r,
                "no echo through HAProxy's TLS",
                log,
            )
            via = rf"\('{CLIENT}', {port}\) via PROXY v2 from \('127\.0\.0\.1'"
            server.wait_for(f"Connected by {via}")
            server.wait_for(r"b'secret'")

            answer, port = from_client(info_front, None)
            info = json.loads(answer)
            assert info["client"] == {"host": CLIENT, "port": port}
            assert info["transport"] == "tls"
            assert info["tls"]["version"].startswith("TLSv1.")
            assert info["tls"]["sni"] == "localhost"
            assert info["proxy"]["source"] == {"host": CLIENT, "port": port}
