"""
Share a listening socket between processes.

A worker of C{--workers} accepts on a socket its parent made and shares with
the other workers: L{SharedSocketEndpoint} makes stopping it stop accepting
and close this process's descriptor of the socket, leaving the socket itself
(and a UNIX socket's path) to the parent.  (The socket closes, and new
connections are refused, once every process holding it has closed it: the
parent when it stops, each worker when it stops.)
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

from echotwist._twisted_private import listening_socket


@implementer(IListeningPort)
class _SharedPort:
    """
    A listening port whose socket other processes share: stopping it stops
    this process accepting and closes its descriptor of the socket at once
    (not after the drain: a descriptor left open keeps the socket listening
    with nobody accepting).  Stopping the port itself would also remove a
    UNIX socket's path: the other processes' too.
    """

    def __init__(self, port: IListeningPort) -> None:
        self._port = port
        self.closed = False

    def startListening(self) -> None:
        """
        Accept again, unless closed.
        """
        if not self.closed:
            self._port.startReading()  # type: ignore[attr-defined]

    def stopListening(self) -> None:
        """
        Stop accepting, and close this process's descriptor.
        """
        self._port.stopReading()  # type: ignore[attr-defined]
        if not self.closed:
            self.closed = True
            listening_socket(self._port).close()

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
