"""
Fakes and helpers the unit tests share.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer


@implementer(IOpenSSLContextFactory)
class BareTLSContext:
    """
    A TLS context factory without certificates: enough to start TLS.
    """

    def getContext(self) -> SSL.Context:
        """
        @return: a bare context.
        """
        return SSL.Context(SSL.TLS_METHOD)
