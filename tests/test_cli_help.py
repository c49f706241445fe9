"""
Every echotwist program's C{--help} and C{--version}, and the one wording
they all use for a port number out of range (issue 16, part 10).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sockets import TIMEOUT
from twistd_support import TWISTD, environment

import echotwist

PYTHON = [sys.executable, "-m"]
#: Each program, as a command line, and whether it is argparse's (whose
#: --help gives its defaults as "(default: ...)") or Twisted's usage.
PROGRAMS = {
    "twistd echo": [TWISTD, "echo"],
    "workers": [*PYTHON, "echotwist.server.workers"],
    "tls": [*PYTHON, "echotwist.tls"],
    "blocking": [*PYTHON, "echotwist.reference.blocking"],
    "selecting": [*PYTHON, "echotwist.reference.selecting"],
    "reference client": [*PYTHON, "echotwist.reference.client"],
    "services": [*PYTHON, "echotwist.reference.services"],
    "client": [*PYTHON, "echotwist.client"],
    "bench": [*PYTHON, "echotwist.bench"],
}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """
    @return: C{argv} run to completion in C{cwd}.
    """
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=environment(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_version(name: str, tmp_path: Path) -> None:
    """
    C{--version} prints echotwist's version and exits 0.
    """
    result = run([*PROGRAMS[name], "--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert echotwist.__version__ in result.stdout + result.stderr
    assert "Twisted version" not in result.stdout


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_helpPlain(name: str, tmp_path: Path) -> None:
    """
    C{--help} exits 0 and shows no epytext markup (C{C{...}}, C{L{...}}).
    """
    result = run([*PROGRAMS[name], "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not re.search(r"\b[CLIBU]\{", result.stdout), result.stdout


def test_twistdEchoHelp(tmp_path: Path) -> None:
    """
    C{twistd echo --help} gives C{--udp}'s forms and every parameter's
    default (a number, or off).
    """
    result = run([TWISTD, "echo", "--help"], tmp_path)
    assert "[IPV6]:PORT" in result.stdout
    assert "HOST:PORT" in result.stdout
    options = re.split(r"\n(?=\s+(?:-\w, )?--)", result.stdout.split("\n\n")[0])
    parameters = [o for o in options if re.match(r"\s+(?:-\w, )?--[\w-]+=", o)]
    assert len(parameters) > 10
    for option in parameters:
        text = " ".join(option.split())
        assert "[default:" in text or "off by default" in text, text


@pytest.mark.parametrize(
    "argv",
    [
        [TWISTD, "-n", "--pidfile=", "echo", "--port", "70000"],
        [*PYTHON, "echotwist.reference.blocking", "--port", "70000"],
        [*PYTHON, "echotwist.reference.client", "--port", "70000", "x"],
        [*PYTHON, "echotwist.reference.services", "70000"],
        [*PYTHON, "echotwist.client", "--port", "70000", "x"],
        [*PYTHON, "echotwist.bench", "--connect", "tcp:127.0.0.1:70000"],
    ],
    ids=["twistd echo", "blocking", "reference client", "services", "client", "bench"],
)
def test_portRangeWording(argv: list[str], tmp_path: Path) -> None:
    """
    Every program says a port number out of range in the same words, with
    the same range, and exits non-zero without a traceback.
    """
    result = run(argv, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "'70000' is not a port number (0-65535)" in output, output
    assert "Traceback" not in output
