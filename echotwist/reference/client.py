"""
The raw-socket echo client: connect, send, read the echo back, close.

The lab's client, with one fix: it counts the bytes that come back instead
of guessing from the size of the last chunk (see L{client}). Run it with::

    python -m echotwist.reference.client --port 10000 "This is a test message."

Compare the Twisted client in L{echotwist.client}.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import TextIO

from echotwist.reference.startup import host_and_port, port_number

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 10000  # the course's port
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

    @param message: The text to send, encoded as UTF-8.
    @param host: The server's host.
    @param port: The server's port.
    @param log_buffer: Where to write a line for each step.
    @param timeout: Seconds to wait for the connection and for each C{recv};
        C{None} waits as long as it takes.
    @return: The echo, decoded from UTF-8.
    @raise OSError: If the connection fails, times out, or the server closes
        it before the whole echo is back (a C{ConnectionError}).
    """
    data = message.encode("utf-8")
    print(f"connecting to {host} port {port}", file=log_buffer)
    # create_connection() makes the socket and connects it, trying each of
    # the host's addresses in turn ("localhost" may be ::1 and 127.0.0.1).
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            print(f"sending {data!r}", file=log_buffer)
            sock.sendall(data)
            received = bytearray()
            while len(received) < len(data):
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
    return received.decode("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Send one message from the command line and print the echo.

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status: 0 on success, 1 if the echo failed.
    """
    prog = "echotwist-reference-client"
    parser = argparse.ArgumentParser(
        prog=prog, description="Send a message to an echo server, print the echo."
    )
    parser.add_argument("message", help="the text to send")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="the server's host (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="the server's port (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    where = host_and_port(arguments.host, arguments.port)
    try:
        reply = client(arguments.message, arguments.host, arguments.port)
    except ConnectionRefusedError as e:
        print(f"{prog}: error: no echo server at {where}: {e}", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as e:
        print(f"{prog}: error: echo from {where} failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130  # the shell's status for Ctrl-C, without a traceback
    print(f"Received {reply.encode('utf-8')!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
