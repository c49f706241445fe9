"""
Live tests of the Twisted client against the reference servers: any client
works with any server.

They need L{echotwist.client}, written on another branch; until it is there
they are skipped.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest
import pytest_twisted
from reference_support import HOST, SERVERS, TIMEOUT, RunningServer, running_server
from twisted.internet.endpoints import TCP4ClientEndpoint

if importlib.util.find_spec("echotwist.client") is None:
    pytest.skip("echotwist.client is not merged in yet", allow_module_level=True)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """
    Each reference server in turn.
    """
    with running_server(request.param) as running:
        yield running


@pytest_twisted.ensureDeferred
async def test_echo_library(server: RunningServer) -> None:
    """
    C{echotwist.client.echo} gets its bytes back from each reference server,
    including bytes that are not text.
    """
    from twisted.internet import reactor

    from echotwist import client

    data = b"Twisted meets select \x00\xff" * 100
    endpoint = TCP4ClientEndpoint(reactor, HOST, server.port)
    assert await client.echo(reactor, endpoint, data, TIMEOUT) == data


def test_echo_command_line(server: RunningServer) -> None:
    """
    C{python -m echotwist.client} prints the message it got back from each
    reference server.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "echotwist.client",
            "--host",
            HOST,
            "--port",
            str(server.port),
            "Demo Message",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "Demo Message" in result.stdout
