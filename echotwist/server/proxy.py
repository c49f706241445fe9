"""
The PROXY protocol (HAProxy's, v1 and v2) in front of any stream port:
C{--port haproxy:tcp:9000}, C{haproxy:tcp6:...}, C{haproxy:unix:...},
C{haproxy:ssl:...}.

A proxy (HAProxy's C{send-proxy} / C{send-proxy-v2}) opens each connection
with a header naming the client it serves.  L{ProxyHeaderProtocol} reads
that header and only then hands the connection to the protocol it serves
(the echo, or the info port's), which so names the original client from its
very first log line.  Twisted's parsers
(L{twisted.protocols.haproxy}, through L{echotwist._twisted_private}) read
the header's fields; this module frames it, because Twisted's own wrapper
closes a connection whose first read is shorter than a header's start, waits
for a header forever, and hands the connection over before the header, so
that the first log line would name the proxy.

The header is required: a connection is closed, with one log line (see
L{RejectionLog}), if

  - its peer is not in C{--proxy-from} (a UNIX socket's peer is not checked:
    its file's permissions say who may connect);
  - its first bytes are not a PROXY header, or the header is malformed or
    longer than L{MAX_V1_HEADER} or L{MAX_V2_HEADER};
  - the header is not complete within C{--proxy-timeout} seconds, or the
    peer closes first.

Once the header is read, a plain TCP or UNIX connection is given to the
served protocol itself (L{replace_protocol}): the reactor then calls the
echo directly, and its fast path applies as on a plain port.

Behind TLS (C{haproxy:ssl:...}) the header comes first, in the clear, and
TLS starts after it, which is the order HAProxy sends them in (C{ssl} and
C{send-proxy} on a C{server} line): see L{HeaderBeforeTLS}.  (Twisted's own
C{haproxy:ssl:} endpoint reads the header inside TLS instead, which no proxy
sends.)
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IListeningPort,
    IOpenSSLContextFactory,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from zope.interface import implementer

from echotwist._twisted_private import (
    PROXY_V2_SIGNATURE,
    ProxyHeaderError,
    can_replace_protocol,
    parse_proxy_v1,
    parse_proxy_v2,
    replace_protocol,
)
from echotwist.server.protocol import describe_peer

#: Seconds a connection gets to send its whole header, by default.
DEFAULT_HEADER_TIMEOUT = 5.0

#: The peers allowed to send headers unless C{--proxy-from} says otherwise:
#: this machine only.
DEFAULT_PROXY_FROM = ("127.0.0.0/8", "::1/128")

#: The longest v1 header, its CRLF included (the specification's limit).
MAX_V1_HEADER = 107

#: The longest v2 header echotwist reads: its 16 fixed bytes, the largest
#: address block (two UNIX paths, 216 bytes) and room for TLVs.  HAProxy's
#: own TLVs (authority, ALPN, unique id, SSL details) fit easily.
MAX_V2_HEADER = 4096

_V1_PREFIX = b"PROXY "

#: A v1 line: the specification's grammar, single spaces, nothing more.
_V1_LINE = re.compile(
    rb"PROXY (?:UNKNOWN(?: [\x20-\x7e]*)?"
    rb"|(TCP4|TCP6) ([0-9A-Fa-f.:]+) ([0-9A-Fa-f.:]+) (\d{1,5}) (\d{1,5}))"
)

#: Length of the v2 address block for each address family (high nibble).
_V2_ADDRESS_SIZES = {0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216}
_V2_FAMILIES = {0x0: "unspec", 0x1: "inet", 0x2: "inet6", 0x3: "unix"}
_V2_PROTOCOLS = {0x0: "unspec", 0x1: "stream", 0x2: "dgram"}

#: The v2 TLV types this module names (the specification's, section 2.2).
TLV_NAMES = {
    0x01: "alpn",
    0x02: "authority",
    0x03: "crc32c",
    0x04: "noop",
    0x05: "unique_id",
    0x20: "ssl",
    0x30: "netns",
}
#: The sub-TLVs of an C{ssl} TLV.
SSL_TLV_NAMES = {
    0x21: "version",
    0x22: "cn",
    0x23: "cipher",
    0x24: "sig_alg",
    0x25: "key_alg",
}


class HeaderError(Exception):
    """
    What is wrong with a connection's PROXY header, as its log line says.
    """


@dataclass(frozen=True)
class ProxyHeader:
    """
    A PROXY header as read.

    @ivar version: 1 or 2.
    @ivar command: C{PROXY}, or v2's C{LOCAL} (the proxy's own connection,
        a health check) or v1's C{UNKNOWN}.
    @ivar family: v1's protocol (C{TCP4}, C{TCP6}, C{UNKNOWN}) or v2's
        family and protocol (C{inet/stream}, ...).
    @ivar source: the client the proxy serves, or L{None} if the header
        names none (C{LOCAL}, C{UNKNOWN}).
    @ivar destination: the address the client connected to, or L{None}.
    @ivar proxy: the peer that sent the header (the proxy itself).
    @ivar tlvs: v2's type-length-value fields, in order.
    """

    version: int
    command: str
    family: str
    source: IAddress | None
    destination: IAddress | None
    proxy: IAddress
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def describe(self) -> str:
        """
        @return: the connection as log lines name it: the client and the
            proxy it came through, e.g. C{('127.0.0.5', 40000) via PROXY v2
            from ('127.0.0.1', 51000)}; the proxy alone when the header
            names no client.
        """
        proxy = describe_peer(self.proxy)
        if self.source is None:
            return f"{proxy} (PROXY v{self.version} {self.command}: no client named)"
        return f"{describe_peer(self.source)} via PROXY v{self.version} from {proxy}"

    def tlv_fields(self) -> dict[str, Any]:
        """
        @return: the TLVs by name (see L{TLV_NAMES}; unknown types as
            C{tlv_0xNN}), text as text, binary values in hex, the C{ssl}
            TLV as its client flags, verify result and sub-TLVs.
        """
        fields: dict[str, Any] = {}
        for kind, value in self.tlvs:
            name = TLV_NAMES.get(kind, f"tlv_0x{kind:02x}")
            if name == "noop":
                continue
            if name == "ssl":
                fields[name] = _ssl_tlv(value)
            elif name == "crc32c":
                fields[name] = value.hex()
            else:
                fields[name] = value.decode("utf-8", "replace")
        return fields


def _ssl_tlv(value: bytes) -> dict[str, Any]:
    """
    @param value: a v2 C{PP2_TYPE_SSL} value: client flags (1 byte), verify
        result (4 bytes), then sub-TLVs.
    @return: its fields.
    """
    result: dict[str, Any] = {}
    if len(value) < 5:
        result["malformed"] = value.hex()
        return result
    result["client"] = value[0]
    result["verify"] = int.from_bytes(value[1:5], "big")
    try:
        subs = _tlvs(value[5:])
    except HeaderError:
        result["malformed"] = value[5:].hex()
        return result
    for kind, sub in subs:
        result[SSL_TLV_NAMES.get(kind, f"tlv_0x{kind:02x}")] = sub.decode(
            "utf-8", "replace"
        )
    return result


def _tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """
    @param data: a sequence of TLVs (type: 1 byte, length: 2, value).
    @return: each C{(type, value)}.
    @raise HeaderError: if one overruns C{data}.
    """
    found = []
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise HeaderError("truncated PROXY v2 TLV")
        kind = data[offset]
        size = int.from_bytes(data[offset + 1 : offset + 3], "big")
        end = offset + 3 + size
        if end > len(data):
            raise HeaderError("PROXY v2 TLV longer than the header")
        found.append((kind, data[offset + 3 : end]))
        offset = end
    return found


def header_size(buffer: bytes) -> tuple[int, int] | None:
    """
    Find a whole PROXY header at the start of C{buffer}.

    @param buffer: the bytes a connection has sent so far.
    @return: C{(version, size)} once the whole header is there, or L{None}
        while C{buffer} could still be the start of one.
    @raise HeaderError: if C{buffer} does not start with a PROXY header, or
        the header is longer than allowed.
    """
    if not buffer:
        return None
    if buffer[:12] == PROXY_V2_SIGNATURE[: len(buffer)]:
        if len(buffer) < 16:
            return None
        if buffer[12] >> 4 != 2:
            raise HeaderError(f"PROXY v2 signature with version {buffer[12] >> 4}")
        size = 16 + int.from_bytes(buffer[14:16], "big")
        if size > MAX_V2_HEADER:
            raise HeaderError(
                f"PROXY v2 header of {size} bytes (at most {MAX_V2_HEADER} read)"
            )
        return (2, size) if len(buffer) >= size else None
    if buffer[:6] == _V1_PREFIX[: len(buffer)]:
        end = buffer.find(b"\r\n", 0, MAX_V1_HEADER)
        if end >= 0:
            return 1, end + 2
        if len(buffer) >= MAX_V1_HEADER:
            raise HeaderError(f"PROXY v1 header longer than {MAX_V1_HEADER} bytes")
        return None
    raise HeaderError(f"no PROXY header (first bytes {buffer[:16]!r})")


def parse_header(version: int, header: bytes, proxy: IAddress) -> ProxyHeader:
    """
    Read a whole header L{header_size} found.

    @param version: 1 or 2.
    @param header: the header's bytes.
    @param proxy: the peer that sent it.
    @return: what it says.
    @raise HeaderError: if it is malformed.
    """
    try:
        if version == 1:
            return _parse_v1(header[:-2], proxy)
        return _parse_v2(header, proxy)
    except (ProxyHeaderError, ValueError, KeyError, IndexError, struct.error) as e:
        name = type(e).__name__
        raise HeaderError(f"malformed PROXY v{version} header ({name})") from None


def _parse_v1(line: bytes, proxy: IAddress) -> ProxyHeader:
    """
    @param line: a v1 header without its CRLF.
    @param proxy: the peer that sent it.
    @return: what it says, its addresses and ports checked (Twisted's
        parser takes any text for an address and extra fields after it).
    """
    match = _V1_LINE.fullmatch(line)
    if match is None:
        raise HeaderError(f"malformed PROXY v1 header {line[:MAX_V1_HEADER]!r}")
    family = match.group(1)
    if family is None:
        return ProxyHeader(1, "UNKNOWN", "UNKNOWN", None, None, proxy)
    wanted = 4 if family == b"TCP4" else 6
    for host in match.group(2, 3):
        if ipaddress.ip_address(host.decode("ascii")).version != wanted:
            raise HeaderError(f"PROXY v1 {family.decode()} with address {host!r}")
    for port in match.group(4, 5):
        if int(port) > 65535:
            raise HeaderError(f"PROXY v1 port {port.decode()}")
    source, destination = parse_proxy_v1(line)
    return ProxyHeader(
        1, "PROXY", family.decode(), _short(source), _short(destination), proxy
    )


def _parse_v2(header: bytes, proxy: IAddress) -> ProxyHeader:
    """
    @param header: a whole v2 header.
    @param proxy: the peer that sent it.
    @return: what it says, with its TLVs.
    """
    source, destination = parse_proxy_v2(header)
    command = "PROXY" if header[12] & 0x0F == 1 else "LOCAL"
    family_byte = header[13]
    family = _V2_FAMILIES.get(family_byte >> 4)
    protocol = _V2_PROTOCOLS.get(family_byte & 0x0F)
    if family is None or protocol is None:
        if command == "PROXY":
            raise HeaderError(f"PROXY v2 family/protocol 0x{family_byte:02x}")
        family, protocol = "unspec", "unspec"
    start = 16 + _V2_ADDRESS_SIZES.get(family_byte >> 4, 0)
    tlvs = tuple(_tlvs(header[start:]))
    return ProxyHeader(
        2,
        command,
        f"{family}/{protocol}",
        _short(source),
        _short(destination),
        proxy,
        tlvs,
    )


def _short(address: IAddress | None) -> IAddress | None:
    """
    @param address: an address a header named.
    @return: the same, an IPv6 one written as sockets write it
        (C{2001:db8::7}, where Twisted's v2 parser writes every group).
    """
    if isinstance(address, IPv6Address):
        host = str(ipaddress.ip_address(address.host))
        return IPv6Address(address.type, host, address.port)
    return address


def set_proxy_header(protocol: IProtocol, header: ProxyHeader) -> None:
    """
    Tell the protocol a PROXY port serves which header its connection came
    with, before it is connected: it names its peer from it.

    @param protocol: what the served factory built, perhaps wrapped (by TLS:
        the wrapped protocol is told).
    @param header: the header.
    """
    while isinstance(protocol, ProtocolWrapper):
        protocol = protocol.wrappedProtocol
    if hasattr(protocol, "proxy_header"):
        protocol.proxy_header = header


def proxy_header_of(protocol: object) -> ProxyHeader | None:
    """
    @param protocol: a protocol a PROXY port served, or any other.
    @return: the header its connection came with, if any.
    """
    header = getattr(protocol, "proxy_header", None)
    return header if isinstance(header, ProxyHeader) else None


#: Rejection lines logged one by one in each interval; more are counted.
REJECTIONS_LOGGED = 10

#: Seconds between counts of rejections not logged one by one.
REJECTION_INTERVAL = 10.0


class RejectionLog:
    """
    Log the connections PROXY ports close, without letting a flood flood the
    log: the first L{REJECTIONS_LOGGED} in each L{REJECTION_INTERVAL} get a
    line each, the rest a count at the end of the interval.

    @ivar total: connections closed since start.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        logged: int = REJECTIONS_LOGGED,
        interval: float = REJECTION_INTERVAL,
    ) -> None:
        self.total = 0
        self._logged_max = logged
        self._interval = interval
        self._logged = 0
        self._unlogged = 0
        self._reporter = LoopingCall(self._report)
        self._reporter.clock = clock

    def reject(self, peer: IAddress, reason: str) -> None:
        """
        Log (or count) one connection closed.

        @param peer: its peer, as the socket says.
        @param reason: why it was closed.
        """
        self.total += 1
        if not self._reporter.running:
            self._reporter.start(self._interval, now=False)
        if self._logged < self._logged_max:
            self._logged += 1
            self.log.warn(
                "Closed {peer} on a PROXY port: {reason}",
                peer=describe_peer(peer),
                reason=reason,
            )
            return
        self._unlogged += 1

    def _report(self) -> None:
        """
        Log the count of closes not logged in the interval just over, or
        stop once an interval had none.
        """
        logged, unlogged = self._logged, self._unlogged
        self._logged = self._unlogged = 0
        if unlogged:
            self.log.warn(
                "Closed {count} more connections on PROXY ports in the last "
                "{interval} s without a line each ({total} since start)",
                count=unlogged,
                interval=self._interval,
                total=self.total,
            )
        elif not logged:
            self._reporter.stop()

    def stop(self) -> None:
        """
        Stop counting (and log what was not logged).
        """
        if self._reporter.running:
            self._report()
            if self._reporter.running:
                self._reporter.stop()


