"""
Tests for the info ports: L{echotwist.server.info} (what the server
answers) and L{echotwist.client.info} (what the client makes of it).
"""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides

import echotwist
from echotwist.client import EchoTimeout, info_command
from echotwist.client.__main__ import build_parser
from echotwist.client.exits import (
    EXIT_CONNECT,
    EXIT_MISMATCH,
    EXIT_TIMEOUT,
    ClientExit,
)
from echotwist.client.info import (
    MAX_ANSWER,
    REQUEST_SIZE,
    InfoClientProtocol,
    InfoError,
    UDPInfoClientProtocol,
    fetch_info,
    parse_info,
    readable,
)
from echotwist.server.info import (
    UDP_REQUEST_SIZE,
    InfoDatagramProtocol,
    InfoFactory,
    InfoProtocol,
    connection_info,
)
from echotwist.server.proxy import ProxyHeader
from echotwist.test.test_udp import FakeDatagramTransport

PEER = IPv4Address("TCP", "127.0.0.1", 51000)
HOST = IPv4Address("TCP", "127.0.0.1", 9001)
CLIENT = IPv4Address("TCP", "192.0.2.7", 5555)
HEADER = ProxyHeader(
    2,
    "PROXY",
    "inet/stream",
    CLIENT,
    IPv4Address("TCP", "10.0.0.1", 9001),
    PEER,
    ((0x02, b"example.com"),),
)


class _FakeTLSConnection:
    """
    What L{echotwist.server.info.tls_fields} reads of a pyOpenSSL
    connection.
    """

    def get_peer_certificate(self) -> None:
        return None

    def get_alpn_proto_negotiated(self) -> bytes:
        return b"echo"

    def get_protocol_version_name(self) -> str:
        return "TLSv1.3"

    def get_cipher_name(self) -> str:
        return "TLS_AES_256_GCM_SHA384"

    def get_servername(self) -> bytes:
        return b"localhost"


class _FakeCertifiedTLSConnection(_FakeTLSConnection):
    """
    A TLS connection whose client presented a certificate.
    """

    def get_peer_certificate(self) -> Any:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        from OpenSSL import crypto

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "client.example"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests"),
            ]
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return crypto.X509.from_cryptography(certificate)


class ConnectionInfoTests(SynchronousTestCase):
    """
    Tests for L{connection_info}.
    """

    def test_plain(self) -> None:
        """
        A plain TCP connection: peer, local, transport, time and version,
        nothing about the server beyond that.
        """
        clock = Clock()
        clock.advance(86400.5)
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        info = connection_info(transport, None, clock)
        self.assertEqual(
            info,
            {
                "client": {"host": "127.0.0.1", "port": 51000},
                "peer": {"host": "127.0.0.1", "port": 51000},
                "local": {"host": "127.0.0.1", "port": 9001},
                "transport": "tcp",
                "time": "1970-01-02T00:00:00.500000Z",
                "version": echotwist.__version__,
            },
        )

    def test_kinds(self) -> None:
        """
        IPv6 is C{tcp6}, UNIX sockets C{unix} with their path (C{null} when
        unnamed).
        """
        six = IPv6Address("TCP", "::1", 9001)
        transport = StringTransport(hostAddress=six, peerAddress=six)
        self.assertEqual(connection_info(transport, None, Clock())["transport"], "tcp6")
        transport = StringTransport(
            hostAddress=UNIXAddress(b"/run/info"), peerAddress=UNIXAddress(None)
        )
        info = connection_info(transport, None, Clock())
        self.assertEqual(info["transport"], "unix")
        self.assertEqual(info["local"], {"path": "/run/info"})
        self.assertEqual(info["peer"], {"path": None})

    def test_proxy(self) -> None:
        """
        Behind a PROXY header, the client is the header's source, and the
        header is described with its TLVs.
        """
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        info = connection_info(transport, HEADER, Clock())
        self.assertEqual(info["client"], {"host": "192.0.2.7", "port": 5555})
        self.assertEqual(info["peer"], {"host": "127.0.0.1", "port": 51000})
        self.assertEqual(
            info["proxy"],
            {
                "version": 2,
                "command": "PROXY",
                "family": "inet/stream",
                "source": {"host": "192.0.2.7", "port": 5555},
                "destination": {"host": "10.0.0.1", "port": 9001},
                "tlvs": {"authority": "example.com"},
            },
        )

    def test_tls(self) -> None:
        """
        Over TLS: its version, cipher, SNI, ALPN and client certificate.
        """
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        alsoProvides(transport, ISSLTransport)
        transport.getHandle = _FakeTLSConnection  # type: ignore[attr-defined]
        info = connection_info(transport, None, Clock())
        self.assertEqual(info["transport"], "tls")
        self.assertEqual(
            info["tls"],
            {
                "version": "TLSv1.3",
                "cipher": "TLS_AES_256_GCM_SHA384",
                "sni": "localhost",
                "alpn": "echo",
                "client_certificate": None,
            },
        )

    def test_clientCertificate(self) -> None:
        """
        A client certificate's subject is reported, RFC 4514 style.
        """
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        alsoProvides(transport, ISSLTransport)
        transport.getHandle = _FakeCertifiedTLSConnection  # type: ignore[attr-defined]
        info = connection_info(transport, None, Clock())
        self.assertEqual(info["tls"]["client_certificate"], "O=Tests,CN=client.example")


