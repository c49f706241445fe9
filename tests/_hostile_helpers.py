"""
Helpers for the hostile-condition live tests: run C{twistd echo} on a port
the OS picks, and talk to it over loopback with plain sockets.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

#: twistd, run by this Python (a C{sys.argv[0]} of C{twistd} for its usage).
TWISTD = [
    sys.executable,
    "-c",
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
]
#: Seconds any single wait in these tests may take before it fails.
WAIT = 20.0


class Server:
    """
    A running C{twistd -n echo}.

    @ivar process: the twistd process.
    @ivar log: the file its output goes to.
    @ivar port: the first TCP port it listens on.
    """

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.port = 0

    def output(self) -> str:
        """
        @return: everything twistd has logged so far.
        """
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """
        Wait for a line matching C{pattern} in the log.

        @return: the first match.
        @raise AssertionError: if it doesn't appear in time or twistd exits.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in twistd output:\n{self.output()}")

    def rss(self) -> int:
        """
        @return: the server's resident memory in bytes.
        """
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def open_connections(self) -> int:
        """
        @return: TCP connections the server process holds, besides its
            listening sockets.
        """
        connections = psutil.Process(self.process.pid).net_connections("tcp")
        return sum(1 for c in connections if c.status != psutil.CONN_LISTEN)


@contextmanager
def twistd_echo(
    *options: str, port: str = "tcp:0:interface=127.0.0.1", prefix: Sequence[str] = ()
) -> Iterator[Server]:
    """
    Run C{twistd -n echo --port PORT OPTIONS}, killed however the test ends.

    @param options: more options for C{twistd echo}.
    @param port: the C{--port} value (empty for none).
    @param prefix: a command to run twistd under (e.g. C{prlimit ...}).
    @return: the L{Server}, once it logs the port it listens on.
    """
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory, "twistd.log")
        ports = ["--port", port] if port else []
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*prefix, *TWISTD, "-n", "--pidfile=", "echo", *ports, *options],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        server = Server(process, log)
        try:
            if port.startswith(("tcp:", "ssl:")):
                match = server.wait_for(r"EchoFactory(?: \(TLS\))? starting on (\d+)")
                server.port = int(match.group(1))
            yield server
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(WAIT)


def stop(server: Server, sig: int = signal.SIGTERM) -> int:
    """
    Signal the server and wait for it to exit.

    @return: its exit status.
    """
    server.process.send_signal(sig)
    return server.process.wait(WAIT)


def connect(port: int) -> socket.socket:
    """
    @return: a socket connected to C{127.0.0.1:port}, with a timeout.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def round_trip(port: int, data: bytes = b"ping") -> bytes:
    """
    Echo C{data} on a new connection.

    @return: the echo (exactly C{len(data)} bytes unless the server closed).
    """
    with connect(port) as sock:
        sock.sendall(data)
        return recv_exactly(sock, len(data))


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """
    @return: C{size} bytes from C{sock}, or fewer if it closed first.
    """
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def environment() -> dict[str, str]:
    """
    @return: the environment for subprocesses, with this checkout importable.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
