"""
Run C{twistd -n echo} in a subprocess for live tests.

The server listens on a port the system picks (C{tcp:0}); Twisted logs
C{EchoFactory starting on PORT} once the port is listening, so the tests
read the port from the log instead of guessing a free one.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 30.0  # seconds: generous, only there so a broken test cannot hang
TWISTD = str(Path(sys.executable).with_name("twistd"))
STARTED = re.compile(r"EchoFactory starting on (\S+)")


@dataclass
class Twistd:
    """
    A C{twistd echo} process.

    @ivar process: the subprocess.
    @ivar log_path: where its log (stdout and stderr) goes.
    """

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """
        @return: everything the server has logged so far.
        """
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, pattern: str, count: int = 1) -> str:
        """
        Wait until the log matches C{pattern} C{count} times.

        @return: the log by then.
        @raise AssertionError: if the process exits or L{TIMEOUT} passes
            first.
        """
        deadline = time.monotonic() + TIMEOUT
        while len(re.findall(pattern, log := self.log())) < count:
            assert self.process.poll() is None, f"twistd exited:\n{log}"
            assert time.monotonic() < deadline, f"{pattern!r} not in:\n{log}"
            time.sleep(0.02)
        return log

    def listening_on(self) -> list[str]:
        """
        Wait for every listener to start.

        @return: what each listens on, as Twisted logs it (a port number
            for TCP).
        """
        return STARTED.findall(self.wait_for_log(STARTED.pattern))

    @property
    def port(self) -> int:
        """
        @return: the first TCP port the server listens on.
        """
        return int(self.listening_on()[0])


@contextmanager
def twistd_echo(directory: Path, options: Sequence[str]) -> Iterator[Twistd]:
    """
    Run C{twistd -n echo OPTIONS} until the block ends, then stop it (with
    SIGKILL if SIGTERM is not enough), even if the block failed.

    @param directory: where it runs and logs.
    @param options: the options after C{echo}.
    """
    log_path = directory / f"twistd-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "echo", *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=directory,
        )
    try:
        yield Twistd(process, log_path)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """
    End C{process}: SIGTERM, then SIGKILL if it has not gone in 10 s.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
