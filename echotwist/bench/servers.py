"""
The echo servers C{--compare} loads, each started in its own process on a
free loopback port; and, run as C{python -m echotwist.bench.servers KIND
PORT}, the small comparison servers that are not part of echotwist.

C{echotwist} is C{twistd echo} as it runs by default, on the echotwist-epoll
reactor; C{echotwist-stock} is the same service on Twisted's own epoll
reactor (C{twistd --reactor epoll echo}).  The others:
Twisted's own L{twisted.protocols.wire.Echo}, an asyncio Protocol server and
a uvloop one, all listening with C{twistd echo}'s backlog (the system's
C{somaxconn}), so that a storm meets the same queue on each.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from echotwist.server.options import DEFAULT_BACKLOG

#: How long a server may take to start listening, in seconds.
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerSpec:
    """
    One server C{--compare} can run.

    @ivar name: its name in tables and C{--servers}.
    @ivar needs: a module that must be importable for it to run.
    @ivar no_storms: why C{--compare} runs no storm on it, if it doesn't.
    """

    name: str
    needs: str
    no_storms: str = ""

    def command(self, port: int) -> list[str]:
        """
        @return: the command line that serves on 127.0.0.1:C{port}.
        """
        if self.name.startswith("echotwist"):
            twistd = str(Path(sys.executable).with_name("twistd"))
            reactor = ["--reactor", "epoll"] if self.name == "echotwist-stock" else []
            listen = f"tcp:{port}:interface=127.0.0.1"
            return [twistd, "-n", "--pidfile=", *reactor, "echo", "--port", listen]
        if self.name == "reference-select":
            module = "echotwist.reference.selecting"
            return [
                sys.executable,
                "-m",
                module,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--quiet",
            ]
        return [sys.executable, "-m", __name__, self.name, str(port)]

    def missing(self) -> str | None:
        """
        @return: why this server can't run here, or L{None} if it can.
        """
        try:
            found = importlib.util.find_spec(self.needs) is not None
        except ModuleNotFoundError:
            found = False
        return None if found else f"{self.name}: skipped, {self.needs} is not installed"


SERVERS = (
    ServerSpec("echotwist", "echotwist.server.protocol"),
    ServerSpec("echotwist-stock", "twisted.internet.epollreactor"),
    ServerSpec(
        "reference-select",
        "echotwist.reference.selecting",
        no_storms="select() serves at most 1,024 descriptors",
    ),
    ServerSpec("twisted-wire", "twisted.protocols.wire"),
    ServerSpec("asyncio", "asyncio"),
    ServerSpec("uvloop", "uvloop"),
)


def free_port() -> int:
    """
    @return: a loopback TCP port the OS says is free now.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Running:
    """
    A started server.

    @ivar spec: which one.
    @ivar process: its process (whose CPU time is the server's).
    @ivar port: where it listens.
    """

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int


def wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    """
    Wait until something accepts connections on 127.0.0.1:C{port}.

    @raise RuntimeError: if the process exits or L{START_TIMEOUT} passes.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("did not start listening") from None
            time.sleep(0.05)


@contextmanager
def started(spec: ServerSpec) -> Iterator[Running]:
    """
    Run a server until the block ends, then stop it, even on failure.
    """
    port = free_port()
    process = subprocess.Popen(
        spec.command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(process, port)
        yield Running(spec, process, port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _AsyncioEcho(asyncio.Protocol):
    """
    The plain asyncio echo protocol the issue compares against.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _serve_asyncio(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        _AsyncioEcho, "127.0.0.1", port, backlog=DEFAULT_BACKLOG
    )
    await server.serve_forever()


def _serve_wire(port: int) -> None:
    from twisted.internet import endpoints, reactor
    from twisted.internet.protocol import Factory
    from twisted.protocols.wire import Echo

    # twistd echo's backlog, as the asyncio servers here (Twisted's default,
    # 50, would make a storm measure the queue, not the server).
    endpoint = endpoints.serverFromString(
        reactor, f"tcp:{port}:interface=127.0.0.1:backlog={DEFAULT_BACKLOG}"
    )
    endpoint.listen(Factory.forProtocol(Echo))
    reactor.run()


def main(argv: list[str]) -> int:
    """
    Serve one comparison server until killed.

    @param argv: C{[KIND, PORT]}, KIND one of C{twisted-wire}, C{asyncio},
        C{uvloop}.
    @return: the exit status.
    """
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m echotwist.bench.servers KIND PORT", file=sys.stderr)
        return 2
    kind, port = argv[0], int(argv[1])
    if kind == "twisted-wire":
        _serve_wire(port)
    elif kind == "asyncio":
        asyncio.run(_serve_asyncio(port))
    elif kind == "uvloop":
        import uvloop

        uvloop.run(_serve_asyncio(port))
    else:
        print(f"unknown server {kind!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
