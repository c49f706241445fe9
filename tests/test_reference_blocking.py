"""
Live test of what sets the blocking server apart: one client at a time.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from reference_support import TIMEOUT, connect, recv_exactly, running_server


def test_second_client_waits_for_the_first() -> None:
    """
    While one client is connected, the blocking server does not accept a
    second one: it goes on serving the first after the second's bytes have
    arrived, and accepts the second only once the first has left.

    Nothing is timed: the order is read from the server's log, which it
    writes as it goes.
    """
    with running_server("echotwist.reference.blocking") as server, ExitStack() as stack:
        first = stack.enter_context(connect(server.port))
        first.sendall(b"first")
        assert recv_exactly(first, 5) == b"first"
        second = stack.enter_context(connect(server.port))
        second.sendall(b"second")
        # The server is still serving the first client, after the second's
        # bytes were sent.
        first.sendall(b"again")
        assert recv_exactly(first, 5) == b"again"
        output = server.wait_for_output("Received b'again'")
        assert f"Connected by {second.getsockname()!r}" not in output
        assert "b'second'" not in output
        second.setblocking(False)
        with pytest.raises(BlockingIOError):
            second.recv(6)
        second.settimeout(TIMEOUT)
        closed = f"Closed by {first.getsockname()!r}"
        first.close()
        assert recv_exactly(second, 6) == b"second"
        output = server.wait_for_output("Received b'second'")
        assert output.index(closed) < output.index(
            f"Connected by {second.getsockname()!r}"
        )
