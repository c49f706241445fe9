"""
Host names for the command line: a resolver that answers at once for names
that can't be looked up, and every address of a name, of one family or both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from zope.interface import implementer

__all__ = ["EncodableNamesResolver", "resolve_addresses"]


@implementer(IHostResolution)
class _Unresolvable:
    """
    The finished resolution of a name that has no address.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """
        Nothing to stop: the resolution is over.
        """


@implementer(IHostnameResolver)
class EncodableNamesResolver:
    """
    Resolve names with another resolver, except that a name
    C{socket.getaddrinfo} can't encode (C{a..b}, a label over 63 characters)
    has no address, at once: Twisted's threaded resolver raises
    C{UnicodeError} in its thread for one, logs it as unhandled, and never
    answers.
    """

    def __init__(self, resolver: IHostnameResolver) -> None:
        """
        @param resolver: the resolver for every other name.
        """
        self._resolver = resolver

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        See L{IHostnameResolver.resolveHostName}.
        """
        try:
            hostName.encode("idna")
        except UnicodeError:
            resolution = _Unresolvable(hostName)
            resolutionReceiver.resolutionBegan(resolution)
            resolutionReceiver.resolutionComplete()
            return resolution
        return self._resolver.resolveHostName(
            resolutionReceiver, hostName, portNumber, addressTypes, transportSemantics
        )


@implementer(IResolutionReceiver)
class _Collect:
    """
    Collect a resolution's addresses, in order, without repeats.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.addresses: list[str] = []
        self.done: Deferred[list[str]] = Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """
        Nothing to do until the addresses come.
        """

    def addressResolved(self, address: IAddress) -> None:
        """
        Keep an address.
        """
        host = getattr(address, "host", None)
        if isinstance(host, str) and host not in self.addresses:
            self.addresses.append(host)

    def resolutionComplete(self) -> None:
        """
        Fire L{done} with the addresses, or fail if there were none.
        """
        if self.addresses:
            self.done.callback(self.addresses)
        else:
            self.done.errback(DNSLookupError(self.name))


def resolve_addresses(
    resolver: IHostnameResolver, host: str, family: int | None = None
) -> Deferred[list[str]]:
    """
    @param resolver: the resolver, e.g. C{reactor.nameResolver}.
    @param host: a host name or an IP address.
    @param family: 4 or 6 for addresses of that family only; L{None} for
        both.
    @return: a L{Deferred} firing with C{host}'s addresses in the order the
        resolver gave them, or failing with L{DNSLookupError} if it has none
        (of C{family}).
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if family is not None and literal.version != family:
            return Deferred.fromCoroutine(_fail(host, family))
        done: Deferred[list[str]] = Deferred()
        done.callback([str(literal)])
        return done
    types: list[type[IAddress]] = []
    if family in (None, 4):
        types.append(IPv4Address)
    if family in (None, 6):
        types.append(IPv6Address)
    receiver = _Collect(host)
    resolver.resolveHostName(receiver, host, 0, types)
    return receiver.done


async def _fail(host: str, family: int) -> list[str]:
    """
    @raise DNSLookupError: saying that C{host} is not of C{family}.
    """
    raise DNSLookupError(f"{host} is not an IPv{family} address")
