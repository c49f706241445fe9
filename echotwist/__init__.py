"""
echotwist: the echo service (RFC 862) on Twisted.
"""

__version__ = "1.0.0"
