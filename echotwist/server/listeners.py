"""
The listening services of C{twistd echo} and of each of its workers alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from echotwist._twisted_private import raise_listen_failures
from echotwist.server.accept_errors import AcceptErrorSummary, SummarizedAcceptErrors
from echotwist.server.endpoints import ListenerError, failure_reason
from echotwist.server.shared_socket import SharedSocketEndpoint


def listeners(
    endpoints: Iterable[IStreamServerEndpoint],
    factory: IProtocolFactory,
    clock: IReactorTime,
    shared: bool = False,
    summary: AcceptErrorSummary | None = None,
) -> list[StreamServerEndpointService]:
    """
    The services that serve C{factory} on C{endpoints}, their accept errors
    summed up by one L{AcceptErrorSummary}.

    @param endpoints: the endpoints to listen on.
    @param factory: the factory to serve.
    @param clock: the reactor, for the summary's counts.
    @param shared: whether the sockets are shared with other processes (a
        worker's): stopping then only stops accepting (see
        L{SharedSocketEndpoint}).
    @param summary: the summary to share with other listeners (a new one
        if L{None}).
    @return: one service per endpoint; starting one raises at once if its
        endpoint can't listen.
    """
    if summary is None:
        summary = AcceptErrorSummary(clock)
    services = []
    for endpoint in endpoints:
        summarized: IStreamServerEndpoint = SummarizedAcceptErrors(endpoint, summary)
        if shared:
            summarized = SharedSocketEndpoint(summarized)
        service = StreamServerEndpointService(summarized, factory)
        raise_listen_failures(service)
        services.append(service)
    return services


@implementer(IStreamServerEndpoint)
class NamedEndpoint:
    """
    An endpoint named by the option and value it came from: whatever its
    C{listen} fails with becomes a L{ListenerError} naming them.
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, option: str, description: str
    ) -> None:
        """
        @param endpoint: the endpoint.
        @param option: the option, without its dashes (C{port}, C{metrics}).
        @param description: the option's value.
        """
        self.endpoint = endpoint
        self.option = option
        self.description = description

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint.

        @param protocolFactory: the factory to listen with.
        @return: the port, or a L{ListenerError} failure.
        """
        return maybeDeferred(self.endpoint.listen, protocolFactory).addErrback(
            self._name
        )

    def _name(self, failure: Failure) -> Failure:
        """
        @param failure: why listening failed.
        @return: a L{ListenerError} failure naming the option and the reason.
        """
        error = failure.value
        if not isinstance(error, ListenerError):
            assert error is not None
            error = ListenerError(self.option, self.description, failure_reason(error))
        return Failure(error)
