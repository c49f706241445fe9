"""
The twistd plugin for C{twistd echo}; everything else is in L{echotwist.server.tap}.
"""

from twisted.application.service import ServiceMaker

echo = ServiceMaker(
    "echotwist",
    "echotwist.server.tap",
    "An echo service (RFC 862): every byte received is sent back.",
    "echo",
)
