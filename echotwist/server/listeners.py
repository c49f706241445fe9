"""
The listening services of C{twistd echo} and of each of its workers alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.interfaces import (
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)

from echotwist._twisted_private import raise_listen_failures
from echotwist.server.accept_errors import AcceptErrorSummary, SummarizedAcceptErrors
from echotwist.server.shared_socket import SharedSocketEndpoint


def listeners(
    endpoints: Iterable[IStreamServerEndpoint],
    factory: IProtocolFactory,
    clock: IReactorTime,
    shared: bool = False,
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
    @return: one service per endpoint; starting one raises at once if its
        endpoint can't listen.
    """
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
