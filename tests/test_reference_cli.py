"""
Live tests of the reference servers' start-up errors and of the services
command line, run as their users run them: C{python -m ...}.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from reference_support import HOST, SERVERS, TIMEOUT


def run_module(module: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """
    Run a module's command line to the end.

    @param module: The module, run with C{python -m}.
    @param arguments: Its arguments.
    @return: The finished process, with its output.
    """
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("module", SERVERS)
def test_port_in_use(module: str) -> None:
    """
    A server whose port is taken prints one error line naming the address
    and the system's error, and exits with status 1, without a traceback.
    """
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_module(module, "--host", HOST, "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"error: cannot listen on {HOST}:{port}: " in result.stderr
    assert "Address already in use" in result.stderr


@pytest.mark.parametrize("module", SERVERS)
def test_unknown_host(module: str) -> None:
    """
    A host that does not resolve is reported in one line, status 1.

    (The C{.invalid} top-level domain never resolves: RFC 2606.)
    """
    result = run_module(module, "--host", "no-such-host.invalid", "--port", "0")
    assert result.returncode == 1
    assert "error: cannot resolve no-such-host.invalid:0: " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", SERVERS)
@pytest.mark.parametrize(
    "arguments",
    [["--port", "65536"], ["--port", "http"], ["--buffer-size", "0"], ["--bogus"]],
)
def test_bad_arguments(module: str, arguments: list[str]) -> None:
    """
    Bad options are usage errors: status 2, and the server never starts.
    """
    result = run_module(module, *arguments)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Listening" not in result.stdout


def test_services_table() -> None:
    """
    C{python -m echotwist.reference.services} prints an aligned table.
    """
    try:
        socket.getservbyport(22, "tcp")
    except OSError:
        pytest.skip("this system has no services database (/etc/services)")
    result = run_module("echotwist.reference.services", "1", "1023")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header == "PORT  SERVICE (tcp)"
    for row in rows:
        # Port numbers right-aligned under "PORT", two spaces, the name.
        assert re.fullmatch(r"[ \d]{3}\d  \S+", row), row


@pytest.mark.parametrize(
    "arguments",
    [
        ["1", "abc"],
        ["-1"],
        ["65536"],
        ["10", "5"],
        ["1", "2", "3"],
        ["--protocol", "x"],
    ],
)
def test_services_bad_arguments(arguments: list[str]) -> None:
    """
    Bad arguments to the services command are usage errors: status 2.
    """
    result = run_module("echotwist.reference.services", *arguments)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_services_port_and_name() -> None:
    """
    One number is that port alone, and a name is looked up as C{getent
    services} does: C{9000} (no service) and C{echo} as the issue typed
    them; a name the system does not know is one line and status 1.
    """
    try:
        socket.getservbyport(7, "tcp")
    except OSError:
        pytest.skip("this system has no services database (/etc/services)")
    one = run_module("echotwist.reference.services", "7")
    assert (one.returncode, one.stdout) == (0, "PORT  SERVICE (tcp)\n   7  echo\n")
    name = run_module("echotwist.reference.services", "echo")
    assert (name.returncode, name.stdout) == (0, one.stdout)
    alone = run_module("echotwist.reference.services", "9000")
    assert alone.returncode == 0, alone.stderr
    assert "port 9000" in alone.stdout or "9000  " in alone.stdout
    unknown = run_module("echotwist.reference.services", "no-such-service")
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "echotwist-services: no tcp service named 'no-such-service'\n"
    )
