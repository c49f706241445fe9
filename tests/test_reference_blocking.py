"""
Live test of what sets the blocking server apart: one client at a time.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from reference_support import TIMEOUT, connect, recv_exactly, running_server


def test_second_client_waits_for_the_first() -> None:
    """
    While one client is connected, the blocking server does not read from a
    second one; the second is served as soon as the first leaves.

    The half-second wait only gives the server a chance to answer wrongly;
    nothing is timed.
    """
    with running_server("echotwist.reference.blocking") as server, ExitStack() as stack:
        first = stack.enter_context(connect(server.port))
        first.sendall(b"first")
        assert recv_exactly(first, 5) == b"first"
        second = stack.enter_context(connect(server.port))
        second.sendall(b"second")
        second.settimeout(0.5)
        with pytest.raises(TimeoutError):
            second.recv(6)
        first.close()
        second.settimeout(TIMEOUT)
        assert recv_exactly(second, 6) == b"second"
