"""
A client for echotwist's info ports (C{twistd echo --info}, C{--info-udp}):
fetch the JSON line that describes the connection as the server saw it, and
print it for people.

L{fetch_info} reads a stream info port (any client endpoint: TCP, UNIX,
TLS) to its end; L{fetch_info_udp} sends one padded datagram
(L{REQUEST_SIZE} bytes: the server never answers with more bytes than a
request carried) and retries like the UDP echo client; L{readable} lays the
answer out as aligned lines.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from echotwist.client import EchoError, EchoTimeout
from echotwist.client.udp import RECEIVE_SIZE, UDPEchoClientProtocol, _resolve

__all__ = [
    "MAX_ANSWER",
    "REQUEST_SIZE",
    "InfoError",
    "fetch_info",
    "fetch_info_udp",
    "parse_info",
    "readable",
]

#: The most bytes read from a stream info port: far more than an answer.
MAX_ANSWER = 65536

#: The size of the datagram sent to a UDP info port: room for any answer.
REQUEST_SIZE = 512


class InfoError(EchoError):
    """
    The server's answer is not an info line.
    """


def parse_info(answer: bytes) -> dict[str, Any]:
    """
    @param answer: what an info port sent.
    @return: the JSON object it holds.
    @raise InfoError: if it holds none.
    """
    try:
        info = json.loads(answer)
    except ValueError:
        shown = answer[:60]
        raise InfoError(f"not an info port: its answer is {shown!r}") from None
    if not isinstance(info, dict):
        raise InfoError(f"not an info port: its answer is {answer[:60]!r}")
    return info


class InfoClientProtocol(Protocol):
    """
    Read an info port's answer until the server closes.

    @ivar finished: fires with the bytes received, or fails with
        L{InfoError} if more than L{MAX_ANSWER} come.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self.finished: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        """
        Keep C{data}, or give up past L{MAX_ANSWER} bytes.
        """
        self._chunks.append(data)
        self._size += len(data)
        if self._size > MAX_ANSWER and not self.finished.called:
            self.finished.errback(InfoError(f"answer over {MAX_ANSWER} bytes"))
            self.transport.abortConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The server closed: the answer is complete.
        """
        if not self.finished.called:
            self.finished.callback(b"".join(self._chunks))


async def fetch_info(
    reactor: IReactorTime, endpoint: IStreamClientEndpoint, timeout: float
) -> dict[str, Any]:
    """
    Connect to a stream info port and read its answer.

    @param reactor: the reactor.
    @param endpoint: where the info port is.
    @param timeout: seconds for connecting and the whole answer.
    @return: the answer.
    @raise EchoTimeout: if it did not all come within C{timeout}.
    @raise InfoError: if it is not an info line.
    @raise twisted.internet.error.ConnectError: if the connection failed.
    """
    protocol = InfoClientProtocol()

    async def whole() -> bytes:
        await connectProtocol(endpoint, protocol)
        return await protocol.finished

    answer: Deferred[bytes] = Deferred.fromCoroutine(whole())

    def timed_out(result: object, timeout: float) -> object:
        if isinstance(result, Failure) and result.check(CancelledError):
            if protocol.transport is not None:
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
            return Failure(EchoTimeout(timeout, f"no answer within {timeout:g} s"))
        return result

    answer.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    return parse_info(await answer)


class UDPInfoClientProtocol(UDPEchoClientProtocol):
    """
    Send a padded request to a UDP info port, resending it after each
    C{timeout}, and take the first datagram the server sends back.
    """

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        @param datagram: the server's answer.
        @param addr: where it came from; anything not from the server is
            ignored.
        """
        if self.finished.called or not self._from_server(addr):
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.finished.callback(datagram)


async def fetch_info_udp(
    reactor: Any, host: str, port: int, timeout: float = 2.0, retries: int = 3
) -> dict[str, Any]:
    """
    Ask a UDP info port about our datagrams.

    @param reactor: an L{IReactorUDP} and L{IReactorTime} provider.
    @param host: an IP address or a host name.
    @param port: the info port.
    @param timeout: seconds to wait for each try.
    @param retries: tries after the first.
    @return: the answer.
    @raise EchoTimeout: if no try was answered.
    @raise InfoError: if the answer is not an info line.
    """
    address = await _resolve(reactor, host, timeout)
    request = b"?" * REQUEST_SIZE
    protocol = UDPInfoClientProtocol(
        request, str(address), port, reactor, timeout, retries
    )
    interface = "::" if address.version == 6 else "0.0.0.0"
    listening = reactor.listenUDP(
        0, protocol, interface=interface, maxPacketSize=RECEIVE_SIZE
    )
    try:
        answer = await protocol.finished
    finally:
        await maybeDeferred(listening.stopListening)
    return parse_info(answer)


def _address(fields: Any) -> str:
    """
    @param fields: an address as the info line gives it.
    @return: it for people: C{127.0.0.5 port 40000}, C{[::1] port 9000}, a
        UNIX socket's path (C{unnamed} when it has none).
    """
    if not isinstance(fields, dict):
        return "-"
    if "host" in fields:
        host = str(fields["host"])
        if ":" in host:
            host = f"[{host}]"
        return f"{host} port {fields.get('port')}"
    if "path" in fields:
        return f"unix {fields['path'] or '(unnamed)'}"
    return str(fields.get("address", fields))


def readable(info: dict[str, Any]) -> str:
    """
    @param info: an info port's answer.
    @return: it as aligned lines, for people (no trailing newline).
    """
    rows: list[tuple[str, str]] = [("client", _address(info.get("client")))]
    for key in ("peer", "local"):
        if key in info:
            rows.append((key, _address(info[key])))
    rows.append(("transport", str(info.get("transport", "-"))))
    proxy = info.get("proxy")
    if isinstance(proxy, dict):
        rows.append(
            (
                "proxy",
                f"PROXY v{proxy.get('version')} {proxy.get('command')} "
                f"({proxy.get('family')})",
            )
        )
        for key in ("source", "destination"):
            if proxy.get(key) is not None:
                rows.append((f"  {key}", _address(proxy[key])))
        for name, value in (proxy.get("tlvs") or {}).items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            rows.append((f"  {name}", str(value)))
    tls = info.get("tls")
    if isinstance(tls, dict):
        rows.append(("tls", f"{tls.get('version')} {tls.get('cipher')}"))
        for key in ("sni", "alpn", "client_certificate"):
            if tls.get(key) is not None:
                rows.append((f"  {key}", str(tls[key])))
    rows.append(("time", str(info.get("time", "-"))))
    rows.append(("server", f"echotwist {info.get('version', '?')}"))
    known = {"client", "peer", "local", "transport", "proxy", "tls", "time"}
    for key, value in info.items():
        if key not in known | {"version"}:
            rows.append((key, json.dumps(value)))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
