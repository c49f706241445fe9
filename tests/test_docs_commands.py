"""
Every shell command that README.rst and the pages in C{docs/} show runs as
shown.

The commands are read from the pages' literal blocks (a line starting with a
program this project documents, or with C{$ }); L{HOW} says how each is run,
and a test fails when a page shows a command L{HOW} does not list (or
L{HOW} lists one no page shows). Servers are started, checked to listen and
echo, and stopped; clients run against a live C{twistd echo}. The ports the
pages use (9000, 9443, 9007, 7, 10000) and the paths under C{/run} and
C{/tmp} are swapped for free ports and a temporary directory, and C{$!} for
the live server's process id: nothing else is changed. The output lines
shown under a C{$ } command must each be in its output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from sockets import HOST, TIMEOUT
from twistd_support import environment, stop, twistd_echo

from echotwist.tls import write_files

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
#: A line in a literal block that starts with one of these is a command.
PROGRAMS = (
    "twistd",
    "python",
    "echotwist-",
    "make",
    "pip",
    ". .venv",
    "trial",
    "pytest",
    "mypy",
    "ruff",
    "printf",
    "haproxy",
    "systemctl",
    "openssl",
    "nc ",
    "socat",
)
#: The ports the pages use, each swapped for a free one.
PORTS = ("9000", "9001", "9443", "9007", "10000", "7")
#: A port: after C{--port }, C{:}, C{=} (C{port=9000}) or C{port } (the
#: reference client's C{connecting to localhost port 10000}).
PORT = re.compile(
    r"(?:(?<=--port )|(?<=--info )|(?<=--info-udp )|(?<=[:=])|(?<=port ))("
    + "|".join(PORTS)
    + r")\b"
)
PATHS = re.compile(r"/(?:run|tmp)/(echo\.sock)")


@dataclass(frozen=True)
class Shown:
    """
    A command a page shows.

    @ivar page: the page, relative to the checkout.
    @ivar command: the command (continuation lines joined).
    @ivar output: the lines shown as its output, if it is shown after C{$ }.
    """

    page: str
    command: str
    output: tuple[str, ...] = ()


def literal_blocks(text: str) -> Iterator[list[str]]:
    """
    @return: the lines of each literal block (after C{::} or a
        C{code-block}) in reStructuredText C{text}, dedented.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        directive = line.startswith(".. code-block::")
        if not directive and (not line.rstrip().endswith("::") or ".. " in line):
            continue
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i == len(lines):
            break
        indent = len(lines[i]) - len(lines[i].lstrip())
        if indent <= len(line) - len(line.lstrip()):
            continue
        body = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent
        ):
            body.append(lines[i][indent:])
            i += 1
        yield body


def shown_commands() -> list[Shown]:
    """
    @return: every command shown in L{PAGES}, in order.
    """
    found = []
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        for body in literal_blocks(page.read_text(encoding="utf-8")):
            lines = "\n".join(body).replace("\\\n", "").splitlines()
            prompted = any(line.startswith("$ ") for line in lines)
            for n, line in enumerate(lines):
                command = line.removeprefix("$ ") if prompted else line
                if prompted and not line.startswith("$ "):
                    continue
                if not command.startswith(PROGRAMS):
                    continue
                output: list[str] = []
                if prompted:
                    for after in lines[n + 1 :]:
                        if after.startswith("$ "):
                            break
                        output.append(after)
                command = " ".join(command.split())
                found.append(Shown(name, command, tuple(output)))
    return found


@dataclass(frozen=True)
class Server:
    """
    A command that serves until stopped: start it, check that it listens
    on each port it names (and echoes on the plain ones), stop it.

    @ivar stop_signal: what stops it (SIGINT is Ctrl-C, as the reference
        servers document).
    @ivar header: sent first on each port it names (a PROXY header, for
        C{haproxy:} ports).
    @ivar info: the page ports that are info ports (C{--info}): checked to
        answer with a JSON line rather than to echo.
    @ivar listen_only: only check that it listens (its C{--proxy-from}
        shuts this machine out).
    """

    stop_signal: int = signal.SIGTERM
    header: bytes = b""
    info: tuple[str, ...] = ()
    listen_only: bool = False