class InfoProtocolTests(SynchronousTestCase):
    """
    Tests for L{InfoProtocol}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = InfoFactory(self.clock, timeout=10.0)

    def connect(self, tls: bool = False) -> tuple[InfoProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(PEER)
        assert isinstance(protocol, InfoProtocol)
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        if tls:
            alsoProvides(transport, ISSLTransport)
            transport.getHandle = _FakeTLSConnection
        protocol.makeConnection(transport)
        return protocol, transport

    def test_answersAndCloses(self) -> None:
        """
        One JSON line, then the connection is closed.
        """
        _protocol, transport = self.connect()
        line = transport.value()
        self.assertTrue(line.endswith(b"\n"))
        self.assertEqual(line.count(b"\n"), 1)
        self.assertEqual(json.loads(line)["peer"]["port"], 51000)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.answered_total, 1)

    def test_tlsWaitsForHandshake(self) -> None:
        """
        Over TLS the answer waits for the handshake; one that never ends is
        aborted at the timeout.
        """
        protocol, transport = self.connect(tls=True)
        self.assertEqual(transport.value(), b"")
        protocol.handshakeCompleted()
        self.assertEqual(json.loads(transport.value())["tls"]["sni"], "localhost")
        protocol.connectionLost()
        _protocol, transport = self.connect(tls=True)
        self.clock.advance(10)
        self.assertTrue(transport.disconnected)

    def test_proxyHeader(self) -> None:
        """
        A header set before the connection is made is reported.
        """
        protocol = self.factory.buildProtocol(CLIENT)
        assert isinstance(protocol, InfoProtocol)
        protocol.proxy_header = HEADER
        transport = StringTransport(hostAddress=HOST, peerAddress=PEER)
        protocol.makeConnection(transport)
        self.assertEqual(json.loads(transport.value())["client"]["host"], "192.0.2.7")


class InfoDatagramTests(SynchronousTestCase):
    """
    Tests for L{InfoDatagramProtocol}: never more bytes back than came, and
    UDP echo's limits.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.protocol = InfoDatagramProtocol(self.clock, rate=1.0, burst=2)
        self.transport = FakeDatagramTransport()
        self.transport.getHost = lambda: IPv4Address(  # type: ignore[attr-defined]
            "UDP", "127.0.0.1", 9001
        )
        self.protocol.transport = self.transport  # type: ignore[assignment]

    def test_answer(self) -> None:
        """
        A long enough datagram gets one JSON line about its source, no
        longer than itself.
        """
        self.protocol.datagramReceived(b"?" * UDP_REQUEST_SIZE, ("127.0.0.1", 40000))
        [(answer, addr)] = self.transport.written
        self.assertEqual(addr, ("127.0.0.1", 40000))
        self.assertLessEqual(len(answer), UDP_REQUEST_SIZE)
        info = json.loads(answer)
        self.assertEqual(info["client"], {"host": "127.0.0.1", "port": 40000})
        self.assertEqual(info["transport"], "udp")

    def test_neverAmplifies(self) -> None:
        """
        A datagram shorter than its answer gets none; one exactly as long
        gets it.
        """
        size = len(self.protocol.answer("127.0.0.1", 40000))
        self.protocol.datagramReceived(b"?" * (size - 1), ("127.0.0.1", 40000))
        self.assertEqual(self.transport.written, [])
        self.assertEqual(self.protocol.dropped_short, 1)
        self.protocol.datagramReceived(b"?" * size, ("127.0.0.1", 40000))
        [(answer, _)] = self.transport.written
        self.assertEqual(len(answer), size)

    def test_limits(self) -> None:
        """
        Low source ports are never answered; a source over its rate is
        dropped.
        """
        request = b"?" * UDP_REQUEST_SIZE
        self.protocol.datagramReceived(request, ("127.0.0.1", 53))
        self.assertEqual(self.protocol.dropped_refused_port, 1)
        for _ in range(3):
            self.protocol.datagramReceived(request, ("127.0.0.1", 40000))
        self.assertEqual(len(self.transport.written), 2)
        self.assertEqual(self.protocol.dropped_rate_limited, 1)


class _Endpoint:
    """
    A client endpoint that connects to a L{StringTransport}.
    """

    def __init__(self) -> None:
        self.transport = StringTransport()
        self.protocol: Any = None

    def connect(self, factory: Factory) -> Any:
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(self.transport)
        self.protocol = protocol
        return succeed(protocol)


