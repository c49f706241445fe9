"""
Tests for L{echotwist.server.listeners}.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import fail
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.accept_errors import SummarizedAcceptErrors
from echotwist.server.listeners import listeners
from echotwist.server.shared_socket import SharedSocketEndpoint

CLOSED = "EMFILE recovery: Closed socket from {address}"
RELEASE = "EMFILE encountered; releasing reserved file descriptor."
RESERVE = "Re-reserving EMFILE recovery file descriptor."


class ListenersTests(SynchronousTestCase):
    """
    Tests for L{listeners}.
    """

    def test_summarized(self) -> None:
        """
        Each endpoint gets a service serving the factory, its accept errors
        going to one summary shared by all.
        """
        factory = Factory()
        reactor = MemoryReactor()
        services = listeners(
            [TCP4ServerEndpoint(reactor, 0), TCP4ServerEndpoint(reactor, 1)],
            factory,
            Clock(),
        )
        endpoints = [cast(SummarizedAcceptErrors, s.endpoint) for s in services]
        self.assertEqual([type(e) for e in endpoints], [SummarizedAcceptErrors] * 2)
        self.assertIs(endpoints[0].summary, endpoints[1].summary)
        self.assertEqual([s.factory for s in services], [factory] * 2)

    def test_shared(self) -> None:
        """
        Shared sockets only ever stop accepting, their accept errors summed
        up all the same.
        """
        [service] = listeners(
            [TCP4ServerEndpoint(MemoryReactor(), 0)], Factory(), Clock(), shared=True
        )
        endpoint = service.endpoint
        assert isinstance(endpoint, SharedSocketEndpoint)
        self.assertIsInstance(endpoint.endpoint, SummarizedAcceptErrors)

    def test_failureRaised(self) -> None:
        """
        A service whose endpoint can't listen raises as it starts, so that
        the process can say so and exit, rather than only logging it.
        """

        class Taken:
            def listen(self, factory: object) -> object:
                return fail(CannotListenError("", 9000, OSError("in use")))

        [service] = listeners([Taken()], Factory(), Clock())  # type: ignore[list-item]
        self.assertRaises(CannotListenError, service.privilegedStartService)