#: The PROXY header the checks of C{haproxy:} ports send.
PROXY_HEADER = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 9000\r\n"


@dataclass(frozen=True)
class Client:
    """
    A command that runs to completion, exit status 0, against the live
    server.

    @ivar stdout: what it must print, if the page says.
    @ivar files: files it must leave in its directory, and their bytes.
    @ivar in_checkout: run it in the checkout (it names files there).
    """

    stdout: bytes | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    in_checkout: bool = False


@dataclass(frozen=True)
class NotRun:
    """
    A command this test does not run, and why.
    """

    reason: str


SET_UP = NotRun("set-up and test commands: CI runs `make test` from a clean clone")
#: How each command shown is run (or why it is not).
HOW: dict[str, Server | Client | NotRun] = {
    "make run": NotRun(
        "serves on the real port 9000 until stopped; it runs `twistd -n echo`,"
        " run here as `twistd -n echo --port 9000`"
    ),
    "make test": SET_UP,
    "make run # set up .venv, then run twistd -n echo on port 9000": NotRun(
        "as `make run`"
    ),
    "make test # set up, then run every test and check": SET_UP,
    "python3 -m venv .venv": SET_UP,
    ". .venv/bin/activate": SET_UP,
    "pip install -e '.[tls,test,dev,docs]' --config-settings editable_mode=compat": (
        SET_UP
    ),
    "pip install 'echotwist[tls]'": SET_UP,
    "trial echotwist && pytest": SET_UP,
    "twistd -n echo --port 9000": Server(),
    "twistd -n echo --port 9000 --port unix:/tmp/echo.sock": Server(),
    "twistd -n echo --port 127.0.0.1:9000 --port '[::1]:9000'": Server(),
    "twistd -n echo --port tcp:9000:interface=127.0.0.1 "
    "--port 'tcp6:9000:interface=\\:\\:1'": Server(),
    "twistd -n echo --port unix:/run/echo.sock": Server(),
    "twistd -n echo --port ssl:9443:privateKey=key.pem:certKey=cert.pem": Server(),
    "twistd -n --reactor epoll echo --port 9000": Server(),
    "twistd -n echo --port 9000 --workers auto": Server(),
    "twistd -n --pidfile= echo --port tcp:9000 &": Server(),
    "twistd --nodaemon --pidfile= --logfile=- echo --port "
    "systemd:domain=INET:index=0 --workers auto --metrics "
    "tcp:9100:interface=127.0.0.1": NotRun(
        "serves a socket systemd passes; tests/test_systemd.py passes one the same way"
    ),
    "python -m echotwist.reference.blocking --port 10000": Server(signal.SIGINT),
    "python -m echotwist.reference.selecting --port 10000": Server(signal.SIGINT),
    'python -m echotwist.client --port 9000 "hello world"': Client(b"hello world\n"),
    'python -m echotwist.client --host ::1 --port 7 "msg"': Client(b"msg\n"),
    'python -m echotwist.client --connect unix:path=/run/echo.sock "msg"': Client(
        b"msg\n"
    ),
    'python -m echotwist.client --connect tls:localhost:9443:trustRoots=ca/ "msg"': (
        Client(b"msg\n")
    ),
    "printf 'any\\0bytes\\377' | python -m echotwist.client --port 9000 - "
    "> echoed.bin": Client(b"", {"echoed.bin": b"any\0bytes\377"}),
    'python -m echotwist.client --udp --port 9007 --retries 5 "one datagram"': (
        Client(b"one datagram\n")
    ),
    "python -m echotwist.tls": NotRun(
        "run by the live() fixture, which makes the TLS server's files with it"
    ),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --connections 10 "
    "--size 1024 --duration 5": Client(),
    "python -m echotwist.bench --connect tcp:host=127.0.0.1:port=9000 "
    "--connections 100 --size 1024 --duration 5 --server-pid $!": Client(),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --stream --size 64K "
    "--duration 5": Client(),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --burst 10000 "
    "--server-pid $!": Client(),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --connections 100 "
    "--size 1K --duration 5 --driver native --server-pid $!": Client(),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --storm 10000 "
    "--server-pid $!": Client(),
    "python -m echotwist.bench --connect tcp:127.0.0.1:9000 --connect-rate 1000 "
    "--duration 5 --server-pid $!": Client(),
    "python -m echotwist.bench --compare --workloads 100x1K,1000x1K,storm:10000 "
    "--servers echotwist,uvloop --duration 3 --rounds 3": NotRun(
        "starts its own servers and takes about a minute; tests/test_bench.py"
        " runs a short --compare with a storm"
    ),
    "python -m echotwist.bench --compare --workloads "
    "100x1K,1000x1K,100x64K,storm:10000 --servers "
    "echotwist,echotwist-stock,twisted-wire,asyncio,uvloop --duration 5 --rounds 3"
    " --plot docs/bench.png": NotRun(
        "takes about 8 minutes and rewrites docs/bench.png; tests/test_bench.py"
        " runs a short --compare"
    ),
    "python benchmarks/trees.py --tree before=/tmp/before --tree after=. "
    "--workloads 100x1K,1000x1K --rounds 5 --duration 5": NotRun(
        "needs a second checkout with its own virtual environment, and takes"
        " about 4 minutes; tests/test_benchmarks.py runs it on this tree"
        " against itself for one short round"
    ),
    "python benchmarks/scaling.py --workers 1,2,4,8 --clients 8 --connections 32"
    " --seconds 10": NotRun("needs 16 cores; the 2-worker run below is run"),
    "python benchmarks/scaling.py --workers 1,2 --clients 2 --connections 16 "
    "--seconds 5": Client(in_checkout=True),
    'python -m echotwist.reference.client --port 10000 "Demo Message"': Client(
        b"Received b'Demo Message'\n"
    ),
    "twistd -n echo --port haproxy:tcp:9000 --info haproxy:tcp:9001 "
    "--proxy-from 127.0.0.1/32": Server(header=PROXY_HEADER, info=("9001",)),
    "twistd -n echo --port haproxy:ssl:9443:privateKey=key.pem:certKey=cert.pem": (
        Server()
    ),
    "twistd -n echo --port 9000 --info 9001 --info-udp 9001": Server(info=("9001",)),
    "twistd -n echo --port haproxy:tcp:9000 --info haproxy:tcp:9001 "
    "--proxy-from 10.0.0.2/32": Server(listen_only=True),
    "python -m echotwist.client --info --port 9001": Client(),
    "python -m echotwist.client --info --json --port 9001": Client(),
    "python -m echotwist.client --info --udp --port 9001": Client(),
    "python benchmarks/proxy_fastpath.py --echoes 100000 --rounds 6": NotRun(
        "a minute of load; tests/test_proxy_ports.py runs it with --echoes 2000"
        " --rounds 1"
    ),
    "haproxy -c -f contrib/haproxy/echotwist.cfg": NotRun(
        "tests/test_haproxy.py runs this configuration with a real HAProxy"
        " (skipped, saying so, where haproxy is not installed)"
    ),
    "python -m echotwist.client --host 127.0.0.1 --port 9000 -c 3 -i 0.2": Client(),
    "python -m echotwist.client --connect tls:localhost:9443:trustRoots=ca/ "
    "--reconnect -c 3 -i 0.2": Client(),
    "python -m echotwist.client --connect unix:path=/run/echo.sock -c 2 -i 0.2 "
    "--json": Client(),
    "python -m echotwist.client --udp --host 127.0.0.1 --port 9007 -c 3 -i 0.2 "
    "--spread": Client(),
    "python -m echotwist.reference.services 1 25": Client(),
    "python -m echotwist.reference.services 7": Client(),
    "python -m echotwist.reference.services www": Client(),
}


