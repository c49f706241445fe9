"""
An echo client over UDP: send one datagram, wait for it to come back, send
it again after each C{timeout} up to C{retries} times.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure

from echotwist.client.errors import EchoMismatch, EchoTimeout

#: The largest payload of one UDP datagram over IPv4.
MAX_DATAGRAM = 65507
#: Bytes the client's port reads per datagram: any UDP payload, whole.
RECEIVE_SIZE = 65535


class UDPEchoClientProtocol(DatagramProtocol):
    """
    Send C{data} to one address and wait for the same bytes back.

    Addresses are compared as addresses, not text: a reply from C{::1}
    answers a datagram sent to C{::0001}.

    The socket is not connected: on Linux, Twisted's UDP port takes the
    ICMP error a connected socket reports on read as fatal and stops, so a
    closed server port simply means no reply, and L{EchoTimeout}.

    @ivar finished: fires with the echo, or fails with L{EchoTimeout} after
        the last try, L{EchoMismatch} for a different reply, or the
        L{OSError} of a datagram the OS would not send (to a broadcast
        address, for instance).
    @ivar attempts: datagrams sent so far.
    """

    def __init__(
        self,
        data: bytes,
        host: str,
        port: int,
        clock: IReactorTime,
        timeout: float,
        retries: int,
    ) -> None:
        self._data = data
        self._address = ipaddress.ip_address(host)
        self._port = port
        self._clock = clock
        self._timeout = timeout
        self._retries = retries
        self._timer: IDelayedCall | None = None
        self.attempts = 0
        self.finished: Deferred[bytes] = Deferred()

    def startProtocol(self) -> None:
        """
        Send the first try.
        """
        self._send()

    def _send(self) -> None:
        """
        Send a try and arm the timer for the next, or give up.
        """
        if self.finished.called:
            return
        if self.attempts > self._retries:
            total = self._timeout * self.attempts
            tries = "1 try" if self.attempts == 1 else f"{self.attempts} tries"
            message = f"no complete echo within {total:g} s ({tries})"
            self._done(EchoTimeout(total, message))
            return
        self.attempts += 1
        self._timer = self._clock.callLater(self._timeout, self._send)
        try:
            self.transport.write(self._data, (str(self._address), self._port))  # type: ignore[union-attr]
        except OSError as e:
            self._done(e)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Check the reply against what was sent.

        @param datagram: the reply.
        @param addr: where it came from; anything not from the server is
            ignored.
        """
        if self.finished.called or not self._from_server(addr):
            return
        if datagram == self._data:
            self._done(None)
        else:
            self._done(EchoMismatch.between(self._data, datagram))

    def _from_server(self, addr: Any) -> bool:
        """
        @param addr: where a datagram came from.
        @return: whether that is the server's address and port.
        """
        return bool(
            addr[1] == self._port and ipaddress.ip_address(addr[0]) == self._address
        )

    def _done(self, error: Exception | None) -> None:
        """
        Stop the timer and fire L{finished}.

        @param error: L{None} for success, else why the echo failed.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if error is None:
            self.finished.callback(self._data)
        else:
            self.finished.errback(error)


async def echo_udp(
    reactor: Any,
    host: str,
    port: int,
    data: bytes,
    timeout: float = 2.0,
    retries: int = 3,
) -> bytes:
    """
    Send C{data} as one datagram to the echo service at C{host}:C{port}.

    @param reactor: an L{IReactorUDP} and L{IReactorTime} provider.
    @param host: an IP address, or a name resolved to an IPv4 address.
    @param port: the server's UDP port.
    @param data: the payload, at most L{MAX_DATAGRAM} bytes.
    @param timeout: seconds to wait for each try.
    @param retries: tries after the first.
    @return: the echo.
    @raise EchoTimeout: if no try came back, or C{host} had no address
        within C{timeout}.
    @raise EchoMismatch: if the reply differs.
    @raise OSError: if the OS would not send the datagram.
    @raise twisted.internet.error.DNSLookupError: if C{host} has no address.
    @raise twisted.internet.error.CannotListenError: if no UDP port could be
        opened.
    """
    address = await _resolve(reactor, host, timeout)
    protocol = UDPEchoClientProtocol(
        data, str(address), port, reactor, timeout, retries
    )
    interface = "::" if address.version == 6 else "0.0.0.0"
    listening = reactor.listenUDP(
        0, protocol, interface=interface, maxPacketSize=RECEIVE_SIZE
    )
    try:
        return await protocol.finished
    finally:
        await maybeDeferred(listening.stopListening)


async def _resolve(
    reactor: Any, host: str, timeout: float
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """
    @param reactor: an L{IReactorTime} that can C{resolve} names.
    @param host: an IP address or a host name.
    @param timeout: seconds allowed for resolving a name.
    @return: C{host}'s address.
    @raise EchoTimeout: if no address came within C{timeout}.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    resolving: Deferred[str] = reactor.resolve(host)

    def timed_out(result: object, timeout: float) -> object:
        if isinstance(result, Failure) and result.check(CancelledError):
            message = f"no address for {host} within {timeout:g} s"
            return Failure(EchoTimeout(timeout, message))
        return result

    resolving.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    return ipaddress.ip_address(await resolving)
