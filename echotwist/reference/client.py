"""
The raw-socket echo client: connect, send, read the echo back, close.

The lab's client, with one fix: it counts the bytes that come back instead
of guessing from the size of the last chunk (see L{client}). Run it with::

    python -m echotwist.reference.client --port 10000 "This is a test message."

Compare the Twisted client in L{echotwist.client}.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from echotwist import ports
from echotwist.cli import version_line
from echotwist.reference.startup import host_and_port

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 10000  # the course's port
DEFAULT_TIMEOUT = 10.0  # seconds, as the Twisted client's
RECV_SIZE = 1024  # the lab's 1K; any size works, since we count bytes


def client(
    message: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_buffer: TextIO = sys.stderr,
    *,
    timeout: float | None = None,
) -> str:
    """
    Send C{message} to an echo server and return what it sends back.

    How do we know the whole echo is back? The course's hint, "you're done
    when C{recv} returns fewer than 16 bytes", is wrong for TCP. TCP carries
    a stream of bytes, not messages: C{recv} returns whatever has arrived so
    far, so a short chunk can come in the middle of the echo (the rest is
    still on its way) and the client stops too early; and when the length is
    a multiple of 16, the last chunk is a full one, so the client waits
    forever for a short one. Instead we count: we sent C{len(data)} bytes,
    so we read until that many have come back. Bytes, not characters: "é"
    is one character but two bytes in UTF-8.

    The message is encoded as the system encodes command-line arguments
    (C{os.fsencode}: UTF-8, and an argument that is not valid UTF-8 is sent
    as the very bytes it was given as), and the echo decoded the same way.

    @param message: The text to send.
    @param host: The server's host.
    @param port: The server's port.
    @param log_buffer: Where to write a line for each step.
    @param timeout: Seconds the whole exchange may take, connecting
        included; C{None} waits as long as it takes.
    @return: The echo.
    @raise OSError: If the connection fails, times out (a C{TimeoutError}),
        or the server closes it before the whole echo is back (a
        C{ConnectionError}).
    """
    data = os.fsencode(message)
    deadline = None if timeout is None else time.monotonic() + timeout
    print(f"connecting to {host} port {port}", file=log_buffer)
    # create_connection() makes the socket and connects it, trying each of
    # the host's addresses in turn ("localhost" may be ::1 and 127.0.0.1).
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            print(f"sending {data!r}", file=log_buffer)
            _wait_at_most(sock, deadline)
            sock.sendall(data)
            received = bytearray()
            while len(received) < len(data):
                _wait_at_most(sock, deadline)
                chunk = sock.recv(RECV_SIZE)
                if not chunk:
                    raise ConnectionError(
                        f"server closed the connection after {len(received)} "
                        f"of {len(data)} bytes"
                    )
                print(f"received {chunk!r}", file=log_buffer)
                received += chunk
        finally:
            print("closing socket", file=log_buffer)
    # Decode once, at the end: a chunk may end in the middle of a character.
    return os.fsdecode(bytes(received))


def _wait_at_most(sock: socket.socket, deadline: float | None) -> None:
    """
    Make C{sock}'s next call time out at C{deadline}.

    @param deadline: a C{time.monotonic()} time, or C{None} for never.
    @raise TimeoutError: if C{deadline} has passed.
    """
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    sock.settimeout(left)


def host_name(text: str) -> str:
    """
    Check C{--host} (an C{argparse} type): a name the resolver can be asked
    for, or an IP address.

    @param text: The argument as typed.
    @return: C{text}.
    @raise argparse.ArgumentTypeError: If C{text} cannot be a host name (it
        is empty, or not valid in the system's encoding, say).
    """
    try:
        if not text:
            raise UnicodeError("empty")
        text.encode("idna")
    except UnicodeError:
        shown = os.fsencode(text).decode("ascii", "backslashreplace")
        raise argparse.ArgumentTypeError(f"'{shown}' is not a host name") from None
    return text


def seconds(text: str) -> float:
    """
    Read C{--timeout} from the command line (an C{argparse} type).

    @param text: The argument as typed.
    @return: A positive, finite number of seconds.
    @raise argparse.ArgumentTypeError: If C{text} is not such a number.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """
    Send one message from the command line and print the echo.

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status: 0 on success, 1 if the echo failed or timed
        out.
    """
    prog = "echotwist-reference-client"
    parser = argparse.ArgumentParser(
        prog=prog, description="Send a message to an echo server, print the echo."
    )
    parser.add_argument("--version", action="version", version=version_line(prog))
    parser.add_argument(
        "message",
        help="the text to send (sent as the bytes the system gave it as)",
    )
    parser.add_argument(
        "--host",
        type=host_name,
        default=DEFAULT_HOST,
        help="the server's host (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=ports.connect_port,
        default=DEFAULT_PORT,
        help="the server's port (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help="seconds for connecting and the whole echo (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    where = host_and_port(arguments.host, arguments.port)
    try:
        reply = client(
            arguments.message,
            arguments.host,
            arguments.port,
            timeout=arguments.timeout,
        )
    except ConnectionRefusedError as e:
        print(f"{prog}: error: no echo server at {where}: {e}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(
            f"{prog}: error: no echo from {where} within {arguments.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    except OSError as e:
        print(f"{prog}: error: echo from {where} failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130  # the shell's status for Ctrl-C, without a traceback
    print(f"Received {os.fsencode(reply)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