def test_every_command_listed() -> None:
    """
    Each command the pages show is in L{HOW}, and each in L{HOW} is shown.
    """
    shown = {s.command for s in shown_commands()}
    assert sorted(shown - HOW.keys()) == [], "shown but not in HOW"
    assert sorted(HOW.keys() - shown) == [], "in HOW but shown nowhere"


def test_backslashes_quoted() -> None:
    """
    A backslash in a command (as in C{tcp6:9000:interface=\\:\\:1}) is
    quoted, so that the shell passes it on.
    """
    for shown in shown_commands():
        if "\\" in shown.command:
            assert "\\" in " ".join(shlex.split(shown.command)), shown


def free_port(family: socket.AddressFamily, kind: socket.SocketKind) -> int:
    """
    @return: a port the system picked as free on loopback just now.
    """
    address = "::1" if family == socket.AF_INET6 else HOST
    with socket.socket(family, kind) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def free_tcp_and_udp_port() -> int:
    """
    @return: a port free on loopback for both TCP and UDP just now.
    """
    while True:
        port = free_port(socket.AF_INET, socket.SOCK_STREAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        return port


def substitute(command: str, ports: dict[str, int], directory: Path) -> str:
    """
    @return: C{command} with the pages' ports and socket paths swapped for
        C{ports} and C{directory}.
    """
    command = PORT.sub(lambda m: str(ports[m.group(1)]), command)
    return PATHS.sub(lambda m: str(directory / m.group(1)), command)


def shell_environment() -> dict[str, str]:
    """
    @return: an environment whose C{python} and C{twistd} are this
        checkout's, as with its virtual environment activated.
    """
    env = environment()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    return env


def shell(command: str, directory: Path, out: IO[bytes]) -> subprocess.Popen[bytes]:
    """
    Start C{command} in bash, which C{exec}s it, so that a signal sent to
    the process reaches the command itself.

    @param directory: where it runs.
    @param out: where its standard output and error go.
    """
    return subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=directory,
        env=shell_environment(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


@dataclass
class Live:
    """
    The servers the client commands run against.

    @ivar directory: where the client commands run, with the TLS recipe's
        files.
    @ivar ports: the free port for each port the pages use.
    @ivar pid: the twistd server's process id.
    """

    directory: Path
    ports: dict[str, int]
    pid: int


def listening_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """
    @return: the port a reference server prints it listens on.
    """
    deadline = time.monotonic() + TIMEOUT
    while not (found := re.search(r"Listening on [\d.]+:(\d+)", log.read_text())):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return int(found.group(1))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """
    A C{twistd echo} on TCP, TCP over IPv6, a UNIX socket, TLS (with the
    files C{python -m echotwist.tls} writes, run as C{docs/tls.rst} shows)
    and UDP, and a reference C{select} server.
    """
    directory = tmp_path_factory.mktemp("docs")
    subprocess.run(
        shlex.split("python -m echotwist.tls"),
        cwd=directory,
        env=shell_environment(),
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    ports = {
        "9000": free_port(socket.AF_INET, socket.SOCK_STREAM),
        "7": free_port(socket.AF_INET6, socket.SOCK_STREAM),
        "9443": free_port(socket.AF_INET, socket.SOCK_STREAM),
        "9007": free_port(socket.AF_INET, socket.SOCK_DGRAM),
        "9001": free_tcp_and_udp_port(),
    }
    listen = [
        f"unix:{directory}/echo.sock",
        f"tcp:{ports['9000']}:interface={HOST}",
        f"tcp6:{ports['7']}:interface=\\:\\:1",
        f"ssl:{ports['9443']}:privateKey=key.pem:certKey=cert.pem:interface={HOST}",
    ]
    udp = (
        "--udp",
        f"{HOST}:{ports['9007']}",
        "--info",
        f"tcp:{ports['9001']}:interface={HOST}",
        "--info-udp",
        f"{HOST}:{ports['9001']}",
    )
    log = directory / "reference.log"
    with (
        twistd_echo(*udp, ports=listen, directory=directory) as server,
        log.open("wb") as out,
    ):
        reference = shell(
            "python -m echotwist.reference.selecting --port 0", directory, out
        )
        try:
            ports["10000"] = listening_port(reference, log)
            yield Live(directory, ports, server.process.pid)
        finally:
            reference.send_signal(signal.SIGINT)
            reference.wait(TIMEOUT)


def commands_of(kind: type[object]) -> list[object]:
    """
    @return: the shown commands L{HOW} runs as C{kind}, as test parameters.
    """
    return [
        pytest.param(s, id=f"{s.page}: {s.command}")
        for s in shown_commands()
        if isinstance(HOW.get(s.command), kind)
    ]


def connect(port: int) -> socket.socket | None:
    """
    @return: a connection to C{port} on loopback (IPv4 or IPv6), or C{None}
        if neither accepts.
    """
    for address in (HOST, "::1"):
        try:
            return socket.create_connection((address, port), timeout=TIMEOUT)
        except OSError:
            pass
    return None


def echoes(sock: socket.socket) -> bool:
    """
    @return: whether a line sent on C{sock} comes back.
    """
    with sock:
        sock.sendall(b"ping\n")
        received = b""
        while len(received) < 5 and (chunk := sock.recv(5)):
            received += chunk
        return received == b"ping\n"


def answers_info(sock: socket.socket) -> bool:
    """
    @return: whether C{sock} is answered with one JSON line, then closed.
    """
    with sock:
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received.count(b"\n") == 1 and "version" in json.loads(received)


@pytest.mark.parametrize("shown", commands_of(Server))
def test_server_command(shown: Shown, tmp_path: Path) -> None:
    """
    The server listens on every port and socket the command names, echoes
    on the plain ones, and exits 0 when stopped as its page says.
    """
    how = HOW[shown.command]
    assert isinstance(how, Server)
    write_files(tmp_path)
    ports = {p: free_port(socket.AF_INET, socket.SOCK_STREAM) for p in PORTS}
    command = substitute(shown.command, ports, tmp_path).removesuffix("&")
    named = [ports[m.group(1)] for m in PORT.finditer(shown.command)]
    info = {ports[page] for page in how.info}
    sockets = [tmp_path / m.group(1) for m in PATHS.finditer(shown.command)]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = shell(command, tmp_path, out)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, f"{command} exited:\n{log.read_text()}"
            ready = [connect(port) for port in named]
            for path in sockets:
                unix = socket.socket(socket.AF_UNIX)
                try:
                    unix.connect(str(path))
                    ready.append(unix)
                except OSError:
                    unix.close()
                    ready.append(None)
            if all(ready):
                break
            for sock in ready:
                if sock is not None:
                    sock.close()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        plain = [port != ports["9443"] for port in named] + [True] * len(sockets)
        plain = [p and not how.listen_only for p in plain]
        results = []
        for sock, is_plain, port in zip(
            ready, plain, [*named, *([0] * len(sockets))], strict=True
        ):
            assert sock is not None
            if not is_plain:
                sock.close()
                continue
            sock.settimeout(TIMEOUT)
            if how.header:
                sock.sendall(how.header)
            if port in info:
                results.append(answers_info(sock))
            else:
                results.append(echoes(sock))
        assert all(results), log.read_text()
    finally:
        if process.poll() is None:
            process.send_signal(how.stop_signal)
        try:
            status = process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            status = stop(process)
    assert status == 0, log.read_text()


@pytest.mark.parametrize("shown", commands_of(Client))
def test_client_command(shown: Shown, live: Live) -> None:
    """
    The command exits 0 against the live servers, prints what its page
    says it prints, and leaves the files it says it writes.
    """
    how = HOW[shown.command]
    assert isinstance(how, Client)
    command = substitute(shown.command, live.ports, live.directory)
    command = command.replace("$!", str(live.pid))
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT if how.in_checkout else live.directory,
        env=shell_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    report = f"{command}\n{result.stdout!r}\n{result.stderr.decode(errors='replace')}"
    assert result.returncode == 0, report
    if how.stdout is not None:
        assert result.stdout == how.stdout, report
    for name, content in how.files.items():
        assert (live.directory / name).read_bytes() == content
    printed = (result.stdout + result.stderr).decode(errors="replace").splitlines()
    printed = [line.strip() for line in printed]
    for line in shown.output:
        line = substitute(line, live.ports, live.directory).strip()
        if line and line != "...":
            assert line in printed, report
