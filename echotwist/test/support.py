"""
Fakes and helpers the unit tests share.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IHostnameResolver,
    IHostResolution,
    IOpenSSLContextFactory,
    IProtocol,
    IResolutionReceiver,
)
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure
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


@implementer(IHostResolution)
class FinishedResolution:
    """
    A resolution that is over before anyone could cancel it.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """
        Nothing to stop.
        """


@implementer(IHostnameResolver)
class LoopbackResolver:
    """
    A resolver that answers 127.0.0.1 for every name, at once.

    Twisted's own C{SynchronousResolver} does the same, but only from
    Twisted 24.10; the unit tests also run on 24.7.
    """

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        Resolve C{hostName} to 127.0.0.1 (a TCP address).
        """
        resolution = FinishedResolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        resolutionReceiver.addressResolved(IPv4Address("TCP", "127.0.0.1", portNumber))
        resolutionReceiver.resolutionComplete()
        return resolution


class ClosingTransport(StringTransport):
    """
    A L{StringTransport} that, like a real one, tells its protocol the
    connection is lost once it is closed or aborted (once, at once).

    @ivar half_closed: whether L{loseWriteConnection} was called.
    @ivar protocol: the protocol to tell; set it before closing.
    """

    protocol: IProtocol | None = None
    half_closed = False

    def loseConnection(self) -> None:
        """
        Close, and tell the protocol the connection is done.
        """
        super().loseConnection()
        self._lost(ConnectionDone())

    def abortConnection(self) -> None:
        """
        Abort, and tell the protocol the connection is lost.
        """
        super().abortConnection()
        self._lost(ConnectionLost())

    def _lost(self, reason: Exception) -> None:
        """
        Call C{connectionLost} once.
        """
        if self.connected and self.protocol is not None:
            self.connected = False
            self.protocol.connectionLost(Failure(reason))


class HalfClosingTransport(ClosingTransport):
    """
    A L{ClosingTransport} that can also shut its sending side, as TCP and
    UNIX transports can.
    """

    def loseWriteConnection(self) -> None:
        """
        Shut the sending side: the connection stays open until the peer
        closes (L{serverClosed}) or it is aborted.
        """
        self.half_closed = True

    def serverClosed(self) -> None:
        """
        The peer closed its side too: the connection is done.
        """
        self._lost(ConnectionDone())


def proxy_v2_header(
    command: int = 0x1,
    family: int = 0x11,
    addresses: bytes | None = None,
    tlvs: bytes = b"",
    version: int = 0x2,
) -> bytes:
    """
    Build a PROXY protocol v2 header, as HAProxy's C{send-proxy-v2} sends.

    @param command: C{0x1} PROXY, C{0x0} LOCAL.
    @param family: address family and protocol (C{0x11} TCP over IPv4,
        C{0x21} over IPv6, C{0x31} UNIX stream, C{0x00} unspecified).
    @param addresses: the address block; by default C{192.0.2.7:5555} to
        C{10.0.0.1:9000} for IPv4, nothing otherwise.
    @param tlvs: TLVs after the addresses (see L{tlv}).
    @param version: the version nibble (2 in every valid header).
    @return: the header.
    """
    if addresses is None:
        addresses = b""
        if family >> 4 == 0x1:
            addresses = (
                socket.inet_aton("192.0.2.7")
                + socket.inet_aton("10.0.0.1")
                + (5555).to_bytes(2, "big")
                + (9000).to_bytes(2, "big")
            )
    body = addresses + tlvs
    return (
        b"\r\n\r\n\x00\r\nQUIT\n"
        + bytes([version << 4 | command, family])
        + len(body).to_bytes(2, "big")
        + body
    )


def tlv(kind: int, value: bytes) -> bytes:
    """
    @param kind: a PROXY v2 TLV type.
    @param value: its value.
    @return: the TLV's bytes.
    """
    return bytes([kind]) + len(value).to_bytes(2, "big") + value
