"""
Helpers for the live tests of the reference servers and clients.

Servers run as subprocesses on a port the system picks (C{--port 0}); they
print it on their C{Listening on HOST:PORT} line, which is written after
C{listen()} returned, so once it is there the server accepts connections.
"""

from __future__ import annotations

import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
TIMEOUT = 20.0  # seconds: generous, only there so a broken test cannot hang
SERVERS = ["echotwist.reference.blocking", "echotwist.reference.selecting"]
LISTENING = re.compile(r"^Listening on (\S+):(\d+)$", re.MULTILINE)


@dataclass
class RunningServer:
    """
    A reference server running in a subprocess.

    @ivar process: The subprocess.
    @ivar port: The port it listens on, at L{HOST}.
    @ivar output_path: Where its stdout and stderr go.
    """

    process: subprocess.Popen[bytes]
    port: int
    output_path: Path

    def output(self) -> str:
        """
        @return: Everything the server has printed so far.
        """
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, count: int = 1) -> str:
        """
        Wait until the server has printed C{text}, C{count} times.

        @param text: What to wait for.
        @param count: How many times.
        @return: Everything the server has printed by then.
        @raise AssertionError: If it has not after L{TIMEOUT} seconds.
        """
        deadline = time.monotonic() + TIMEOUT
        while (output := self.output()).count(text) < count:
            assert time.monotonic() < deadline, f"{count} x {text!r} not in:\n{output}"
            time.sleep(0.02)
        return output


def _child_setup(nofile: int | None) -> Callable[[], None]:
    """
    Make the function that prepares the server's process before it runs.

    @param nofile: A soft limit on its open files, or C{None} to inherit ours.
    @return: A C{preexec_fn} for C{subprocess.Popen}.
    """

    def setup() -> None:
        # A shell may start background jobs with Ctrl-C ignored, and ignored
        # signals stay ignored across exec; the SIGINT test needs it back.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if nofile is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    return setup


@contextmanager
def running_server(
    module: str, *arguments: str, nofile: int | None = None
) -> Iterator[RunningServer]:
    """
    Run a reference server on a free port for the duration of a C{with}.

    The server is stopped at the end, even if the test failed.

    @param module: The server's module, run with C{python -m}.
    @param arguments: More command-line arguments.
    @param nofile: A soft limit on the server's open files, if not ours.
    @return: A context manager giving the L{RunningServer}.
    """
    with tempfile.TemporaryDirectory() as directory:
        output_path = Path(directory) / "output.txt"
        with output_path.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    "--host",
                    HOST,
                    "--port",
                    "0",
                    *arguments,
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(nofile),
            )
        try:
            yield RunningServer(
                process, _wait_for_port(process, output_path), output_path
            )
        finally:
            stop(process)


def _wait_for_port(process: subprocess.Popen[bytes], output_path: Path) -> int:
    """
    Wait for a server to say which port it listens on.

    @param process: The server.
    @param output_path: Where its output goes.
    @return: The port.
    @raise AssertionError: If the server exits first, or says nothing in time.
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        output = output_path.read_text(encoding="utf-8", errors="replace")
        match = LISTENING.search(output)
        if match:
            return int(match.group(2))
        assert process.poll() is None, f"server exited early:\n{output}"
        assert time.monotonic() < deadline, f"server never listened:\n{output}"
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes]) -> None:
    """
    Stop a subprocess if it still runs: terminate, then kill if need be.

    @param process: The subprocess.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect(port: int) -> socket.socket:
    """
    Connect to a server on L{HOST}.

    @param port: The server's port.
    @return: A blocking socket with a L{TIMEOUT}.
    """
    return socket.create_connection((HOST, port), timeout=TIMEOUT)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """
    Read exactly C{size} bytes, however TCP chunks them.

    @param sock: The socket to read.
    @param size: How many bytes.
    @return: The bytes.
    @raise AssertionError: If the connection closes first.
    """
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


@contextmanager
def unused_port() -> Iterator[int]:
    """
    Hold a port with no server on it: connecting there is refused.

    A bound socket that does not listen keeps the port ours (no other
    process can take it) while refusing connections.

    @return: A context manager giving the port.
    """
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        yield holder.getsockname()[1]
