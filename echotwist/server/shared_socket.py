"""
Share a listening socket between processes.

A worker of C{--workers} accepts on a socket its parent made and shares with
the other workers: L{SharedSocketEndpoint} makes stopping it stop accepting
only, leaving the socket (and a UNIX socket's path) to the parent.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from zope.interface import implementer


@implementer(IListeningPort)
class _SharedPort:
    """
    A listening port whose socket other processes share: stopping it stops
    this process accepting, and the socket closes when the process exits.
    (Stopping the port itself would close the socket and, for a UNIX
    socket, remove its path: the other processes' too.)
    """

    def __init__(self, port: IListeningPort) -> None:
        self._port = port

    def startListening(self) -> None:
        """
        Accept again.
        """
        self._port.startReading()  # type: ignore[attr-defined]

    def stopListening(self) -> None:
        """
        Stop accepting.
        """
        self._port.stopReading()  # type: ignore[attr-defined]

    def getHost(self) -> IAddress:
        """
        @return: the address listened on.
        """
        return self._port.getHost()


@implementer(IStreamServerEndpoint)
class SharedSocketEndpoint:
    """
    An endpoint for a listening socket shared with other processes (such as
    an L{twisted.internet.endpoints.AdoptedStreamServerEndpoint}): its port
    only ever stops accepting, never closes the socket.
    """

    def __init__(self, endpoint: IStreamServerEndpoint) -> None:
        self.endpoint = endpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint.

        @param protocolFactory: the factory to listen with.
        @return: the port, whose C{stopListening} only stops accepting.
        """
        return self.endpoint.listen(protocolFactory).addCallback(_SharedPort)
