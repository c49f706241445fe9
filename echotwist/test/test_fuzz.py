"""
Property tests with hypothesis: the echo is exact for any chunks, and any
command line ends in a configuration or a usage error, never a crash.
"""

from __future__ import annotations

from typing import NoReturn

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from echotwist.client.__main__ import build_parser
from echotwist.client.endpoints import make_endpoint
from echotwist.client.exits import ClientExit
from echotwist.server.options import Options
from echotwist.server.protocol import EchoFactory

MiB = 1 << 20

#: Chunks as TCP might deliver them: random bytes, the edge bytes, empty,
#: and long runs (so a few chunks reach the 1 MiB the property allows).
chunk = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from([b"", b"\x00", b"\xff", b"\r\n", b"\x00\xff" * 1024]),
    st.builds(
        lambda byte, size: bytes([byte]) * size,
        st.integers(0, 255),
        st.integers(0, 256 * 1024),
    ),
)
chunks = st.lists(chunk, max_size=40)

#: Words a command line might be made of: the real option names, values
#: that are nearly right, and anything at all.
SERVER_WORDS = [
    "--port",
    "-p",
    "--backlog",
    "--max-connections",
    "--idle-timeout",
    "--verbose",
    "-v",
    "--shutdown-timeout",
    "--udp",
    "--udp-rate",
    "--udp-burst",
    "tcp:0",
    "ssl:0",
    "unix:/nonexistent/x",
    "tcp6:0",
    "0",
    "-1",
    "65536",
    "1e309",
    "nan",
    "inf",
    "",
    ":",
    "127.0.0.1:0",
    "[::1]:0",
    "tcp:0:interface=127.0.0.1",
    "--port=tcp:0",
    "--udp=x",
]
CLIENT_WORDS = [
    "--host",
    "--port",
    "--connect",
    "--timeout",
    "--udp",
    "--retries",
    "--verbose",
    "-v",
    "-",
    "msg",
    "0",
    "65536",
    "nan",
    "-1",
    "1e309",
    "tcp:host=127.0.0.1:port=1",
    "tls:127.0.0.1:1",
    "unix:path=/x",
    "bogus:",
    "tcp:",
    "",
]


def argv(words: list[str]) -> st.SearchStrategy[list[str]]:
    """
    @return: a strategy of argument lists drawn from C{words} and any text.
    """
    return st.lists(st.one_of(st.sampled_from(words), st.text(max_size=20)), max_size=8)


class EchoFuzzTests(SynchronousTestCase):
    """
    The echo over L{StringTransport} for any sequence of chunks.
    """

    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(chunks)
    def test_echoIsExact(self, data: list[bytes]) -> None:
        """
        The concatenated echo equals the concatenated input (up to 1 MiB),
        and a half-close after it leaves the connection closing.
        """
        assume(sum(map(len, data)) <= MiB)
        factory = EchoFactory(Clock(), idle_timeout=60)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        for piece in data:
            protocol.dataReceived(piece)
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"".join(data))
        self.assertTrue(transport.disconnecting)


class OptionsFuzzTests(SynchronousTestCase):
    """
    Any argv given to the plugin's L{Options}.
    """

    @settings(max_examples=300, deadline=None)
    @given(argv(SERVER_WORDS))
    def test_validOrUsageError(self, args: list[str]) -> None:
        """
        Parsing ends in a configuration with checked values, or a
        L{usage.UsageError}; never any other exception.
        """
        assume("--help" not in args and "--version" not in args)
        options = Options()
        try:
            options.parseOptions(args)
        except usage.UsageError:
            return
        self.assertTrue(options["ports"])
        self.assertGreaterEqual(options["backlog"], 1)
        self.assertGreaterEqual(options["shutdown-timeout"], 0)
        self.assertGreater(options["udp-rate"], 0)
        self.assertGreaterEqual(options["udp-burst"], 1)


class ClientArgumentsFuzzTests(SynchronousTestCase):
    """
    Any argv given to the client's command line.
    """

    @settings(max_examples=300, deadline=None)
    @given(argv(CLIENT_WORDS))
    def test_validOrUsageError(self, args: list[str]) -> None:
        """
        Parsing and building the endpoint end in an endpoint, or an exit
        with the usage code 2; never any other exception.
        """
        assume("-h" not in args and "--help" not in args)
        parser = build_parser()
        parser.error = _usage_error  # type: ignore[method-assign]
        try:
            parsed = parser.parse_args(args)
        except SystemExit as e:
            self.assertEqual(e.code, 2)
            return
        try:
            make_endpoint(MemoryReactorClock(), parsed)
        except ClientExit as e:
            self.assertEqual(e.code, 2)


def _usage_error(message: str) -> NoReturn:
    """
    Exit with the usage code as argparse does, without printing the usage
    (hypothesis runs hundreds of examples).
    """
    raise SystemExit(2)
