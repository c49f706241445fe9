"""
The TLS recipe of C{docs/tls.rst}: files written by C{python -m
echotwist.tls} serve echo over TLS, and the client verifies the server with
the C{trustRoots} directory it wrote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sockets import HOST, TIMEOUT
from twistd_support import environment, twistd_echo


def recipe(directory: Path) -> None:
    """
    Run C{python -m echotwist.tls} into C{directory}.
    """
    subprocess.run(
        [sys.executable, "-m", "echotwist.tls", "--directory", str(directory)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
        env=environment(),
    )


def client(connect: str) -> subprocess.CompletedProcess[bytes]:
    """
    @return: the finished client run against C{connect}, output captured.
    """
    return subprocess.run(
        [sys.executable, "-m", "echotwist.client", "--connect", connect, "secret"],
        capture_output=True,
        timeout=TIMEOUT,
        env=environment(),
    )


@pytest.mark.parametrize("host", ["localhost", HOST])
def test_recipe_serves_verified_tls(tmp_path: Path, host: str) -> None:
    """
    The server serves TLS with the recipe's key and certificate, and the
    client, trusting the recipe's CA, verifies it by name and by address.
    """
    recipe(tmp_path)
    port = f"ssl:0:privateKey=key.pem:certKey=cert.pem:interface={HOST}"
    with twistd_echo(ports=[port], directory=tmp_path) as server:
        result = client(f"tls:{host}:{server.port}:trustRoots={tmp_path}/ca")
    assert (result.returncode, result.stdout) == (0, b"secret\n"), result.stderr


def test_other_recipe_not_trusted(tmp_path: Path) -> None:
    """
    A client trusting the CA of another run of the recipe refuses the
    server: each run's CA is its own.
    """
    recipe(tmp_path / "server")
    recipe(tmp_path / "other")
    keys = f"privateKey={tmp_path}/server/key.pem:certKey={tmp_path}/server/cert.pem"
    with twistd_echo(ports=[f"ssl:0:{keys}:interface={HOST}"]) as server:
        result = client(f"tls:{HOST}:{server.port}:trustRoots={tmp_path}/other/ca")
    assert result.returncode == 1
    assert b"certificate verify failed" in result.stderr
