"""
The C{select} echo server: many clients at once, one thread, no blocking.

The course's "challenging" server. All sockets are non-blocking and a single
loop asks C{select.select} which of them are ready, then does only what will
not block: accept on a listener that has a connection waiting, C{recv} from
a client that has sent something, C{send} to a client that has room for more.
Run it with::

    python -m echotwist.reference.selecting --port 10000

What a careful C{select} server has to handle, and a naive one does not:

  - A client that stops reading. Each client has an outgoing buffer, and the
    loop only sends what the operating system takes at once; a blocking
    C{sendall} here would freeze every other client. We also stop reading
    from a client whose buffer is over L{MAX_PENDING} bytes, so it cannot
    make the server hold unbounded memory.
  - Descriptors at or above C{FD_SETSIZE} (1024), which C{select} cannot
    watch: a naive server crashes at about a thousand connections. This one
    accepts the extra connections, logs them and closes them.
  - Small writes held back. We send back what each C{recv} returned, so
    with the default C{--buffer-size} a 64 KiB message goes back in 64
    pieces of 1 KiB. By default TCP holds a small piece back while an
    earlier one is not yet acknowledged (Nagle's algorithm), and the client
    delays its acknowledgement (about 40 ms on Linux) as it has nothing to
    send until its whole echo is back: every long message would wait 40 ms.
    Setting C{TCP_NODELAY} on each connection turns Nagle's algorithm off.
  - Running out of descriptors altogether (the process limit, often 1024):
    accept then fails, and the waiting connection would make C{select}
    report the listener ready forever. A spare descriptor, freed for the
    moment, lets us accept that connection and close it.

The Twisted reactor is this loop, written once and for all (and able to use
C{epoll}, which has no C{FD_SETSIZE}); compare L{echotwist.server.protocol}.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from echotwist.reference.startup import ServerOptions, log, run_server

FD_SETSIZE = 1024
"""C{select} cannot watch a descriptor this high or higher (Linux, macOS)."""

MAX_PENDING = 64 * 1024
"""Stop reading from a client while this many of its bytes wait to go back."""


@dataclass
class Client:
    """
    What the server knows about one connected client.

    @ivar address: The client's address, for the log.
    @ivar outgoing: Bytes received from the client, not yet sent back.
    @ivar reading: Whether the client may still send; C{False} once it has
        closed its side, after which we only finish sending back.
    """

    address: object
    outgoing: bytearray = field(default_factory=bytearray)
    reading: bool = True


class SelectServer:
    """
    An echo server that serves all its clients from one C{select} loop.

    @ivar listener: The non-blocking listening socket.
    @ivar options: The server's options.
    @ivar clients: Every connected client, by its socket.
    @ivar spare: A descriptor held in reserve for when the process has none
        left (see L{refuse_for_lack_of_descriptors}).
    """

    def __init__(self, listener: socket.socket, options: ServerOptions) -> None:
        """
        @param listener: The listening socket.
        @param options: The server's options.
        """
        listener.setblocking(False)
        self.listener = listener
        self.options = options
        self.clients: dict[socket.socket, Client] = {}
        self.spare = os.open(os.devnull, os.O_RDONLY)

    def serve_forever(self) -> None:
        """
        Wait for sockets to be ready and serve them, until Ctrl-C.
        """
        while True:
            readers, writers = self.sockets_to_watch()
            # The one place this server waits: until some socket is ready.
            readable, writable, _ = select.select(readers, writers, [])
            for connection in readable:
                if connection is self.listener:
                    self.accept_clients()
                elif connection in self.clients:
                    self.receive(connection)
            for connection in writable:
                # receive() may have closed it in the meantime.
                if connection in self.clients:
                    self.send(connection)

    def sockets_to_watch(self) -> tuple[list[socket.socket], list[socket.socket]]:
        """
        Say which sockets C{select} should watch, for reading and for writing.

        @return: The sockets to read from when ready: the listener (for new
            connections) and every client that may still send and is not too
            far behind; and the sockets to write to when ready: the clients
            we have something to send to. (A socket with room in its buffer
            is almost always writable: watching the others for writing would
            wake us up for nothing.)
        """
        readers = [self.listener]
        readers += [
            connection
            for connection, client in self.clients.items()
            if client.reading and len(client.outgoing) < MAX_PENDING
        ]
        writers = [
            connection for connection, client in self.clients.items() if client.outgoing
        ]
        return readers, writers

    def accept_clients(self) -> None:
        """
        Accept every connection waiting in the listen queue.
        """
        while True:
            try:
                connection, address = self.listener.accept()
            except BlockingIOError:
                return  # The queue is empty.
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    # One at a time: if more are waiting, select() will say
                    # so at once. (Looping here would never end: with no
                    # descriptor free, accept fails even on an empty queue.)
                    self.refuse_for_lack_of_descriptors()
                    return
                # The client gave up before we got to it, or worse: try
                # again on the next turn of the loop.
                log(f"Could not accept a connection: {e}")
                return
            if connection.fileno() >= FD_SETSIZE:
                log(
                    f"Refused {address}: descriptor {connection.fileno()} is "
                    f"beyond what select() can watch (FD_SETSIZE {FD_SETSIZE})"
                )
                connection.close()
                continue
            try:
                # Send each echo at once (see the module's docstring).
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                # macOS refuses this on a connection the client already reset.
                log(f"Lost {address}: {e}")
                connection.close()
                continue
            connection.setblocking(False)
            self.clients[connection] = Client(address)
            log(f"Connected by {address}")

    def refuse_for_lack_of_descriptors(self) -> None:
        """
        Accept one waiting connection and close it, when C{accept} fails for
        want of a file descriptor.

        Left in the queue, the connection would keep the listener readable
        and C{select} would wake us up for it again at once, forever. Freeing
        the spare descriptor makes room to accept it; then we close it and
        take the spare back. (Twisted's TCP port does the same.)
        """
        os.close(self.spare)
        try:
            connection, address = self.listener.accept()
        except OSError:
            pass  # Whoever was waiting is gone already.
        else:
            log(f"Refused {address}: the server is out of file descriptors")
            connection.close()
        finally:
            self.spare = os.open(os.devnull, os.O_RDONLY)

    def receive(self, connection: socket.socket) -> None:
        """
        Read what a ready client sent, and start sending it back.

        @param connection: A socket that C{select} reported readable.
        """
        client = self.clients[connection]
        try:
            data = connection.recv(self.options.buffer_size)
        except BlockingIOError:
            return  # Nothing to read after all.
        except OSError as e:
            self.disconnect(connection, f"Lost {client.address}: {e}")
            return
        if not data:
            # The client has closed its side. Finish sending back what it
            # sent (a client may half-close and still read), then close.
            client.reading = False
            if not client.outgoing:
                self.disconnect(connection, f"Closed by {client.address}")
            return
        if not self.options.quiet:
            log(f"Received {data!r} from {client.address}")
        client.outgoing += data
        # Most of the time the socket has room: send now rather than wait
        # for select() to tell us so on the next turn.
        self.send(connection)

    def send(self, connection: socket.socket) -> None:
        """
        Send a client as much of its outgoing buffer as it will take now.

        @param connection: A client's socket.
        """
        client = self.clients[connection]
        try:
            # A non-blocking send() takes what fits and says how much.
            sent = connection.send(client.outgoing)
        except BlockingIOError:
            return  # No room now; select() will tell us when there is.
        except OSError as e:
            self.disconnect(connection, f"Lost {client.address}: {e}")
            return
        del client.outgoing[:sent]
        if not client.reading and not client.outgoing:
            self.disconnect(connection, f"Closed by {client.address}")

    def disconnect(self, connection: socket.socket, reason: str) -> None:
        """
        Close a client's connection and forget the client.

        @param connection: The client's socket.
        @param reason: The log line saying why.
        """
        del self.clients[connection]
        connection.close()
        log(reason)

    def close(self) -> None:
        """
        Close every client's socket and the spare descriptor.

        The listening socket belongs to the caller, who closes it.
        """
        for connection in self.clients:
            connection.close()
        self.clients.clear()
        os.close(self.spare)


def serve(listener: socket.socket, options: ServerOptions) -> None:
    """
    Serve clients from one C{select} loop until Ctrl-C.

    @param listener: The listening socket.
    @param options: The server's options.
    """
    server = SelectServer(listener, options)
    try:
        server.serve_forever()
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the C{select} echo server from the command line.

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status.
    """
    return run_server(
        prog="echotwist-reference-selecting",
        description="select() echo server (RFC 862): many clients, one thread.",
        serve=serve,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
