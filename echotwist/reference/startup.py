"""
Start-up and shut-down shared by the two reference servers.

Both servers take the same options, open their listening socket the same way,
report the same start-up errors and stop the same way on Ctrl-C. Only the
serving loop differs, so that loop is all that L{echotwist.reference.blocking}
and L{echotwist.reference.selecting} contain.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from echotwist import ports
from echotwist.cli import version_line

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 10000  # the course's port
DEFAULT_BUFFER_SIZE = 1024  # the lab's 1K; 16 reproduces the course's chunks
MAX_BUFFER_SIZE = 1024 * 1024  # recv(n) allocates n bytes up front


@dataclass(frozen=True)
class ServerOptions:
    """
    What a reference server was asked to do on its command line.

    @ivar host: The address to listen on.
    @ivar port: The TCP port to listen on; 0 lets the system pick a free one.
    @ivar buffer_size: The most bytes one C{recv} call asks for.
    @ivar quiet: Whether to leave out the line printed for each message.
    """

    host: str
    port: int
    buffer_size: int
    quiet: bool


class StartupError(Exception):
    """
    The server cannot start; the message is the one line to show the user.
    """


Serve = Callable[[socket.socket, ServerOptions], None]
"""A serving loop: it is given the listening socket and runs until Ctrl-C."""


def log(line: str) -> None:
    """
    Print one line of the server's log.

    It is flushed at once, so the line shows up even when the output goes to
    a pipe or a file (as it does in the tests).

    @param line: The line, without its newline.
    """
    print(line, flush=True)


def port_number(text: str) -> int:
    """
    Read a TCP port number from the command line (an C{argparse} type).

    @param text: The argument as typed.
    @return: The port, 0 to 65535.
    @raise argparse.ArgumentTypeError: If C{text} is not such a number.
    """
    port = ports.port_number(text)
    if port is None or not 0 <= port <= ports.MAX_PORT:
        raise argparse.ArgumentTypeError(ports.not_a_port(text))
    return port


def buffer_size(text: str) -> int:
    """
    Read a receive buffer size from the command line (an C{argparse} type).

    @param text: The argument as typed.
    @return: The size, 1 to L{MAX_BUFFER_SIZE} bytes.
    @raise argparse.ArgumentTypeError: If C{text} is not such a number.
    """
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= size <= MAX_BUFFER_SIZE:
        raise argparse.ArgumentTypeError(
            f"{size} is not between 1 and {MAX_BUFFER_SIZE} bytes"
        )
    return size


def parse_options(
    prog: str, description: str, argv: Sequence[str] | None = None
) -> ServerOptions:
    """
    Parse a reference server's command line.

    Bad arguments print a usage error and exit with status 2 (argparse).

    @param prog: The program name shown in usage and error messages.
    @param description: What the server is, for C{--help}.
    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The options.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=version_line(prog))
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="TCP port to listen on, 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--buffer-size",
        type=buffer_size,
        default=DEFAULT_BUFFER_SIZE,
        help="bytes asked for by each recv; 16 gives the course's chunks "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="do not print a line for each message received",
    )
    arguments = parser.parse_args(argv)
    return ServerOptions(
        host=arguments.host,
        port=arguments.port,
        buffer_size=arguments.buffer_size,
        quiet=arguments.quiet,
    )


def host_and_port(host: str, port: int) -> str:
    """
    Write an address the way people type it: C{127.0.0.1:10000}, C{[::1]:10000}.

    @param host: A host name or IP address.
    @param port: A port number.
    @return: The address as text.
    """
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def open_listener(host: str, port: int) -> socket.socket:
    """
    Create a TCP socket, bind it to C{host} and C{port}, and listen on it.

    @param host: The address to listen on (IPv4 or IPv6, or a name).
    @param port: The port to listen on; 0 lets the system pick one.
    @return: The listening socket.
    @raise StartupError: If any step fails; the message names the address
        and the operating system's error.
    """
    where = host_and_port(host, port)
    # getaddrinfo turns the host into an address and tells us its family
    # (AF_INET for IPv4, AF_INET6 for IPv6), which socket() needs to know.
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise StartupError(f"cannot resolve {where}: {e.strerror}") from None
    try:
        listener = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise StartupError(f"cannot create a socket for {where}: {e}") from None
    try:
        # Without SO_REUSEADDR a restarted server could not bind its port
        # again until the old connections' TIME_WAIT (a minute or so) is over.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(socket.SOMAXCONN)
    except OSError as e:
        listener.close()
        raise StartupError(f"cannot listen on {where}: {e}") from None
    return listener


def run_server(
    prog: str, description: str, serve: Serve, argv: Sequence[str] | None = None
) -> int:
    """
    Run a reference server from its command line until Ctrl-C.

    @param prog: The program name for messages.
    @param description: What the server is, for C{--help}.
    @param serve: The server's loop.
    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status: 0 after Ctrl-C, 1 if the server cannot start.
    """
    options = parse_options(prog, description, argv)
    try:
        listener = open_listener(options.host, options.port)
    except StartupError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    # "with" closes the listening socket however we leave: Ctrl-C included.
    # The serving loop closes the client sockets it opened the same way.
    with listener:
        try:
            # With --port 0 this line is the only way to learn the port.
            host, port = listener.getsockname()[:2]
            log(f"Listening on {host_and_port(host, port)}")
            serve(listener, options)
        except KeyboardInterrupt:
            # Ctrl-C is how these servers are meant to stop: no traceback.
            log("Shutting down")
    return 0
