"""
Live tests of C{python -m echotwist.client} against C{twistd echo}: how it
closes, what it says about its mistakes, and its help.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sockets import HOST
from twistd_support import Server, environment, twistd_echo

from echotwist import __version__
from echotwist.tls import write_files

CLIENT = [sys.executable, "-m", "echotwist.client"]


@dataclass
class Live:
    """
    A C{twistd echo} on a UNIX socket, TLS, TCP and UDP.
    """

    server: Server
    directory: Path
    tls: int
    tcp: int
    udp: int

    @property
    def unix(self) -> str:
        """
        The UNIX socket's path.
        """
        return str(self.directory / "echo.sock")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """
    The server, with TLS files from L{write_files} (C{ca/} is the client's
    C{trustRoots}).
    """
    directory = tmp_path_factory.mktemp("client")
    write_files(directory)
    ports = [
        f"unix:{directory}/echo.sock",
        f"ssl:0:privateKey=key.pem:certKey=cert.pem:interface={HOST}",
        f"tcp:0:interface={HOST}",
    ]
    with twistd_echo(
        "--udp", f"{HOST}:0", "--verbose", ports=ports, directory=directory
    ) as server:
        tls = server.wait_for(r"EchoFactory \(TLS\) starting on (\d+)")
        tcp = server.wait_for(r"EchoFactory starting on (\d+)")
        udp = server.wait_for(r"EchoDatagramProtocol starting on (\d+)")
        yield Live(server, directory, int(tls[1]), int(tcp[1]), int(udp[1]))


def client(
    *argv: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """
    @return: C{python -m echotwist.client ARGV}, run to its end.
    """
    return subprocess.run(
        [*CLIENT, *argv],
        input=stdin,
        capture_output=True,
        timeout=120,
        env=environment(),
        cwd=cwd,
    )


def disconnected_lines(server: Server, count: int) -> list[str]:
    """
    @return: the server's first C{count} C{Disconnected} lines, once there.
    """
    server.wait_for(r"Disconnected .*", count)
    return re.findall(r"Disconnected .*", server.output())


@pytest.mark.parametrize("kind", ["unix", "tls"])
def test_clean_close(live: Live, kind: str) -> None:
    """
    Over UNIX and TLS the client closes cleanly after the echo: the server
    does not log the connection as lost in a non-clean fashion.
    """
    before = len(re.findall(r"Disconnected ", live.server.output()))
    connect = {
        "unix": f"unix:{live.unix}",
        "tls": f"tls:localhost:{live.tls}:trustRoots=ca",
    }[kind]
    result = client("--connect", connect, "hello", cwd=live.directory)
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
    line = disconnected_lines(live.server, before + 1)[before]
    assert "closed cleanly" in line, line
    assert "non-clean" not in line


def test_tls_hint(live: Live) -> None:
    """
    A plain client against the TLS port hints that the port may speak TLS.
    """
    result = client("--host", HOST, "-p", str(live.tls), "hello world")
    assert result.returncode == 4
    assert result.stderr.decode().splitlines() == [
        f"echotwist-client: {HOST}:{live.tls}: connection closed after 0 of 11 "
        f"echoed bytes (the port may speak TLS: try --connect "
        f"tls:{HOST}:{live.tls}:trustRoots=DIR)"
    ]


def test_connect_without_port() -> None:
    """
    C{--connect tcp:localhost} says what is missing in the user's terms.
    """
    result = client("--connect", "tcp:localhost", "hi")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "echotwist-client: --connect 'tcp:localhost': no port given; use "
        "tcp:HOST:PORT (e.g. tcp:localhost:9000)"
    ]


def test_version_and_help() -> None:
    """
    C{--version} names echotwist's version; C{--help} shows the defaults
    and examples.
    """
    version = client("--version")
    assert (version.returncode, version.stdout) == (
        0,
        f"echotwist-client {__version__}\n".encode(),
    )
    helped = client("--help")
    assert helped.returncode == 0
    text = helped.stdout.decode()
    for shown in ("default: localhost", "default: 9000", "examples:", "-p PORT"):
        assert shown in text


def test_message_from_stdin(live: Live) -> None:
    """
    With no message and standard input not a terminal, the message is read
    from it, as with C{-}.
    """
    result = client("--host", HOST, "-p", str(live.tcp), stdin=b"piped\n")
    assert (result.returncode, result.stdout) == (0, b"piped\n"), result.stderr


def test_verbose_udp(live: Live) -> None:
    """
    C{-v} reports the round trip over UDP too.
    """
    result = client("--udp", "-v", "--host", HOST, "-p", str(live.udp), "hi")
    assert (result.returncode, result.stdout) == (0, b"hi\n"), result.stderr
    assert re.fullmatch(
        rf"echotwist-client: 2 bytes echoed by udp:{HOST}:{live.udp} in "
        r"[\d.]+ ms\n",
        result.stderr.decode(),
    )