@dataclass
class ProxySettings:
    """
    What every PROXY port of a process shares.

    @ivar clock: the reactor, for the header timeout and the log's counts.
    @ivar trusted: the networks whose peers may send headers.
    @ivar timeout: seconds a connection gets to send its whole header.
    @ivar rejections: where closed connections are logged.
    """

    clock: IReactorTime
    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
    timeout: float = DEFAULT_HEADER_TIMEOUT
    rejections: RejectionLog | None = None

    def __post_init__(self) -> None:
        if self.rejections is None:
            self.rejections = RejectionLog(self.clock)

    def trusts(self, peer: IAddress) -> bool:
        """
        @param peer: a connection's peer, as the socket says.
        @return: whether it may send a header: an IP address in one of the
            C{trusted} networks (an IPv4-mapped IPv6 address counts as its
            IPv4 address), or a UNIX socket's peer.
        """
        if isinstance(peer, UNIXAddress):
            return True
        if not isinstance(peer, IPv4Address | IPv6Address):
            return False
        try:
            address = ipaddress.ip_address(peer.host.split("%", 1)[0])
        except ValueError:
            return False
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            candidates.append(address.ipv4_mapped)
        return any(a in network for a in candidates for network in self.trusted)

    def wrap(self, factory: IProtocolFactory) -> ProxyFactory:
        """
        @param factory: the factory to serve once a header is read.
        @return: a factory that reads the header first.
        """
        return ProxyFactory(factory, self)


