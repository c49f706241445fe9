"""
A live test of C{contrib/haproxy/echotwist.cfg}: a real HAProxy on loopback
in front of two C{twistd echo} instances, one of which is then stopped.

HAProxy comes from Debian's package (C{.ci/run} installs it); without the
C{haproxy} program the test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT, echo_once, free_port
from twistd_support import Server, stop, twistd_echo

CONFIG = Path(__file__).parent.parent / "contrib" / "haproxy" / "echotwist.cfg"
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")

pytestmark = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)"
)


def loopback_config(front: int, backends: Sequence[int], check_ms: int) -> str:
    """
    The contrib configuration, made to run here: a plain foreground global
    section instead of its own (no chroot, user or syslog), the frontend on
    loopback port C{front}, its servers on C{backends}, checked every
    C{check_ms} ms instead of 2 s.
    """
    text = CONFIG.read_text()
    sections = re.split(r"(?m)^(?=\S)", text)
    kept = [s for s in sections if not s.startswith(("global", "#"))]
    config = "global\n    maxconn 256\n\n" + "".join(kept)
    config = re.sub(r"(?m)^(\s+bind\s+)\S+", rf"\g<1>{HOST}:{front}", config)
    config = config.replace("inter 2s", f"inter {check_ms}ms")
    servers = iter(backends)
    config = re.sub(
        r"(?m)^(\s+server\s+\S+\s+)\S+",
        lambda m: f"{m.group(1)}{HOST}:{next(servers)}",
        config,
    )
    assert config.count(f"{HOST}:") == 1 + len(backends), config
    return config


@pytest.fixture
def echo_hosts(tmp_path: Path) -> Iterator[list[Server]]:
    """
    Two C{twistd echo} instances on loopback ports the system picked,
    logging what they receive.
    """
    with ExitStack() as stack:
        hosts = []
        for name in ["one", "two"]:
            directory = tmp_path / name
            directory.mkdir()
            server = twistd_echo("--verbose", directory=directory)
            hosts.append(stack.enter_context(server))
        yield hosts


def test_failover(tmp_path: Path, echo_hosts: list[Server]) -> None:
    """
    Clients through HAProxy reach both hosts; once one is stopped, HAProxy
    marks it down and new clients are still all served.
    """
    front = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(loopback_config(front, [h.port for h in echo_hosts], 200))
    assert HAPROXY is not None
    log = (tmp_path / "haproxy.log").open("wb")
    haproxy = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert haproxy.poll() is None, (tmp_path / "haproxy.log").read_text()
            try:
                assert echo_once(front, b"first") == b"first"
                break
            except OSError:
                assert time.monotonic() < deadline, "haproxy never answered"
                time.sleep(0.1)
        for i in range(8):
            assert echo_once(front, b"client %d" % i) == b"client %d" % i
        for host in echo_hosts:
            host.wait_for(r"b'client \d'")

        echo_hosts[0].stop()
        for i in range(20):
            assert echo_once(front, b"after %d" % i) == b"after %d" % i
        down = r"Server echotwist/echo1 is DOWN"
        while not re.search(down, (tmp_path / "haproxy.log").read_text()):
            assert time.monotonic() < deadline, "echo1 was never marked down"
            time.sleep(0.1)
        for i in range(5):
            assert echo_once(front, b"later %d" % i) == b"later %d" % i
        echo_hosts[1].wait_for(r"b'later \d'", count=5)
        assert haproxy.poll() is None
    finally:
        stop(haproxy)
        log.close()
