"""
Fakes and helpers the unit tests share.
"""

from __future__ import annotations

import socket

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, Logger
from zope.interface import implementer

from echotwist.server.options import Options
from echotwist.server.protocol import Echo, EchoFactory

#: The peer of the connections L{connect} makes.
PEER = IPv4Address("TCP", "127.0.0.1", 57854)


def connect(
    factory: EchoFactory, peer: IPv4Address = PEER
) -> tuple[Echo, StringTransport]:
    """
    Build a protocol from C{factory} and connect it to a L{StringTransport}.

    @param factory: the factory.
    @param peer: the peer's address.
    @return: the protocol and its transport.
    """
    protocol = factory.buildProtocol(peer)
    assert protocol is not None
    transport = StringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    return protocol, transport


def parse(*argv: str) -> Options:
    """
    @param argv: C{twistd echo} options.
    @return: L{Options} parsed from C{argv}.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


class FakePort:
    """
    A listening TCP port with a real (unbound) socket, that records what is
    done to it; like L{twisted.internet.tcp.Port}, it logs through a
    C{_logger} and keeps its socket as C{socket}.
    """

    _logger = Logger()

    def __init__(self, port: int = 0) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.address = IPv4Address("TCP", "127.0.0.1", port)
        self.reading = True
        self.listening = True

    @property
    def log_namespace(self) -> str:
        """
        The namespace the port logs in.
        """
        return self._logger.namespace

    @property
    def log_observer(self) -> ILogObserver:
        """
        Where the port's log events go.
        """
        return self._logger.observer

    def getHost(self) -> IPv4Address:
        return self.address

    def startReading(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def stopListening(self) -> None:
        self.listening = False
        self.socket.close()


@implementer(IOpenSSLContextFactory)
class BareTLSContext:
    """
    A TLS context factory without certificates: enough to start TLS.
    """

    def getContext(self) -> SSL.Context:
        """
        @return: a bare context.
        """
        return SSL.Context(SSL.TLS_METHOD)