def parse_networks(
    values: Iterable[str],
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """
    @param values: CIDR networks (C{10.0.0.0/8}) or single addresses.
    @return: the networks.
    @raise ValueError: naming the first that is not one.
    """
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network (CIDR) or address") from None
    return networks


@implementer(IHalfCloseableProtocol)
class ProxyHeaderProtocol(Protocol):
    """
    Read a connection's PROXY header, then hand the connection to what the
    served factory builds for the client it names.

    Where the connection can't be handed over (a transport other than
    Twisted's TCP or UNIX connection, such as a test's), this protocol stays
    in between and passes everything on.

    @ivar header: the header, once read.
    """

    def __init__(self, factory: ProxyFactory) -> None:
        self.factory = factory
        self.header: ProxyHeader | None = None
        self._buffer = b""
        self._timer: IDelayedCall | None = None
        self._inner: IProtocol | None = None
        self._closed = False

    def connectionMade(self) -> None:
        """
        Close the connection at once if its peer may not send headers, else
        give it C{timeout} seconds to send one.
        """
        transport = self.transport
        assert transport is not None
        settings = self.factory.settings
        if not settings.trusts(transport.getPeer()):
            self._reject("its address is not in --proxy-from")
            return
        self._timer = settings.clock.callLater(settings.timeout, self._too_slow)

    def dataReceived(self, data: bytes) -> None:
        """
        Gather the header; pass on anything after it.

        @param data: the next bytes from the peer.
        """
        if self._inner is not None:
            self._inner.dataReceived(data)
            return
        if self._closed:
            return
        self._buffer += data
        transport = self.transport
        assert transport is not None
        try:
            found = header_size(self._buffer)
            if found is None:
                return
            version, size = found
            header = parse_header(version, self._buffer[:size], transport.getPeer())
        except HeaderError as e:
            self._reject(str(e))
            return
        rest = self._buffer[size:]
        self._buffer = b""
        self._cancel_timer()
        self._hand_over(header, rest)

    def _hand_over(self, header: ProxyHeader, rest: bytes) -> None:
        """
        Connect what the served factory builds for the header's client.

        @param header: the header read.
        @param rest: bytes that came after it.
        """
        self.header = header
        transport = self.transport
        assert transport is not None
        address = header.source if header.source is not None else header.proxy
        inner = self.factory.wrappedFactory.buildProtocol(address)
        if inner is None:
            self._closed = True
            transport.loseConnection()
            return
        set_proxy_header(inner, header)
        if can_replace_protocol(transport, self):
            replace_protocol(transport, inner)  # type: ignore[arg-type]
        else:
            self._inner = inner
        inner.makeConnection(transport)
        # A protocol that closed at once (a refused echo) reads no more, as
        # a closing TCP connection delivers no more.
        if rest and not getattr(transport, "disconnecting", False):
            inner.dataReceived(rest)

    def readConnectionLost(self) -> None:
        """
        The peer shut its sending side: passed on once the header is read,
        else the connection is closed.
        """
        if self._inner is not None:
            half = IHalfCloseableProtocol(self._inner, None)
            if half is not None:
                half.readConnectionLost()
            else:
                self.transport.loseConnection()
            return
        self._reject(self._incomplete("shut its sending side"))

    def writeConnectionLost(self) -> None:
        """
        Our sending side was shut: passed on once the header is read.
        """
        half = IHalfCloseableProtocol(self._inner, None)
        if half is not None:
            half.writeConnectionLost()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Pass the loss on, or log a connection that ended before its header.

        @param reason: why it ended.
        """
        self._cancel_timer()
        if self._inner is not None:
            self._inner.connectionLost(reason)
            return
        if not self._closed and self.header is None:
            self._closed = True
            self._log(self._incomplete("closed"))

    def _incomplete(self, what: str) -> str:
        """
        @return: why a connection that ended before its header did, for the
            log line.
        """
        if not self._buffer:
            return f"peer {what} before sending a PROXY header"
        return f"peer {what} after {len(self._buffer)} bytes of a PROXY header"

    def _too_slow(self) -> None:
        """
        The header did not come in time: close.
        """
        self._timer = None
        received = f"{len(self._buffer)} bytes" if self._buffer else "nothing"
        timeout = self.factory.settings.timeout
        self._reject(f"no complete PROXY header within {timeout:g} s ({received})")

    def _reject(self, reason: str) -> None:
        """
        Log why, and close the connection.

        @param reason: why, for the log line.
        """
        self._cancel_timer()
        if self._closed:
            return
        self._closed = True
        self._log(reason)
        self._buffer = b""
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _log(self, reason: str) -> None:
        """
        @param reason: why the connection is over, for the log line.
        """
        rejections = self.factory.settings.rejections
        assert rejections is not None
        self.factory.rejected_total += 1
        served = self.factory.wrappedFactory
        if hasattr(served, "proxy_rejected_total"):
            served.proxy_rejected_total += 1
        rejections.reject(self.transport.getPeer(), reason)  # type: ignore[union-attr]

    def _cancel_timer(self) -> None:
        """
        Stop the header timer, if it runs.
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None


class ProxyFactory(Factory):
    """
    Serve C{wrappedFactory} on connections that start with a PROXY header.

    @ivar wrappedFactory: the factory served once a header is read.
    @ivar settings: the trusted networks, timeout and rejection log.
    @ivar rejected_total: connections closed for their header (or their
        peer).
    """

    noisy = False

    def __init__(self, wrappedFactory: IProtocolFactory, settings: ProxySettings):
        self.wrappedFactory = wrappedFactory
        self.settings = settings
        self.rejected_total = 0

    def logPrefix(self) -> str:
        """
        @return: the served factory's log prefix, marked C{(PROXY)}, as
            Twisted's own PROXY wrapper marks it (so a port logs
            C{EchoFactory (PROXY) starting on 9000}).
        """
        inner = getattr(self.wrappedFactory, "logPrefix", None)
        prefix = inner() if inner is not None else type(self.wrappedFactory).__name__
        return f"{prefix} (PROXY)"

    def doStart(self) -> None:
        """
        Start the served factory too.
        """
        super().doStart()
        self.wrappedFactory.doStart()

    def doStop(self) -> None:
        """
        Stop the served factory too.
        """
        self.wrappedFactory.doStop()
        super().doStop()

    def buildProtocol(self, addr: IAddress | None) -> ProxyHeaderProtocol:
        """
        @param addr: the peer (the proxy).
        @return: a protocol that waits for the header.
        """
        return ProxyHeaderProtocol(self)


@implementer(IStreamServerEndpoint)
class ProxyEndpoint:
    """
    A server endpoint whose connections start with a PROXY header.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, settings: ProxySettings):
        """
        @param endpoint: the endpoint listened on.
        @param settings: the PROXY settings of the process.
        """
        self.endpoint = endpoint
        self.settings = settings

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        @param protocolFactory: the factory served after each header.
        @return: what the wrapped endpoint's C{listen} returns.
        """
        return self.endpoint.listen(self.settings.wrap(protocolFactory))


class HeaderBeforeTLS:
    """
    A reactor for Twisted's C{ssl:} endpoint that listens for the PROXY
    header first, in the clear, and starts TLS after it (HAProxy's order),
    rather than the other way round.

    The C{ssl:} endpoint calls its reactor's C{listenSSL}; Twisted's
    reactors listen on TCP with a
    L{twisted.protocols.tls.TLSMemoryBIOFactory} round the factory.
    This one puts the PROXY reader round that, so that after the header the
    connection goes to TLS and TLS to the served protocol.  Everything else
    is the real reactor's.
    """

    def __init__(self, reactor: Any, settings: ProxySettings) -> None:
        """
        @param reactor: the real reactor.
        @param settings: the PROXY settings of the process.
        """
        self._reactor = reactor
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenSSL(
        self,
        port: int,
        factory: IProtocolFactory,
        contextFactory: IOpenSSLContextFactory,
        backlog: int = 50,
        interface: str = "",
    ) -> IListeningPort:
        """
        Listen on TCP: PROXY header first, then TLS, then C{factory}.

        @see: L{twisted.internet.interfaces.IReactorSSL.listenSSL}
        """
        # Imported here, not at the top: twisted.protocols.tls needs pyOpenSSL
        # (the tls extra), and the service must start without it.
        from twisted.protocols.tls import TLSMemoryBIOFactory

        tls = TLSMemoryBIOFactory(contextFactory, False, factory)
        listening: IListeningPort = self._reactor.listenTCP(
            port, self._settings.wrap(tls), backlog, interface
        )
        return listening
