"""
Probes over UDP: L{UDPPath}.

Each datagram starts with a L{HEADER}: a run identifier, the probe's
sequence number and its send time, then the pattern to the size asked. So
every reply names its probe: an exact reply to a probe still awaited is
C{ok} (flagged reordered if a later probe's came first), to a probe already
answered a C{duplicate}, to a probe given up C{late}; a reply that differs
from its probe is C{corrupt}, and one whose header is not ours matches no
probe (reported with seq 0). Several probes may be in flight at once.

The socket is connected to the server, so an ICMP port unreachable comes
back as C{ECONNREFUSED}, and the probe is reported C{refused} at once, not
after its timeout. With C{spread}, each probe goes from a socket (a source
port) of its own, closed once the probe is settled, to cover the paths a
load balancer or an ECMP/LAG hash spreads flows over.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import DatagramProtocol

from echotwist.client.probe import BasePath, Report, cancel
from echotwist.client.result import Status
from echotwist.client.udp import RECEIVE_SIZE

__all__ = ["HEADER", "MAX_PROBE", "UDPPath", "stamp"]

#: A probe's header: run identifier, sequence number, send time (ns).
HEADER = struct.Struct("!IQQ")
#: The largest UDP probe: one IPv4 datagram's payload.
MAX_PROBE = 65507
#: Probes remembered after they are settled, to tell late and duplicate
#: replies apart from corrupt ones.
REMEMBERED = 4096


def stamp(run: int, seq: int, sent_ns: int, payload: bytes) -> bytes:
    """
    @return: C{payload} with the header written over its first bytes.
    """
    return HEADER.pack(run, seq, sent_ns) + payload[HEADER.size :]


@dataclass(eq=False)
class _Sent:
    """
    A probe sent, until it is forgotten.
    """

    seq: int
    datagram: bytes
    sent_at: float
    timer: IDelayedCall | None = None
    state: str = "pending"  # then "answered" or "given up"
    port: Any = None


class _Socket(DatagramProtocol):
    """
    A connected UDP socket that hands what it hears to its path.
    """

    def __init__(self, path: UDPPath, seq: int | None = None) -> None:
        self._path = path
        self.seq = seq
        self.closing = False
        self.port: Any = None

    def startProtocol(self) -> None:
        """
        Connect to the server, so refusals come back.
        """
        self.port = self.transport
        self.transport.connect(self._path.host, self._path.port)  # type: ignore[union-attr]
        if self._path.mark is not None:
            self._path.mark(self.transport)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        A reply (a connected socket hears only the server).
        """
        self._path.received(datagram)

    def connectionRefused(self) -> None:
        """
        ICMP port unreachable: the server's port is closed.
        """
        self._path.refused(self.seq)

    def stopProtocol(self) -> None:
        """
        The port stopped. Unless we closed it, the reactor saw an error on
        the socket (an epoll reactor takes the C{ECONNREFUSED} an ICMP port
        unreachable leaves pending as the end of the port, before a read
        could report it): read the error while the socket is still open.
        """
        if self.closing:
            return
        sock = self.port.getHandle()
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._path.port_lost(self, error)


