"""
One probe's result, as the prober reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FINAL", "ProbeResult", "Status"]

#: What became of a probe, or of a reply: C{ok} echoed exactly; C{lost} no
#: reply within the timeout; C{corrupt} a reply that differs (or was cut
#: short); C{late} a reply after its probe was given up; C{duplicate} a
#: second reply to one probe; C{refused} the server's port refused it (TCP
#: reset, or ICMP port unreachable for UDP); C{error} anything else (a
#: connection that dropped, a TLS failure, a datagram the OS won't send).
Status = Literal["ok", "lost", "corrupt", "late", "duplicate", "refused", "error"]
#: The statuses that settle a probe: each probe gets exactly one of these;
#: C{late} and C{duplicate} are extra reports about a settled probe.
FINAL = frozenset({"ok", "lost", "corrupt", "refused", "error"})


@dataclass(frozen=True)
class ProbeResult:
    """
    What became of one probe (or one extra reply to it).

    @ivar seq: the probe's sequence number, from 1 (0 for a reply that
        can't be matched to any probe).
    @ivar status: see L{Status}.
    @ivar size: the probe's bytes.
    @ivar address: where it went, as lines name it (C{127.0.0.1:9000}).
    @ivar time: when it was settled, in seconds since the epoch (by the
        reactor's clock).
    @ivar rtt: seconds from sending to the whole echo back, if it came.
    @ivar connect: seconds to connect, where this probe connected.
    @ivar handshake: seconds of the TLS handshake, where this probe did one.
    @ivar reordered: an exact reply that came after a later probe's.
    @ivar detail: what went wrong, in words.
    """

    seq: int
    status: Status
    size: int
    address: str
    time: float
    rtt: float | None = None
    connect: float | None = None
    handshake: float | None = None
    reordered: bool = False
    detail: str = ""

    @property
    def final(self) -> bool:
        """
        Whether this settles its probe.
        """
        return self.status in FINAL
