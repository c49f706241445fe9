"""
The listening services of C{twistd echo} and of each of its workers alike.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from echotwist._twisted_private import (
    listening_socket,
    queue_accepts,
    raise_listen_failures,
)
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
        L{SharedSocketEndpoint}); a socket that is not shared empties its
        listen queue in a storm (L{QueuedAcceptsEndpoint}), where a shared
        one leaves what it can't serve yet to the other workers.
    @param summary: the summary to share with other listeners (a new one
        if L{None}).
    @return: one service per endpoint; starting one raises at once if its
        endpoint can't listen.
    """
    if summary is None:
        summary = AcceptErrorSummary(clock)
    services = []
    for endpoint in endpoints:
        if not shared:
            endpoint = QueuedAcceptsEndpoint(endpoint, clock)
        summarized: IStreamServerEndpoint = SummarizedAcceptErrors(endpoint, summary)
        if shared:
            summarized = SharedSocketEndpoint(summarized)
        service = StreamServerEndpointService(summarized, factory)
        raise_listen_failures(service)
        services.append(service)
    return services


@implementer(IStreamServerEndpoint)
class QueuedAcceptsEndpoint:
    """
    An endpoint whose port empties the kernel's listen queue into its own
    whenever it accepts (L{echotwist._twisted_private.QueuedAccepts}), so
    that a storm of connects is not dropped by a full kernel queue while
    the port builds each connection's transport and protocol.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, reactor: IReactorTime):
        """
        @param endpoint: the endpoint.
        @param reactor: what resumes the port's accepting.
        """
        self.endpoint = endpoint
        self.reactor = reactor

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint, then queue its port's accepts.

        @param protocolFactory: the factory to listen with.
        @return: the wrapped endpoint's L{Deferred} port.
        """
        return self.endpoint.listen(protocolFactory).addCallback(self._queue)

    def _queue(self, port: IListeningPort) -> IListeningPort:
        """
        @param port: the port listened on.
        @return: C{port}, accepting through a L{QueuedAccepts} if it is a
            TCP, TLS or UNIX port.
        """
        queue_accepts(port, self.reactor)
        return port


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

    log = Logger()

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint, and log the full address it listens
        on, so that two listeners on one port number are told apart
        (Twisted's own line says only C{EchoFactory starting on 9000}).

        @param protocolFactory: the factory to listen with.
        @return: the port, or a L{ListenerError} failure.
        """
        return (
            maybeDeferred(self.endpoint.listen, protocolFactory)
            .addCallback(self._listening)
            .addErrback(self._name)
        )

    def _listening(self, port: IListeningPort) -> IListeningPort:
        """
        @param port: the port now listening.
        @return: C{port}, once its address is logged.
        """
        self.log.info(
            "--{option} listening on {address}",
            option=self.option,
            address=describe_listener(port),
        )
        return port

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


def describe_listener(port: IListeningPort) -> str:
    """
    Say where a port listens, in full.

    @param port: a listening port.
    @return: C{TCP 127.0.0.1:9000}, C{TCP [::]:9000 (IPv6 and IPv4)} for a
        dual-stack socket, C{UNIX /run/echo.sock}, or the address's repr for
        any other kind.
    """
    address = port.getHost()
    if isinstance(address, IPv4Address):
        return f"TCP {address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        where = f"TCP [{address.host}]:{address.port}"
        if address.host == "::" and _accepts_ipv4(port):
            where += " (IPv6 and IPv4)"
        return where
    if isinstance(address, UNIXAddress):
        name = address.name
        path = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        return f"UNIX {path}"
    return repr(address)


def _accepts_ipv4(port: IListeningPort) -> bool:
    """
    @param port: a port listening on an IPv6 socket.
    @return: whether the socket accepts IPv4-mapped connections too.
    """
    try:
        sock = listening_socket(port)
        return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    except (AttributeError, OSError):
        return False
