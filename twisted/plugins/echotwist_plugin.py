"""
The twistd plugin for C{twistd echo}; everything else is in L{echotwist.tap}.
"""

from twisted.application.service import ServiceMaker

echo = ServiceMaker(
    "echotwist",
    "echotwist.tap",
    "An echo service (RFC 862): every byte received is sent back.",
    "echo",
)
