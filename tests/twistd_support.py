"""
Run C{twistd -n echo} in a subprocess for the live tests.

The server listens on ports the system picks (C{tcp:0}); Twisted logs
C{EchoFactory starting on PORT} once a port listens, so the tests read the
port from the log instead of guessing a free one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cached_property
from pathlib import Path

import psutil
from sockets import HOST, TIMEOUT

TWISTD = str(Path(sys.executable).with_name("twistd"))
#: The port L{twistd_echo} listens on unless told otherwise.
LOOPBACK = f"tcp:0:interface={HOST}"
#: What twistd logs as each of its echo ports starts.
STARTED = r"EchoFactory(?: \((?:TLS|PROXY)\))* starting on "
#: The C{--shutdown-timeout} L{twistd_echo} gives twistd: short, so that
#: stopping a server while a client's connection is still open (in a
#: reactor that is not running, say) takes a second, not the default 10.
SHUTDOWN_TIMEOUT = "1"
#: Seconds L{stop} waits after SIGTERM before it sends SIGKILL.
STOP_WAIT = 10.0


class Server:
    """
    A running C{twistd echo}.

    @ivar process: the twistd process.
    @ivar log_path: where its log (stdout and stderr) goes.
    """

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        """
        @param process: the twistd process.
        @param log_path: where its log goes.
        """
        self.process = process
        self.log_path = log_path

    def output(self) -> str:
        """
        @return: everything the server has logged so far.
        """
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, count: int = 1) -> re.Match[str]:
        """
        Wait until the log matches C{pattern} C{count} times.

        @param pattern: a regular expression.
        @param count: how many matches to wait for.
        @return: the C{count}th match.
        @raise AssertionError: if the process exits or L{TIMEOUT} passes
            first.
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            exited = self.process.poll() is not None  # before reading the log
            matches = list(re.finditer(pattern, log := self.output()))
            if len(matches) >= count:
                return matches[count - 1]
            assert not exited, f"twistd exited without {count} x {pattern!r}:\n{log}"
            assert time.monotonic() < deadline, f"{count} x {pattern!r} not in:\n{log}"
            time.sleep(0.02)

    @cached_property
    def port(self) -> int:
        """
        @return: the first TCP (or TLS) port the server listens on, once it
            does.
        """
        return int(self.wait_for(STARTED + r"(\d+)").group(1))

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

    def stop(self) -> int:
        """
        Stop the server with L{stop}.

        @return: its exit status.
        """
        return stop(self.process)


@contextmanager
def twistd_echo(
    *options: str,
    ports: Sequence[str] = (LOOPBACK,),
    directory: Path | None = None,
    prefix: Sequence[str] = (),
    twistd_options: Sequence[str] = (),
) -> Iterator[Server]:
    """
    Run C{twistd -n echo --port PORT... OPTIONS} until the block ends, then
    L{stop} it, even if the block failed.

    twistd gets C{--shutdown-timeout} L{SHUTDOWN_TIMEOUT} before C{options},
    so a C{--shutdown-timeout} among them wins.

    @param options: more options for C{twistd echo}.
    @param ports: the C{--port} values, in order. A C{unix:} one logs that
        it starts before it binds (TCP and TLS ones once they listen): put a
        TCP or TLS one after it.
    @param directory: where twistd runs and logs (a temporary directory if
        C{None}).
    @param prefix: a command to run twistd under (e.g. one that lowers a
        limit, then execs its arguments).
    @param twistd_options: options for twistd itself (before C{echo}).
    @return: the L{Server}, once each of C{ports} listens.
    """
    with ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_path = directory / f"twistd-{time.monotonic_ns()}.log"
        command = [*prefix, TWISTD, "-n", "--pidfile=", *twistd_options, "echo"]
        command += ["--shutdown-timeout", SHUTDOWN_TIMEOUT]
        command += [argument for port in ports for argument in ("--port", port)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=directory,
            )
        stack.callback(stop, process)
        server = Server(process, log_path)
        if ports:
            server.wait_for(STARTED, count=len(ports))
        yield server


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_WAIT) -> int:
    """
    End C{process} if it still runs: SIGTERM, then SIGKILL if it has not
    exited within C{timeout} seconds.

    @param process: the process.
    @param timeout: how long SIGTERM gets.
    @return: its exit status (C{-9} if it had to be killed).
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def environment() -> dict[str, str]:
    """
    @return: the environment for subprocesses, with this checkout importable.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
