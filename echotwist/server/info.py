"""
The info port: C{--info ENDPOINT} answers each connection with one JSON line
describing the connection as the server saw it, then closes it;
C{--info-udp [INTERFACE:]PORT} answers each datagram likewise.

A line holds the C{peer} and C{local} addresses, the C{transport} (C{tcp},
C{tcp6}, C{unix}, C{tls}), the C{client} (the PROXY header's source when a
header named one, else the peer), the C{proxy} header when one came
(L{echotwist.server.proxy}: version, command, source, destination, v2's
TLVs), the C{tls} session over TLS (version, cipher, SNI, ALPN, the client
certificate's subject), the server's C{time} and echotwist's C{version};
nothing else about the server.

Over UDP a reply is never longer than the datagram it answers (no
amplification): a datagram shorter than its answer gets none (it is counted
as dropped).  Send a datagram of L{UDP_REQUEST_SIZE} bytes to be sure of one.
The same per-source rate limit and refused source ports as UDP echo apply
(L{echotwist.server.udp}).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHandshakeListener,
    IReactorTime,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

import echotwist
from echotwist.server.protocol import describe_peer
from echotwist.server.udp import EchoDatagramProtocol, refused_source_port

if TYPE_CHECKING:
    from echotwist.server.proxy import ProxyHeader

#: Seconds an info connection may take (a TLS handshake, mostly) before it
#: is aborted.
INFO_TIMEOUT = 10.0

#: The size of datagram L{echotwist.client.info} sends: enough for any
#: answer about an IPv6 source.
UDP_REQUEST_SIZE = 512


def address_fields(address: IAddress | None) -> dict[str, Any] | None:
    """
    @param address: an address, or L{None}.
    @return: C{{"host", "port"}} for an IP address, C{{"path"}} for a UNIX
        socket's (C{null} when unnamed), C{{"address": repr}} otherwise.
    """
    if address is None:
        return None
    if isinstance(address, IPv4Address | IPv6Address):
        return {"host": address.host, "port": address.port}
    if isinstance(address, UNIXAddress):
        name = address.name
        path = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        return {"path": path or None}
    return {"address": repr(address)}


def transport_kind(transport: ITransport) -> str:
    """
    @param transport: a connected transport.
    @return: C{tls}, C{tcp}, C{tcp6} or C{unix} (or the address's class
        name for anything else).
    """
    if ISSLTransport.providedBy(transport):
        return "tls"
    host = transport.getHost()
    if isinstance(host, IPv4Address):
        return "tcp"
    if isinstance(host, IPv6Address):
        return "tcp6"
    if isinstance(host, UNIXAddress):
        return "unix"
    return type(host).__name__


def _text(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def tls_fields(transport: ITransport) -> dict[str, Any]:
    """
    @param transport: a TLS transport whose handshake is done.
    @return: its TLS version, cipher, the SNI server name and ALPN protocol
        the client sent (or L{None}), and the client certificate's subject
        (or L{None}).
    """
    connection: Any = transport.getHandle()  # type: ignore[attr-defined]
    certificate = connection.get_peer_certificate()
    subject = None
    if certificate is not None:
        subject = certificate.to_cryptography().subject.rfc4514_string()
    try:
        alpn = connection.get_alpn_proto_negotiated()
    except NotImplementedError:
        alpn = None
    return {
        "version": connection.get_protocol_version_name(),
        "cipher": connection.get_cipher_name(),
        "sni": _text(connection.get_servername()),
        "alpn": _text(alpn) or None,
        "client_certificate": subject,
    }


def proxy_fields(header: ProxyHeader) -> dict[str, Any]:
    """
    @param header: a PROXY header.
    @return: its version, command, family, source, destination and TLVs.
    """
    fields: dict[str, Any] = {
        "version": header.version,
        "command": header.command,
        "family": header.family,
        "source": address_fields(header.source),
        "destination": address_fields(header.destination),
    }
    if header.version == 2:
        fields["tlvs"] = header.tlv_fields()
    return fields


def now_text(clock: IReactorTime) -> str:
    """
    @param clock: the reactor.
    @return: its time now, as UTC ISO 8601 text.
    """
    moment = datetime.datetime.fromtimestamp(clock.seconds(), datetime.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def connection_info(
    transport: ITransport, header: ProxyHeader | None, clock: IReactorTime
) -> dict[str, Any]:
    """
    @param transport: a connected transport (its TLS handshake done).
    @param header: the PROXY header it came with, if any.
    @param clock: the reactor.
    @return: the connection as the server saw it (see the module's
        docstring).
    """
    peer = address_fields(transport.getPeer())
    client = peer
    if header is not None and header.source is not None:
        client = address_fields(header.source)
    info: dict[str, Any] = {
        "client": client,
        "peer": peer,
        "local": address_fields(transport.getHost()),
        "transport": transport_kind(transport),
    }
    if header is not None:
        info["proxy"] = proxy_fields(header)
    if info["transport"] == "tls":
        info["tls"] = tls_fields(transport)
    info["time"] = now_text(clock)
    info["version"] = echotwist.__version__
    return info


def json_line(info: dict[str, Any]) -> bytes:
    """
    @param info: what to send.
    @return: it as one line of compact JSON, newline included.
    """
    return json.dumps(info, separators=(",", ":")).encode() + b"\n"


@implementer(IHandshakeListener)
class InfoProtocol(Protocol, TimeoutMixin):
    """
    Answer with the connection's description (over TLS, once the handshake
    is done), then close.

    @ivar proxy_header: the PROXY header the connection came with, set
        before it is connected, or L{None}.
    """

    factory: InfoFactory
    log = Logger()
    proxy_header: ProxyHeader | None = None

    def connectionMade(self) -> None:
        """
        Answer now, or once TLS is up; give up after L{INFO_TIMEOUT}.
        """
        self.setTimeout(self.factory.timeout)
        if not ISSLTransport.providedBy(self.transport):
            self._answer()

    def handshakeCompleted(self) -> None:
        """
        TLS is up: answer.
        """
        self._answer()

    def dataReceived(self, data: bytes) -> None:
        """
        Whatever the client sends is ignored.
        """

    def callLater(self, period: float, func: Any) -> IDelayedCall:
        """
        Schedule the timeout on the factory's clock.
        """
        return self.factory.clock.callLater(period, func)

    def timeoutConnection(self) -> None:
        """
        No answer in time (a TLS handshake that never finished): abort.
        """
        self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Stop the timer.
        """
        self.setTimeout(None)

    def _answer(self) -> None:
        """
        Send the description and close.
        """
        transport = self.transport
        assert transport is not None
        factory = self.factory
        info = connection_info(transport, self.proxy_header, factory.clock)
        factory.answered_total += 1
        header = self.proxy_header
        peer = (
            describe_peer(transport.getPeer()) if header is None else header.describe()
        )
        self.log.info("Info for {peer}", peer=peer)
        transport.write(json_line(info))
        transport.loseConnection()


