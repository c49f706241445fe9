"""
The C{echotwist-epoll} reactor for C{twistd --reactor}: see
L{echotwist.server.reactor}.
"""

from twisted.application.reactors import Reactor

echotwist_epoll = Reactor(
    "echotwist-epoll",
    "echotwist.server.reactor",
    "epoll without per-event log context (faster for echotwist)",
)
