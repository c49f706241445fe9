"""
Tests for L{echotwist.server.proxy}: PROXY headers (v1 and v2) read in
front of the echo protocol, through L{StringTransport}s, and the hand-over
to the echo's fast path on a real connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.tcp import Connection
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogEvent, capturedLogs, formatEvent
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.counts import take_snapshot
from echotwist.server.endpoints import (
    endpoint_description,
    inner_description,
    proxied,
    server_endpoint,
    shareable,
    takes_backlog,
)
from echotwist.server.protocol import Echo, EchoFactory, RefusedEcho
from echotwist.server.proxy import (
    MAX_V1_HEADER,
    MAX_V2_HEADER,
    HeaderBeforeTLS,
    HeaderError,
    ProxyEndpoint,
    ProxyFactory,
    ProxyHeader,
    ProxyHeaderProtocol,
    ProxySettings,
    RejectionLog,
    header_size,
    parse_header,
    parse_networks,
    proxy_header_of,
    set_proxy_header,
)
from echotwist.test.support import BareTLSContext, proxy_v2_header, tlv

#: The proxy: the peer the sockets see.
PROXY = IPv4Address("TCP", "127.0.0.1", 51000)
#: The address the proxy connected to.
HOST = IPv4Address("TCP", "127.0.0.1", 9000)
V1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 9000\r\n"


def settings(clock: Clock, *networks: str, timeout: float = 5.0) -> ProxySettings:
    """
    @return: PROXY settings trusting C{networks} (loopback if none).
    """
    trusted = parse_networks(networks or ("127.0.0.0/8",))
    return ProxySettings(clock, trusted, timeout=timeout)


def messages(events: Sequence[LogEvent]) -> list[str]:
    """
    @return: the events' text.
    """
    return [formatEvent(event) for event in events]


class HeaderSizeTests(SynchronousTestCase):
    """
    Tests for L{header_size}: where a header ends, and what can't be one.
    """

    def test_v1(self) -> None:
        """
        A v1 header ends at its CRLF; anything after is not part of it.
        """
        self.assertEqual(header_size(V1 + b"data"), (1, len(V1)))

    def test_v2(self) -> None:
        """
        A v2 header is 16 bytes and as many as its length field says.
        """
        header = proxy_v2_header()
        self.assertEqual(header_size(header + b"data"), (2, len(header)))

    def test_incomplete(self) -> None:
        """
        Every proper prefix of a header, the empty one included, asks for
        more.
        """
        for header in (V1, proxy_v2_header(tlvs=tlv(0x02, b"example.com"))):
            for end in range(len(header)):
                self.assertIsNone(header_size(header[:end]), header[:end])

    def test_garbage(self) -> None:
        """
        Bytes that can't start a header are refused at once, from the first
        byte that differs.
        """
        for data in (b"G", b"GET / HTTP/1.1\r\n", b"PROXX", b"\r\n\r\n\x01"):
            self.assertRaises(HeaderError, header_size, data)

    def test_v1Oversized(self) -> None:
        """
        A v1 header with no CRLF in its first 107 bytes is refused.
        """
        line = b"PROXY UNKNOWN " + b"x" * 200
        self.assertIsNone(header_size(line[: MAX_V1_HEADER - 1]))
        error = self.assertRaises(HeaderError, header_size, line[:MAX_V1_HEADER])
        self.assertIn("longer than 107", str(error))

    def test_v1LongestAccepted(self) -> None:
        """
        A 107-byte v1 header, CRLF included, is one.
        """
        line = b"PROXY UNKNOWN " + b"x" * (MAX_V1_HEADER - 16) + b"\r\n"
        self.assertEqual(len(line), MAX_V1_HEADER)
        self.assertEqual(header_size(line), (1, MAX_V1_HEADER))

    def test_v2Oversized(self) -> None:
        """
        A v2 header whose length field says more than L{MAX_V2_HEADER} is
        refused as soon as the length is known.
        """
        start = proxy_v2_header()[:14] + (MAX_V2_HEADER - 15).to_bytes(2, "big")
        error = self.assertRaises(HeaderError, header_size, start)
        self.assertIn("at most 4096", str(error))
        fits = proxy_v2_header()[:14] + (MAX_V2_HEADER - 16).to_bytes(2, "big")
        self.assertIsNone(header_size(fits))

    def test_v2WrongVersion(self) -> None:
        """
        The v2 signature with a version other than 2 is refused.
        """
        self.assertRaises(HeaderError, header_size, proxy_v2_header(version=1))


class ParseHeaderTests(SynchronousTestCase):
    """
    Tests for L{parse_header}: what a whole header says, and the malformed
    ones refused.
    """

    def parse(self, header: bytes) -> ProxyHeader:
        found = header_size(header)
        assert found is not None
        return parse_header(found[0], header[: found[1]], PROXY)

    def test_v1TCP4(self) -> None:
        """
        A v1 C{TCP4} header names the client and the address it reached.
        """
        header = self.parse(V1)
        self.assertEqual(
            (header.version, header.command, header.family),
            (1, "PROXY", "TCP4"),
        )
        self.assertEqual(header.source, IPv4Address("TCP", "192.0.2.7", 5555))
        self.assertEqual(header.destination, IPv4Address("TCP", "10.0.0.1", 9000))
        self.assertEqual(header.proxy, PROXY)

    def test_v1TCP6(self) -> None:
        """
        A v1 C{TCP6} header names IPv6 addresses.
        """
        header = self.parse(b"PROXY TCP6 2001:db8::7 ::1 5555 9000\r\n")
        self.assertEqual(header.source, IPv6Address("TCP", "2001:db8::7", 5555))

    def test_v1Unknown(self) -> None:
        """
        v1 C{UNKNOWN}, with or without the rest of a line, names no client.
        """
        for line in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN 1.2.3.4 junk\r\n"):
            header = self.parse(line)
            self.assertEqual((header.command, header.source), ("UNKNOWN", None))
            self.assertIn("no client named", header.describe())

    def test_v1Malformed(self) -> None:
        """
        A v1 line that breaks the grammar, or names an address of the other
        family or a port over 65535, is refused (Twisted's parser alone
        takes some of these).
        """
        for line in (
            b"PROXY TCP4 192.0.2.7 10.0.0.1 5555\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 9000 extra\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 port 9000\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 70000 9000\r\n",
            b"PROXY TCP4 ::1 10.0.0.1 5555 9000\r\n",
            b"PROXY TCP6 192.0.2.7 ::1 5555 9000\r\n",
            b"PROXY TCP4 999.0.2.7 10.0.0.1 5555 9000\r\n",
            b"PROXY  TCP4 192.0.2.7 10.0.0.1 5555 9000\r\n",
            b"PROXY UDP4 192.0.2.7 10.0.0.1 5555 9000\r\n",
            b"PROXY \r\n",
        ):
            self.assertRaises(HeaderError, self.parse, line)

    def test_v2IPv4(self) -> None:
        """
        A v2 PROXY header over IPv4 names the client and its destination.
        """
        header = self.parse(proxy_v2_header())
        self.assertEqual(
            (header.version, header.command, header.family),
            (2, "PROXY", "inet/stream"),
        )
        self.assertEqual(header.source, IPv4Address("TCP", "192.0.2.7", 5555))
        self.assertEqual(header.destination, IPv4Address("TCP", "10.0.0.1", 9000))
        self.assertEqual(header.tlvs, ())

    def test_v2IPv6(self) -> None:
        """
        A v2 header over IPv6.
        """
        addresses = (
            socket.inet_pton(socket.AF_INET6, "2001:db8::7")
            + socket.inet_pton(socket.AF_INET6, "::1")
            + (5555).to_bytes(2, "big")
            + (9000).to_bytes(2, "big")
        )
        header = self.parse(proxy_v2_header(family=0x21, addresses=addresses))
        self.assertEqual(header.source, IPv6Address("TCP", "2001:db8::7", 5555))

    def test_v2UNIX(self) -> None:
        """
        A v2 header over UNIX sockets names their paths.
        """
        addresses = b"/run/client".ljust(108, b"\0") + b"/run/echo".ljust(108, b"\0")
        header = self.parse(proxy_v2_header(family=0x31, addresses=addresses))
        self.assertEqual(header.source, UNIXAddress(b"/run/client"))

    def test_v2Local(self) -> None:
        """
        v2 C{LOCAL} (the proxy's own connection, such as a health check)
        names no client, whatever its family says.
        """
        for family in (0x00, 0x11):
            header = self.parse(proxy_v2_header(command=0x0, family=family))
            self.assertEqual((header.command, header.source), ("LOCAL", None))
            self.assertEqual(
                header.describe(),
                "('127.0.0.1', 51000) (PROXY v2 LOCAL: no client named)",
            )

    def test_v2TLVs(self) -> None:
        """
        TLVs after the addresses are kept in order and named: text as text,
        the SSL TLV with its flags and sub-TLVs, unknown ones by type, NOOP
        left out.
        """
        ssl = (
            b"\x05"
            + (0).to_bytes(4, "big")
            + tlv(0x21, b"TLSv1.3")
            + tlv(0x22, b"client.example")
            + tlv(0x23, b"TLS_AES_128_GCM_SHA256")
        )
        tlvs = (
            tlv(0x02, b"example.com")
            + tlv(0x01, b"h2")
            + tlv(0x05, b"abc-123")
            + tlv(0x04, b"\0\0")
            + tlv(0x03, b"\x01\x02\x03\x04")
            + tlv(0x20, ssl)
            + tlv(0xE0, b"custom")
        )
        header = self.parse(proxy_v2_header(tlvs=tlvs))
        self.assertEqual(len(header.tlvs), 7)
        self.assertEqual(
            header.tlv_fields(),
            {
                "authority": "example.com",
                "alpn": "h2",
                "unique_id": "abc-123",
                "crc32c": "01020304",
                "ssl": {
                    "client": 5,
                    "verify": 0,
                    "version": "TLSv1.3",
                    "cn": "client.example",
                    "cipher": "TLS_AES_128_GCM_SHA256",
                },
                "tlv_0xe0": "custom",
            },
        )

    def test_v2Malformed(self) -> None:
        """
        A v2 header with a bad command, an unknown family or protocol, an
        address block too short for its family or a TLV that overruns the
        header is refused.
        """
        for header in (
            proxy_v2_header(command=0x2),
            proxy_v2_header(family=0x41),
            proxy_v2_header(family=0x13),
            proxy_v2_header(family=0x11, addresses=b"\x7f\0\0\x01"),
            proxy_v2_header(family=0x21, addresses=b"\0" * 12),
            proxy_v2_header(tlvs=b"\x02\x00\x10abc"),
            proxy_v2_header(tlvs=b"\x02\x00"),
        ):
            self.assertRaises(HeaderError, self.parse, header)


class ProxyProtocolTests(SynchronousTestCase):
    """
    Tests for L{ProxyHeaderProtocol} and L{ProxyFactory} in front of
    L{EchoFactory}, through L{StringTransport}s.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.echo = EchoFactory(self.clock, idle_timeout=60.0)
        self.settings = settings(self.clock)
        self.factory = self.settings.wrap(self.echo)

    def connect(
        self, peer: IPv4Address | UNIXAddress = PROXY
    ) -> tuple[ProxyHeaderProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(peer)
        transport = StringTransport(hostAddress=HOST, peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_echoAfterV1(self) -> None:
        """
        Bytes after a v1 header, in its chunk and later ones, are echoed;
        the header is not.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(V1 + b"hello ")
        protocol.dataReceived(b"world")
        self.assertEqual(transport.value(), b"hello world")
        self.assertFalse(transport.disconnecting)

    def test_echoAfterV2InSingleBytes(self) -> None:
        """
        A v2 header (with TLVs) that arrives one byte at a time is read
        whole: a short first read is not taken for garbage (as Twisted's own
        wrapper takes it).
        """
        protocol, transport = self.connect()
        for byte in proxy_v2_header(tlvs=tlv(0x02, b"example.com")) + b"hi":
            protocol.dataReceived(bytes([byte]))
        self.assertEqual(transport.value(), b"hi")
        assert protocol.header is not None
        self.assertEqual(protocol.header.tlv_fields(), {"authority": "example.com"})

    def test_logNamesClientAndProxy(self) -> None:
        """
        The echo's "Connected by" and "Disconnected" lines name the client
        the header names, and the proxy it came through.
        """
        with capturedLogs() as events:
            protocol, _transport = self.connect()
            protocol.dataReceived(V1 + b"abc")
            protocol.connectionLost()
        text = messages(events)
        via = "('192.0.2.7', 5555) via PROXY v1 from ('127.0.0.1', 51000)"
        self.assertIn(f"Connected by {via}", text)
        self.assertTrue(
            any(t.startswith(f"Disconnected {via}: 3 bytes in") for t in text), text
        )

    def test_countsAsEchoConnection(self) -> None:
        """
        The echo factory counts the connection once its header is read, and
        its bytes, not the header's.
        """
        protocol, _transport = self.connect()
        protocol.dataReceived(V1[:10])
        self.assertEqual(self.echo.connections_total, 0)
        protocol.dataReceived(V1[10:] + b"abcd")
        self.assertEqual(self.echo.connections_total, 1)
        self.assertEqual(len(self.echo.open_connections), 1)
        self.assertEqual(self.echo.bytes_echoed, 4)
        [echo] = self.echo.open_connections
        self.assertEqual(proxy_header_of(echo), protocol.header)
        protocol.connectionLost()
        self.assertEqual(len(self.echo.open_connections), 0)

    def test_unknownAndLocalServed(self) -> None:
        """
        v1 C{UNKNOWN} and v2 C{LOCAL} connections (a proxy's health check)
        are served, named by the proxy's address.
        """
        for header in (b"PROXY UNKNOWN\r\n", proxy_v2_header(command=0x0)):
            with capturedLogs() as events:
                protocol, transport = self.connect()
                protocol.dataReceived(header + b"check")
            self.assertEqual(transport.value(), b"check")
            self.assertTrue(
                any(
                    "Connected by ('127.0.0.1', 51000) (PROXY" in t
                    for t in messages(events)
                )
            )

    def rejected(
        self, *chunks: bytes, peer: IPv4Address | UNIXAddress = PROXY
    ) -> tuple[StringTransport, list[str]]:
        """
        Send C{chunks} on a new connection.

        @return: its transport and the log lines.
        """
        with capturedLogs() as events:
            protocol, transport = self.connect(peer)
            for chunk in chunks:
                protocol.dataReceived(chunk)
        return transport, messages(events)

    def assertClosedWithOneLine(
        self,
        transport: StringTransport,
        text: list[str],
        reason: str,
        by_peer: bool = False,
    ) -> None:
        """
        The connection was closed (by us unless C{by_peer}), nothing echoed,
        no echo protocol built, and one line logged, saying C{reason}.
        """
        self.assertEqual(transport.disconnecting, not by_peer)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.echo.connections_total, 0)
        self.assertEqual(len(text), 1, text)
        self.assertIn("on a PROXY port", text[0])
        self.assertIn(reason, text[0])

    def test_garbage(self) -> None:
        """
        A connection that starts with anything but a header is closed, with
        one line quoting its first bytes, and nothing is echoed.
        """
        transport, text = self.rejected(b"GET / HTTP/1.1\r\n\r\n")
        self.assertClosedWithOneLine(transport, text, "no PROXY header")
        self.assertIn("GET / HTTP/1.1", text[0])

    def test_truncated(self) -> None:
        """
        A connection closed part way through its header is logged once.
        """
        with capturedLogs() as events:
            protocol, transport = self.connect()
            protocol.dataReceived(V1[:20])
            protocol.connectionLost()
        self.assertClosedWithOneLine(
            transport,
            messages(events),
            "closed after 20 bytes of a PROXY header",
            by_peer=True,
        )

    def test_halfClosedBeforeHeader(self) -> None:
        """
        A peer that shuts its sending side before its header is complete is
        closed.
        """
        with capturedLogs() as events:
            protocol, transport = self.connect()
            protocol.dataReceived(V1[:5])
            protocol.readConnectionLost()
            protocol.connectionLost()
        self.assertClosedWithOneLine(
            transport, messages(events), "shut its sending side after 5 bytes"
        )

    def test_halfCloseAfterHeader(self) -> None:
        """
        A half-close after the header reaches the echo, which flushes and
        closes, as on a plain port.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(V1 + b"bye")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"bye")
        self.assertTrue(transport.disconnecting)

    def test_oversized(self) -> None:
        """
        An over-long v1 or v2 header is closed, with one line.
        """
        transport, text = self.rejected(b"PROXY TCP4 " + b"1" * 200)
        self.assertClosedWithOneLine(transport, text, "longer than 107 bytes")
        self.echo.connections_total = 0
        transport, text = self.rejected(proxy_v2_header()[:14] + b"\xff\xff")
        self.assertClosedWithOneLine(transport, text, "65551 bytes")

    def test_malformed(self) -> None:
        """
        A malformed header is closed, with one line.
        """
        transport, text = self.rejected(b"PROXY TCP4 a b c d\r\n")
        self.assertClosedWithOneLine(transport, text, "malformed PROXY v1 header")
        self.echo.connections_total = 0
        transport, text = self.rejected(proxy_v2_header(family=0x41))
        self.assertClosedWithOneLine(transport, text, "malformed PROXY v2 header")

    def test_slow(self) -> None:
        """
        A header not complete within the timeout is closed, with one line;
        one that completes in time is served, its timer cancelled.
        """
        with capturedLogs() as events:
            protocol, transport = self.connect()
            protocol.dataReceived(V1[:10])
            self.clock.advance(4.9)
            self.assertFalse(transport.disconnecting)
            self.clock.advance(0.1)
        self.assertClosedWithOneLine(
            transport,
            messages(events),
            "no complete PROXY header within 5 s (10 bytes)",
        )
        protocol, transport = self.connect()
        protocol.dataReceived(V1)
        self.clock.advance(10)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)  # idle, rejections

    def test_silent(self) -> None:
        """
        A connection that sends nothing is closed at the timeout.
        """
        with capturedLogs() as events:
            _protocol, transport = self.connect()
            self.clock.advance(5)
        self.assertClosedWithOneLine(
            transport, messages(events), "within 5 s (nothing)"
        )

    def test_untrustedPeer(self) -> None:
        """
        A peer outside C{--proxy-from} is closed at once, before it sends
        anything; a UNIX socket's peer is not checked.
        """
        stranger = IPv4Address("TCP", "192.0.2.99", 40000)
        transport, text = self.rejected(peer=stranger)
        self.assertClosedWithOneLine(transport, text, "not in --proxy-from")
        self.assertIn("192.0.2.99", text[0])
        _protocol, transport = self.connect(UNIXAddress(None))
        self.assertFalse(transport.disconnecting)

    def test_overConnectionLimit(self) -> None:
        """
        Over C{--max-connections}, the connection is refused after its
        header, and the refusal names the client.
        """
        self.echo.max_connections = 1
        first, _ = self.connect()
        first.dataReceived(V1)
        with capturedLogs() as events:
            protocol, transport = self.connect()
            protocol.dataReceived(V1 + b"x")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.echo.refused_total, 1)
        self.assertTrue(
            any("first refused: ('192.0.2.7', 5555)" in t for t in messages(events))
        )

    def test_rejectionCounted(self) -> None:
        """
        Each factory counts the connections it closed, as does the echo
        factory it serves (for the metrics), and the shared log its total.
        """
        self.rejected(b"nope")
        self.rejected(b"nope")
        self.assertEqual(self.factory.rejected_total, 2)
        self.assertEqual(self.echo.proxy_rejected_total, 2)
        self.assertEqual(take_snapshot(self.echo).proxy_rejected_total, 2)
        assert self.settings.rejections is not None
        self.assertEqual(self.settings.rejections.total, 2)

    def test_logPrefix(self) -> None:
        """
        The port names the served factory, marked C{(PROXY)}.
        """
        self.assertEqual(self.factory.logPrefix(), "EchoFactory (PROXY)")

    def test_startsAndStopsServedFactory(self) -> None:
        """
        Starting and stopping the factory starts and stops the served one.
        """
        self.factory.doStart()
        self.assertEqual(self.echo.numPorts, 1)
        self.factory.doStop()
        self.assertEqual(self.echo.numPorts, 0)


class RejectionLogTests(SynchronousTestCase):
    """
    Tests for L{RejectionLog}: a flood of closed connections is summed up.
    """

    def test_flood(self) -> None:
        """
        Past C{logged} lines in an interval, closes are counted and the count
        logged at the interval's end; a quiet interval stops the counting.
        """
        clock = Clock()
        log = RejectionLog(clock, logged=2, interval=10.0)
        with capturedLogs() as events:
            for _ in range(50):
                log.reject(PROXY, "garbage")
            self.assertEqual(len(events), 2)
            clock.advance(10)
        text = messages(events)
        self.assertEqual(len(text), 3)
        self.assertIn("Closed 48 more connections on PROXY ports", text[2])
        self.assertEqual(log.total, 50)
        with capturedLogs() as events:
            clock.advance(10)
            clock.advance(10)
        self.assertEqual(events, [])
        self.assertEqual(clock.getDelayedCalls(), [])
        with capturedLogs() as events:
            log.reject(PROXY, "again")
        self.assertEqual(len(events), 1)


class TrustTests(SynchronousTestCase):
    """
    Tests for L{ProxySettings.trusts} and L{parse_networks}.
    """

    def test_networks(self) -> None:
        """
        Peers in a trusted network are trusted, others not.
        """
        trusted = settings(Clock(), "10.0.0.0/8", "192.0.2.1", "2001:db8::/32")
        for host, expected in [
            ("10.1.2.3", True),
            ("11.0.0.1", False),
            ("192.0.2.1", True),
            ("192.0.2.2", False),
        ]:
            self.assertEqual(
                trusted.trusts(IPv4Address("TCP", host, 1)), expected, host
            )
        self.assertTrue(trusted.trusts(IPv6Address("TCP", "2001:db8::5", 1)))
        self.assertFalse(trusted.trusts(IPv6Address("TCP", "2001:db9::5", 1)))

    def test_mappedIPv4(self) -> None:
        """
        An IPv4-mapped IPv6 peer (a dual-stack C{tcp6} port's IPv4 client)
        counts as its IPv4 address.
        """
        trusted = settings(Clock(), "127.0.0.0/8")
        self.assertTrue(trusted.trusts(IPv6Address("TCP", "::ffff:127.0.0.1", 1)))
        self.assertFalse(trusted.trusts(IPv6Address("TCP", "::ffff:10.0.0.1", 1)))

    def test_parseNetworks(self) -> None:
        """
        Networks and single addresses are read; host bits are allowed;
        anything else is refused, naming it.
        """
        self.assertEqual(
            parse_networks(["10.1.0.0/8", "::1"]),
            [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")],
        )
        error = self.assertRaises(ValueError, parse_networks, ["10.0.0.0/33"])
        self.assertIn("'10.0.0.0/33'", str(error))


class FastPathTests(SynchronousTestCase):
    """
    After the header, a real connection is handed to the echo protocol,
    which then takes its fast path as on a plain port.
    """

    def test_handedOverToFastPath(self) -> None:
        """
        Once the header is read, the connection delivers to the echo itself
        and reads through the fast path's C{DirectEcho}.
        """
        ours, theirs = socket.socketpair()
        for end in ours, theirs:
            end.setblocking(False)
            self.addCleanup(end.close)
        clock = Clock()
        echo = EchoFactory(clock)
        factory = settings(clock).wrap(echo)
        protocol = factory.buildProtocol(PROXY)
        connection = Connection(ours, protocol, MemoryReactorClock())
        connection.connected = True
        connection.getPeer = lambda: PROXY  # type: ignore[method-assign]
        connection.getHost = lambda: None  # type: ignore[method-assign]
        protocol.makeConnection(connection)
        self.assertNotIn("doRead", vars(connection))

        theirs.sendall(V1 + b"first")
        connection.doRead()
        self.assertIsInstance(connection.protocol, Echo)
        self.assertIn("doRead", vars(connection))
        self.assertEqual(theirs.recv(100), b"first")

        theirs.sendall(b"second")
        connection.doRead()
        self.assertEqual(theirs.recv(100), b"second")
        [served] = echo.open_connections
        self.assertEqual(served.bytes_in, len(b"firstsecond"))


class WrappingTests(SynchronousTestCase):
    """
    Tests for L{set_proxy_header}, L{ProxyEndpoint} and L{HeaderBeforeTLS}.
    """

    def test_throughTLS(self) -> None:
        """
        The header is given to the protocol TLS wraps.
        """
        echo = EchoFactory(Clock())
        tls = TLSMemoryBIOFactory(BareTLSContext(), False, echo).buildProtocol(PROXY)
        header = ProxyHeader(1, "UNKNOWN", "UNKNOWN", None, None, PROXY)
        set_proxy_header(tls, header)
        self.assertIs(proxy_header_of(tls.wrappedProtocol), header)

    def test_notForOthers(self) -> None:
        """
        A protocol that does not take a header is left alone.
        """
        protocol = Protocol()
        set_proxy_header(protocol, ProxyHeader(1, "UNKNOWN", "", None, None, PROXY))
        self.assertIsNone(proxy_header_of(protocol))

    def test_refusedEchoTakesHeader(self) -> None:
        """
        A refused echo takes it too (and so could name its client).
        """
        refused = RefusedEcho()
        header = ProxyHeader(1, "UNKNOWN", "UNKNOWN", None, None, PROXY)
        set_proxy_header(refused, header)
        self.assertIs(proxy_header_of(refused), header)

    def test_endpoint(self) -> None:
        """
        L{ProxyEndpoint} listens on its endpoint with the factory wrapped.
        """
        given: list[IProtocolFactory] = []

        class Endpoint:
            def listen(self, factory: IProtocolFactory) -> object:
                given.append(factory)
                return succeed(None)

        echo = EchoFactory(Clock())
        ProxyEndpoint(Endpoint(), settings(Clock())).listen(echo)  # type: ignore[arg-type]
        [wrapped] = given
        assert isinstance(wrapped, ProxyFactory)
        self.assertIs(wrapped.wrappedFactory, echo)

    def test_headerBeforeTLS(self) -> None:
        """
        C{listenSSL} listens on TCP with the PROXY reader outside TLS, and
        TLS outside the served factory.
        """
        reactor = MemoryReactorClock()
        echo = EchoFactory(reactor)
        proxy = settings(Clock())
        HeaderBeforeTLS(reactor, proxy).listenSSL(
            0,
            echo,
            BareTLSContext(),
            7,
            "127.0.0.1",
        )
        [(port, factory, backlog, interface)] = reactor.tcpServers
        self.assertEqual((port, backlog, interface), (0, 7, "127.0.0.1"))
        assert isinstance(factory, ProxyFactory)
        tls = factory.wrappedFactory
        assert isinstance(tls, TLSMemoryBIOFactory)
        self.assertIs(tls.wrappedFactory, echo)
        self.assertEqual(reactor.sslServers, [])


class EndpointTests(SynchronousTestCase):
    """
    C{haproxy:} descriptions in L{echotwist.server.endpoints}.
    """

    def test_wrapperKind(self) -> None:
        """
        A C{haproxy:} description takes a backlog and can be shared where
        its inner one can.
        """
        self.assertTrue(proxied("haproxy:tcp:9000"))
        self.assertEqual(inner_description("haproxy:unix:/run/e"), "unix:/run/e")
        self.assertEqual(inner_description("tcp:9000"), "tcp:9000")
        for inner in ("tcp:0", "tcp6:0", "unix:/run/e"):
            self.assertTrue(takes_backlog(f"haproxy:{inner}"), inner)
            self.assertTrue(shareable(f"haproxy:{inner}"), inner)
        self.assertTrue(takes_backlog("haproxy:ssl:0"))
        self.assertFalse(shareable("haproxy:ssl:0"))

    def test_description(self) -> None:
        """
        The backlog is added to the inner description, and a bare port
        number after C{haproxy:} is a TCP port.
        """
        self.assertEqual(
            endpoint_description("haproxy:tcp:9000", 5),
            "haproxy:tcp:9000:backlog=5",
        )
        self.assertEqual(
            endpoint_description("haproxy:9000", 5, False), "haproxy:tcp:9000:backlog=5"
        )

    def test_serverEndpoint(self) -> None:
        """
        L{server_endpoint} wraps a C{haproxy:} port's inner endpoint with
        echotwist's PROXY reader.
        """
        reactor = MemoryReactorClock()
        proxy = settings(Clock())
        endpoint = server_endpoint(reactor, "haproxy:tcp:0:backlog=5", proxy)
        assert isinstance(endpoint, ProxyEndpoint)
        echo = EchoFactory(reactor)
        endpoint.listen(echo)
        [(_port, factory, backlog, _interface)] = reactor.tcpServers
        self.assertEqual(backlog, 5)
        assert isinstance(factory, ProxyFactory)
        self.assertIs(factory.wrappedFactory, echo)
        plain = server_endpoint(reactor, "tcp:0", proxy)
        self.assertNotIsInstance(plain, ProxyEndpoint)
