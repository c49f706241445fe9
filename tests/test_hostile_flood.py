"""
A flood of connections is served, or refused at C{--max-connections}, while
the server keeps answering a separate client.

The test opens L{FLOOD} connections to stay fast; C{benchmarks/flood.py}
opens 10,000 and reports memory per idle connection.
"""

from __future__ import annotations

from contextlib import ExitStack

from sockets import connect, recv_exactly, round_trip
from twistd_support import twistd_echo

#: Connections the test opens (the benchmark opens 10,000).
FLOOD = 2000
LIMIT = 50


def test_flood_all_served() -> None:
    """
    L{FLOOD} connections opened back to back are all accepted and all echo,
    and a separate client is answered every 250 connections.
    """
    with twistd_echo() as server, ExitStack() as stack:
        sockets = []
        for i in range(FLOOD):
            sockets.append(stack.enter_context(connect(server.port)))
            if i % 250 == 0:
                assert round_trip(server.port, b"separate") == b"separate"
        for i, sock in enumerate(sockets):
            sock.sendall(b"%d" % i)
        for i, sock in enumerate(sockets):
            assert recv_exactly(sock, len(b"%d" % i)) == b"%d" % i
        assert round_trip(server.port) == b"ping"


def test_flood_over_limit_closed_at_once() -> None:
    """
    Above C{--max-connections} new connections are closed at once, logged in
    one line (not one per connection), while those under the limit, the
    separate client among them, keep echoing.
    """
    with (
        twistd_echo("--max-connections", str(LIMIT)) as server,
        ExitStack() as stack,
    ):
        separate = stack.enter_context(connect(server.port))
        sockets = [stack.enter_context(connect(server.port)) for _ in range(LIMIT * 4)]
        closed = 0
        for sock in sockets:
            sock.settimeout(5)
            try:
                sock.sendall(b"x")
                reply = sock.recv(1)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            if reply == b"":
                closed += 1
            else:
                assert reply == b"x"
            separate.sendall(b"separate")
            assert recv_exactly(separate, 8) == b"separate"
        assert closed == LIMIT * 3 + 1
        output = server.output()
        assert output.count(f"Connection limit ({LIMIT}) reached") == 1
        assert "Traceback" not in output
        sockets[0].close()
        server.wait_for(r"connections? (?:were|was) refused")
