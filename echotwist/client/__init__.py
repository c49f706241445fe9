"""
An echo client on Twisted endpoints, and a ping-style prober built on it.

The library, one job per module:

  - L{echotwist.client.echo}: one echo over a stream endpoint (C{echo},
    C{start_echo});
  - L{echotwist.client.udp}: one echo over UDP (C{echo_udp});
  - L{echotwist.client.errors}: why an echo failed;
  - L{echotwist.client.closing}: a clean close, as C{nc -N} does;
  - L{echotwist.client.resolver}: host names, for the command line;
  - L{echotwist.client.endpoints}: endpoints from the command line's words;
  - L{echotwist.client.oneshot}: the command line's one-message run;
  - L{echotwist.client.exits}: exit statuses;

and the prober (C{python -m echotwist.client -c N}) in the modules its
docstring names, L{echotwist.client.probe} first.

C{python -m echotwist.client} (L{echotwist.client.__main__}) is only the
command line.
"""

from __future__ import annotations

from echotwist.client.echo import EchoClientProtocol, echo, start_echo
from echotwist.client.errors import (
    EchoClosedEarly,
    EchoError,
    EchoMismatch,
    EchoTimeout,
    EchoTLSFailed,
)

__all__ = [
    "EchoClientProtocol",
    "EchoClosedEarly",
    "EchoError",
    "EchoMismatch",
    "EchoTLSFailed",
    "EchoTimeout",
    "echo",
    "start_echo",
]