class UDPPath(BasePath):
    """
    Probes over UDP to one address and port.
    """

    def __init__(
        self,
        reactor: Any,
        host: str,
        port: int,
        timeout: float = 2.0,
        spread: bool = False,
        bind: tuple[str, int] | None = None,
        mark: Callable[[Any], None] | None = None,
    ) -> None:
        """
        @param reactor: an C{IReactorUDP} and C{IReactorTime}.
        @param host: the server's IP address (not a name).
        @param port: its UDP port.
        @param timeout: seconds each probe's reply gets.
        @param spread: a new source port for every probe.
        @param bind: the source address (and port, unless C{spread}).
        @param mark: called with each socket's transport (to set its TOS).
        """
        super().__init__(
            reactor, f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        )
        self.reactor = reactor
        self.host = host
        self.port = port
        self.timeout = timeout
        self.spread = spread
        self.mark = mark
        self._interface, self._bind_port = bind or (
            "::" if ":" in host else "0.0.0.0",
            0,
        )
        self._run = int.from_bytes(os.urandom(4), "big")
        self._sent: OrderedDict[int, _Sent] = OrderedDict()
        self._highest_answered = 0
        self._listening: Any = None

    def _listen(self, protocol: _Socket) -> Any:
        """
        @return: a new UDP port for C{protocol}.
        """
        return self.reactor.listenUDP(
            self._bind_port,
            protocol,
            interface=self._interface,
            maxPacketSize=RECEIVE_SIZE,
        )

    def send(self, seq: int, payload: bytes, report: Report) -> None:
        """
        Send one probe (see L{ProbePath.send}).
        """
        self._report = report
        now = self.reactor.seconds()
        datagram = stamp(self._run, seq, int(now * 1e9), payload)
        sent = _Sent(seq, datagram, now)
        self._sent[seq] = sent
        while len(self._sent) > REMEMBERED:
            _, old = self._sent.popitem(last=False)
            self._close_port(old)
        sent.timer = self.reactor.callLater(self.timeout, self._give_up, sent)
        try:
            if self.spread:
                sent.port = self._listen(_Socket(self, seq))
                port = sent.port
            else:
                if self._listening is None:
                    self._listening = self._listen(_Socket(self))
                port = self._listening
            port.write(datagram)
        except OSError as e:
            self._settle(sent, "error", detail=f"cannot send: {e.strerror or e}")

    def received(self, datagram: bytes) -> None:
        """
        Match a reply to its probe.
        """
        if self._stopped:
            return
        sent = None
        if len(datagram) >= HEADER.size:
            run, seq, _ = HEADER.unpack_from(datagram)
            if run == self._run:
                sent = self._sent.get(seq)
        if sent is None:
            self._extra(
                0, "corrupt", len(datagram), "a reply that matches no probe sent"
            )
            return
        now = self.reactor.seconds()
        rtt = now - sent.sent_at
        if datagram != sent.datagram:
            detail = _difference(sent.datagram, datagram)
            if sent.state == "pending":
                self._settle(sent, "corrupt", detail=detail)
            else:
                self._extra(sent.seq, "corrupt", len(datagram), detail)
        elif sent.state == "pending":
            reordered = sent.seq < self._highest_answered
            self._highest_answered = max(self._highest_answered, sent.seq)
            self._settle(sent, "ok", rtt=rtt, reordered=reordered)
        elif sent.state == "answered":
            self._extra(sent.seq, "duplicate", len(datagram), "", rtt)
        else:
            self._extra(
                sent.seq,
                "late",
                len(datagram),
                f"after its {self.timeout:g} s timeout",
                rtt,
            )

    def refused(self, seq: int | None) -> None:
        """
        The server's port refused a probe: C{seq}'s (with C{spread}), or
        else the latest one still awaited.
        """
        if seq is None:
            pending = [s for s in self._sent.values() if s.state == "pending"]
            sent = pending[-1] if pending else None
        else:
            sent = self._sent.get(seq)
        if sent is not None and sent.state == "pending":
            self._settle(sent, "refused", detail="port unreachable")

    def port_lost(self, protocol: _Socket, error: int) -> None:
        """
        A port the path did not close has stopped: a refusal, if that was
        the error; the next probe opens a new port.
        """
        if self._listening is not None and self._listening.protocol is protocol:
            self._listening = None
        if error == errno.ECONNREFUSED:
            self.refused(protocol.seq)
        elif protocol.seq is not None and protocol.seq in self._sent:
            sent = self._sent[protocol.seq]
            sent.port = None
            self._settle(sent, "error", detail=f"socket error: {os.strerror(error)}")

    def _give_up(self, sent: _Sent) -> None:
        """
        No reply in time: the probe is lost.
        """
        self._settle(sent, "lost", detail=f"no reply within {self.timeout:g} s")

    def _settle(
        self,
        sent: _Sent,
        status: Status,
        rtt: float | None = None,
        reordered: bool = False,
        detail: str = "",
    ) -> None:
        """
        Report C{sent}'s final result.
        """
        if sent.state != "pending" or self._stopped:
            return
        sent.state = "answered" if status in ("ok", "corrupt") else "given up"
        cancel(sent.timer)
        self._close_port(sent)
        assert self._report is not None
        self._result(
            sent.seq,
            status,
            len(sent.datagram),
            rtt=rtt,
            reordered=reordered,
            detail=detail,
        )

    def _extra(
        self, seq: int, status: Status, size: int, detail: str, rtt: float | None = None
    ) -> None:
        """
        Report a reply that does not settle a probe.
        """
        self._result(seq, status, size, rtt=rtt, detail=detail)

    def _close_port(self, sent: _Sent) -> None:
        """
        Close a probe's own port (with C{spread}).
        """
        if sent.port is not None:
            port, sent.port = sent.port, None
            port.protocol.closing = True
            port.stopListening()

    def stop(self) -> Deferred[None]:
        """
        Stop (see L{ProbePath.stop}): cancel timers, close the sockets.
        """
        self._stopped = True
        closing = []
        for sent in self._sent.values():
            cancel(sent.timer)
            if sent.port is not None:
                sent.port.protocol.closing = True
                closing.append(maybeDeferred(sent.port.stopListening))
                sent.port = None
        if self._listening is not None:
            self._listening.protocol.closing = True
            closing.append(maybeDeferred(self._listening.stopListening))
            self._listening = None
        done: Deferred[None] = DeferredList(closing).addCallback(lambda _: None)
        return done


def _difference(sent: bytes, reply: bytes) -> str:
    """
    @return: how C{reply} differs from C{sent}, in words.
    """
    if len(reply) != len(sent):
        return f"{len(reply)} bytes back of {len(sent)} sent"
    offset = next(i for i, (a, b) in enumerate(zip(sent, reply, strict=True)) if a != b)
    return f"differs at byte {offset}"
