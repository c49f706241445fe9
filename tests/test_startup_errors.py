"""
Live: every listener that can't start ends C{twistd echo} with one line
naming the option and the reason, and exit status 1, in the foreground
(C{-n}) and daemonised.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT
from twistd_support import TWISTD, environment

#: Run a command without the capabilities that let root write into any
#: directory (for a directory the server can't write, even as root): they
#: are dropped from the bounding set, so the command's exec does not get
#: them back.  (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER.)
WITHOUT_OVERRIDE = [
    sys.executable,
    "-c",
    "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
    "[libc.prctl(24, cap, 0, 0, 0) == 0 or sys.exit(f'prctl: {cap}') "
    "for cap in (1, 2, 3)]; "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


@dataclass
class Case:
    """
    A listener that can't start.

    @ivar options: C{twistd echo}'s options.
    @ivar expected: what the one line says after C{twistd echo: }.
    @ivar prefix: a command to run twistd under.
    """

    options: list[str]
    expected: str
    prefix: list[str]


@contextmanager
def _taken(kind: socket.SocketKind) -> Iterator[int]:
    """
    @param kind: C{SOCK_STREAM} (listening) or C{SOCK_DGRAM} (bound).
    @return: a port on L{HOST} that a socket of that kind holds.
    """
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind((HOST, 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        yield holder.getsockname()[1]


def _in_use(option: str, kind: socket.SocketKind) -> Callable[[ExitStack, Path], Case]:
    """
    @param option: the listener's option; any but C{--port} goes with a
        C{--port} on a free port.
    @param kind: C{SOCK_STREAM} for an option that takes a stream endpoint,
        C{SOCK_DGRAM} for one that takes a UDP C{HOST:PORT}.
    @return: the case of C{option} on a port that a socket of C{kind} holds.
    """

    def case(stack: ExitStack, directory: Path) -> Case:
        port = stack.enter_context(_taken(kind))
        if kind == socket.SOCK_STREAM:
            value = f"tcp:{port}:interface={HOST}"
        else:
            value = f"{HOST}:{port}"
        serving = [] if option == "--port" else ["--port", f"tcp:0:interface={HOST}"]
        return Case(
            [*serving, option, value],
            f"{option} '{value}': Address already in use",
            [],
        )

    return case


def _unix_missing_directory(stack: ExitStack, directory: Path) -> Case:
    path = directory / "gone" / "echo.sock"
    return Case(
        ["--port", f"unix:{path}"],
        f"--port 'unix:{path}': No such file or directory: ",
        [],
    )


def _workers_unix_missing_directory(stack: ExitStack, directory: Path) -> Case:
    case = _unix_missing_directory(stack, directory)
    case.options[:0] = ["--workers", "2"]
    return case


def _unix_unwritable_directory(stack: ExitStack, directory: Path) -> Case:
    readonly = directory / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    path = readonly / "echo.sock"
    return Case(
        ["--port", f"unix:{path}"],
        f"--port 'unix:{path}': Permission denied: {readonly}",
        WITHOUT_OVERRIDE if os.geteuid() == 0 else [],
    )


def _tls_files_missing(stack: ExitStack, directory: Path) -> Case:
    key = directory / "missing.pem"
    value = f"ssl:0:interface={HOST}:privateKey={key}:certKey={key}"
    return Case(
        ["--port", value],
        f"--port '{value}': No such file or directory: {key}",
        [],
    )


def _systemd_not_passed(stack: ExitStack, directory: Path) -> Case:
    value = "systemd:domain=INET:index=0"
    return Case(
        ["--port", value],
        f"--port '{value}': no such socket passed by systemd",
        [],
    )


CASES: dict[str, Callable[[ExitStack, Path], Case]] = {
    "tcp": _in_use("--port", socket.SOCK_STREAM),
    "unix-missing": _unix_missing_directory,
    "unix-unwritable": _unix_unwritable_directory,
    "workers-unix-missing": _workers_unix_missing_directory,
    "tls-files": _tls_files_missing,
    "systemd": _systemd_not_passed,
    "metrics": _in_use("--metrics", socket.SOCK_STREAM),
    "udp": _in_use("--udp", socket.SOCK_DGRAM),
    "info": _in_use("--info", socket.SOCK_STREAM),
    "info-udp": _in_use("--info-udp", socket.SOCK_DGRAM),
}


def _run(command: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    """
    Run twistd; kill a daemon it left behind (should the test fail).
    """
    env = environment()
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=directory,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        pidfile = directory / "twistd.pid"
        if pidfile.exists():
            with suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


@pytest.mark.parametrize("daemon", [False, True], ids=["foreground", "daemon"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_listener_failure_one_line(tmp_path: Path, case: str, daemon: bool) -> None:
    """
    The failure is one line naming the option and the reason, exit status
    1, no traceback: in the foreground among twistd's usual log lines, and
    daemonised as all twistd prints (reported before it forks), with
    nothing in its log.
    """
    directory = tmp_path
    with ExitStack() as stack:
        what = CASES[case](stack, directory)
        twistd = [TWISTD, "--pidfile=twistd.pid", "--logfile=twistd.log"]
        if not daemon:
            twistd = [TWISTD, "-n", "--pidfile=", "--logfile=-"]
        result = _run(
            [*what.prefix, *twistd, "echo", "--shutdown-timeout", "0", *what.options],
            directory,
        )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 1
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "twistd echo: --" in line]
    assert f"twistd echo: {what.expected}" in line
    errors = [line for line in output.splitlines() if "#error]" in line]
    assert errors in ([], [line])
    if daemon:
        assert output.splitlines() == [line]
        log = directory / "twistd.log"
        assert not log.exists() or "Traceback" not in log.read_text()


def test_daemon_failure_after_fork(tmp_path: Path) -> None:
    """
    A failure the check before the fork can't see (C{--port} and
    C{--metrics} on the same free port) still names the option and the
    reason: in twistd's own two-line frame on the terminal (the only way its
    waiting parent reports), as one line in the log, with exit status 1 and
    no traceback.
    """
    directory = tmp_path
    with _taken(socket.SOCK_STREAM) as free:
        pass
    value = f"tcp:{free}:interface={HOST}"
    result = _run(
        [
            TWISTD,
            "--pidfile=twistd.pid",
            "--logfile=twistd.log",
            "echo",
            "--port",
            value,
            "--metrics",
            value,
        ],
        directory,
    )
    output = result.stdout + result.stderr
    log = (directory / "twistd.log").read_text()
    print(output, log)
    assert result.returncode == 1
    reason = f"--metrics '{value}': Address already in use"
    assert output.splitlines() == [
        f'An error has occurred: b"{reason}"',
        "Please look at log file for more information.",
    ]
    assert "Traceback" not in log
    assert [line for line in log.splitlines() if "#error]" in line] == [
        line for line in log.splitlines() if f"twistd echo: {reason}" in line
    ]
    assert not (directory / "twistd.pid").exists()