class InfoFactory(Factory):
    """
    Build L{InfoProtocol}s.

    @ivar clock: the reactor.
    @ivar timeout: seconds an info connection may take.
    @ivar answered_total: connections answered since start.
    """

    protocol = InfoProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(self, clock: IReactorTime, timeout: float = INFO_TIMEOUT) -> None:
        self.clock = clock
        self.timeout = timeout
        self.answered_total = 0


class InfoDatagramProtocol(EchoDatagramProtocol):
    """
    Answer each datagram with one JSON line describing its source, within
    UDP echo's limits, and never with more bytes than it carried.

    @ivar dropped_short: datagrams shorter than their answer, not answered.
    """

    def __init__(self, clock: IReactorTime, **limits: Any) -> None:
        super().__init__(clock, **limits)
        self.dropped_short = 0

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """
        Answer C{datagram}'s source unless its port is refused, its source is
        over its rate, or the answer would be longer than C{datagram}.

        @param datagram: the request (its content is ignored).
        @param addr: the sender's C{(host, port)}.
        """
        host, port = addr[0], addr[1]
        if refused_source_port(port):
            self._drop("refused_port")
            return
        answer = self.answer(host, port)
        if len(answer) > len(datagram):
            self._drop("short")
            return
        self._reply(answer, addr)

    def answer(self, host: str, port: int) -> bytes:
        """
        @param host: the datagram's source address.
        @param port: its source port.
        @return: the answer: one JSON line.
        """
        transport = self.transport
        local = None if transport is None else address_fields(transport.getHost())
        info = {
            "client": {"host": host, "port": port},
            "peer": {"host": host, "port": port},
            "local": local,
            "transport": "udp",
            "time": now_text(self.clock),
            "version": echotwist.__version__,
        }
        return json_line(info)
