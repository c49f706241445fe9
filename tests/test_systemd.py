"""
systemd socket activation: C{--port systemd:domain=INET:index=0} and the
units in C{contrib/systemd/}, with systemd simulated: a listening socket on
fd 3 and C{LISTEN_FDS}/C{LISTEN_FDNAMES}/C{LISTEN_PID} set by a wrapper that
then execs twistd.
"""

from __future__ import annotations

import configparser
import contextlib
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from sockets import HOST, TIMEOUT, echo_once
from test_workers import WORKER_STARTED
from twistd_support import LOOPBACK, TWISTD, Server

UNITS = Path(__file__).parent.parent / "contrib" / "systemd"

#: What systemd (227 or later) does before exec: the socket on fd 3, and the
#: variables, with the name systemd gives a socket by default.
WRAPPER = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.close(fd)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_FDNAMES"] = "echotwist.socket"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


@contextlib.contextmanager
def activated(directory: Path, argv: Sequence[str]) -> Iterator[tuple[Server, int]]:
    """
    Run C{argv} as systemd would run a socket-activated service, on a
    loopback socket listened on here.

    @return: the process and the socket's port.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log_path = directory / "twistd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(listener.fileno()), *argv],
            pass_fds=[listener.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
        )
    listener.close()
    server = Server(process, log_path)
    try:
        yield server, port
    finally:
        server.stop()


def unit(name: str) -> configparser.ConfigParser:
    """
    @return: the unit file C{contrib/systemd/NAME}, parsed.
    """
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def test_adopts_passed_socket(tmp_path: Path) -> None:
    """
    twistd serves on the socket it was passed, not one of its own.
    """
    argv = [TWISTD, "-n", "--pidfile=", "echo", "--port", "systemd:domain=INET:index=0"]
    with activated(tmp_path, argv) as (twistd, port):
        assert twistd.port == port
        assert echo_once(port, b"activated") == b"activated"


def test_units() -> None:
    """
    The service serves the first socket the socket unit listens on, and
    requires that unit.
    """
    socket_unit, service = unit("echotwist.socket"), unit("echotwist.service")
    assert socket_unit["Socket"]["ListenStream"].startswith("0.0.0.0:")
    assert "echotwist.socket" in service["Unit"]["Requires"].split()
    command = shlex.split(service["Service"]["ExecStart"])
    assert command[command.index("--port") + 1] == "systemd:domain=INET:index=0"


def test_service_command(tmp_path: Path) -> None:
    """
    The unit's own command (with this twistd, two workers and a metrics port
    of the system's choosing) serves the passed socket from its workers.
    """
    command = shlex.split(unit("echotwist.service")["Service"]["ExecStart"])
    command[0] = TWISTD
    command[command.index("--workers") + 1] = "2"
    command[command.index("--metrics") + 1] = LOOPBACK
    with activated(tmp_path, command) as (twistd, port):
        twistd.wait_for(WORKER_STARTED, count=2)
        for i in range(6):
            assert echo_once(port, b"worker %d" % i) == b"worker %d" % i


def test_no_socket_passed(tmp_path: Path) -> None:
    """
    Without a passed socket, twistd says so in one line and exits non-zero.
    """
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "echo", "--port", "systemd:domain=INET:index=0"],
        capture_output=True,
        cwd=tmp_path,
        timeout=TIMEOUT,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert b"no such socket passed by systemd" in result.stderr + result.stdout
    assert b"Traceback" not in result.stderr + result.stdout
