"""
The blocking echo server: one client at a time, plain C{socket} calls.

This is the lab's server. C{accept}, C{recv} and C{sendall} each stop the
whole program until they are done, so while one client is connected every
other client waits in the listen queue, even one that only wants to send a
single byte. Run it with::

    python -m echotwist.reference.blocking --port 10000

The listening socket (create, set C{SO_REUSEADDR}, bind, listen) is made by
L{echotwist.reference.startup.open_listener}, shared with the C{select}
server. Compare L{echotwist.reference.selecting}, which serves many clients
at once, and the Twisted version, where the reactor runs the loops below.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence

from echotwist.reference.startup import ServerOptions, log, run_server


def serve(listener: socket.socket, options: ServerOptions) -> None:
    """
    Accept clients one after the other and echo to each until it leaves.

    This is the outer loop; it runs until Ctrl-C.

    @param listener: The listening socket.
    @param options: The server's options.
    """
    while True:
        try:
            # Blocks until a client connects.
            connection, address = listener.accept()
        except OSError as e:
            # The client gave up before we got to it: wait for the next one.
            log(f"Could not accept a connection: {e}")
            continue
        # "with" closes the client's socket when we are done with it, even if
        # Ctrl-C interrupts us in the middle.
        with connection:
            log(f"Connected by {address}")
            try:
                # Send each piece back at once. By default TCP holds a small
                # write back until the client acknowledges the one before,
                # and the client delays that (about 40 ms on Linux) while it
                # waits for the rest of its echo: long messages would crawl.
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                echo(connection, address, options)
            except OSError as e:
                # The client reset the connection, or vanished while we were
                # sending. That is its problem, not the server's: carry on.
                log(f"Lost {address}: {e}")


def echo(connection: socket.socket, address: object, options: ServerOptions) -> None:
    """
    Send back everything one client sends, until it closes the connection.

    This is the inner loop.

    @param connection: The client's socket.
    @param address: The client's address, for the log.
    @param options: The server's options.
    @raise OSError: If the connection fails.
    """
    while True:
        # Blocks until at least one byte has arrived; returns at most
        # buffer_size bytes, however many the client sent.
        data = connection.recv(options.buffer_size)
        if not data:
            # An empty read means the client has closed its side.
            log(f"Closed by {address}")
            return
        if not options.quiet:
            log(f"Received {data!r} from {address}")
        # send() may take only part of the data; sendall() loops until all of
        # it is handed to the operating system, blocking if need be.
        connection.sendall(data)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the blocking echo server from the command line.

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status.
    """
    return run_server(
        prog="echotwist-reference-blocking",
        description="Blocking echo server (RFC 862): one client at a time.",
        serve=serve,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
