"""
The C{echotwist-epoll} reactor for C{twistd --reactor}: see
L{echotwist.reactor}.
"""

from twisted.application.reactors import Reactor

echotwist_epoll = Reactor(
    "echotwist-epoll",
    "echotwist.reactor",
    "epoll without per-event log context (faster for echotwist)",
)