class ClientTests(SynchronousTestCase):
    """
    Tests for L{echotwist.client.info}.
    """

    def test_fetch(self) -> None:
        """
        L{fetch_info} fires with the JSON object read to the close.
        """
        endpoint = _Endpoint()
        clock = Clock()
        result = Deferred.fromCoroutine(fetch_info(clock, endpoint, 5.0))  # type: ignore[arg-type]
        protocol = endpoint.protocol
        assert isinstance(protocol, InfoClientProtocol)
        protocol.dataReceived(b'{"client": ')
        protocol.dataReceived(b'{"host": "::1", "port": 1}}\n')
        protocol.connectionLost()
        self.assertEqual(
            self.successResultOf(result), {"client": {"host": "::1", "port": 1}}
        )

    def test_timeout(self) -> None:
        """
        No complete answer within the timeout fails with L{EchoTimeout}.
        """
        endpoint = _Endpoint()
        clock = Clock()
        result = Deferred.fromCoroutine(fetch_info(clock, endpoint, 5.0))  # type: ignore[arg-type]
        clock.advance(5)
        self.failureResultOf(result, EchoTimeout)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_tooLong(self) -> None:
        """
        An answer over L{MAX_ANSWER} bytes is refused.
        """
        protocol = InfoClientProtocol()
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"x" * (MAX_ANSWER + 1))
        self.failureResultOf(protocol.finished, InfoError)

    def test_notInfo(self) -> None:
        """
        An answer that is not a JSON object is an L{InfoError}, quoting it.
        """
        for answer in (b"", b"hello", b"[1]"):
            self.assertRaises(InfoError, parse_info, answer)

    def test_udpTakesAnyAnswer(self) -> None:
        """
        The UDP client sends a padded request and takes the server's
        answer, whatever it is, ignoring other senders.
        """
        clock = Clock()
        request = b"?" * REQUEST_SIZE
        protocol = UDPInfoClientProtocol(request, "127.0.0.1", 9001, clock, 1.0, 0)
        transport = FakeDatagramTransport()
        protocol.transport = transport  # type: ignore[assignment]
        protocol.startProtocol()
        self.assertEqual(transport.written, [(request, ("127.0.0.1", 9001))])
        protocol.datagramReceived(b"other", ("127.0.0.1", 9002))
        protocol.datagramReceived(b"{}", ("127.0.0.1", 9001))
        self.assertEqual(self.successResultOf(protocol.finished), b"{}")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_readable(self) -> None:
        """
        The readable form lines up one field a line, PROXY and TLS details
        indented under theirs.
        """
        info = {
            "client": {"host": "192.0.2.7", "port": 5555},
            "peer": {"host": "::1", "port": 51000},
            "local": {"path": None},
            "transport": "tls",
            "proxy": {
                "version": 2,
                "command": "PROXY",
                "family": "inet/stream",
                "source": {"host": "192.0.2.7", "port": 5555},
                "destination": None,
                "tlvs": {"authority": "example.com", "ssl": {"client": 1}},
            },
            "tls": {"version": "TLSv1.3", "cipher": "C", "sni": "localhost"},
            "time": "T",
            "version": "1.0.0",
        }
        self.assertEqual(
            readable(info).splitlines(),
            [
                "client       192.0.2.7 port 5555",
                "peer         [::1] port 51000",
                "local        unix (unnamed)",
                "transport    tls",
                "proxy        PROXY v2 PROXY (inet/stream)",
                "  source     192.0.2.7 port 5555",
                "  authority  example.com",
                "  ssl        client=1",
                "tls          TLSv1.3 C",
                "  sni        localhost",
                "time         T",
                "server       echotwist 1.0.0",
            ],
        )


class RunInfoTests(SynchronousTestCase):
    """
    Tests for L{info_command.run_info}'s exits.
    """

    def assertExits(self, error: Exception, code: int, message: str) -> None:
        """
        Assert that C{--info} ends with C{code} and C{message}, printing
        nothing, when fetching the info fails with C{error}.
        """

        async def failing(*args: object) -> dict[str, Any]:
            raise error

        self.patch(info_command, "fetch_info", failing)
        args = build_parser().parse_args(["--info", "--connect", "tcp:h:9"])
        stdout = io.BytesIO()
        d = Deferred.fromCoroutine(
            info_command.run_info(MemoryReactorClock(), args, stdout)
        )
        failure = self.failureResultOf(d, ClientExit)
        self.assertEqual((failure.value.code, str(failure.value)), (code, message))
        self.assertEqual(stdout.getvalue(), b"")

    def test_exits(self) -> None:
        """
        A timeout, an answer that is not one, and a refused connection each
        end the command with their own status and one line naming the
        server.
        """
        self.assertExits(
            EchoTimeout(5.0), EXIT_TIMEOUT, "tcp:h:9: no complete echo within 5 s"
        )
        self.assertExits(
            InfoError("not an info port"),
            EXIT_MISMATCH,
            "tcp:h:9: not an info port",
        )
        self.assertExits(
            ConnectionRefusedError(),
            EXIT_CONNECT,
            "cannot connect to tcp:h:9: Connection was refused by other side",
        )
