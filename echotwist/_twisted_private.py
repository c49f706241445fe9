"""
Every private or undocumented Twisted name echotwist relies on, read here and
nowhere else.

Twisted promises nothing about these names: any release may rename, drop or
change one.  Each is used only in this module, and
L{echotwist.test.test_twisted_private} has a canary test per name that fails,
naming it and what in echotwist depends on it, when the installed Twisted no
longer behaves as this module expects.  Review this module against a new
Twisted release before raising the upper end of the supported range.

The names, by what relies on them:

  - L{twisted.internet.tcp.Connection}'s write buffer (C{dataBuffer},
    C{offset}, C{_tempDataLen}) and its C{socket}: L{send} writes straight
    to the socket when nothing is buffered (the fast path's writes), and
    L{unsent_bytes} counts what an echo left unsent (the disconnect log
    line, the idle timeout's abort).
  - C{Connection.TLS}: L{tls_started}, for the fast path to stay off TLS.
  - The identity of C{Connection.doRead} and its replacement per instance:
    L{has_plain_do_read}, L{replace_do_read}, L{forget_do_read}, for the
    fast path's reads.
  - L{twisted.internet.epollreactor.EPollReactor.doPoll}'s body (C{_poller},
    C{_selectables}, C{_doReadOrWrite}): L{EPollReactorWithoutLogContext},
    a copy of it without the log context per event, the echotwist-epoll
    reactor.
  - L{twisted.internet.tcp.Port}'s accept-error log formats and its
    C{_logger}: L{ACCEPT_CLOSED}, L{ACCEPT_FAILED}, L{ACCEPT_QUIET} and
    L{route_port_log}, for the summary of descriptor exhaustion.
  - L{twisted.application.internet.StreamServerEndpointService}'s
    C{_raiseSynchronously}: L{raise_listen_failures}, so that a port that
    can't listen stops the start instead of leaving a process with no
    listener.
  - C{tcp.Port.socket} and endpoints that listen synchronously:
    L{listening_socket} and L{listen_now}, for C{--workers} to hand its
    sockets to the workers.
  - The order in which a reactor and twistd handle signals:
    L{replace_sigterm_handler}, for the graceful shutdown's exit status 0.
  - L{twisted.python.usage.Options}' C{shortOpt} and C{longOpt}, the
    getopt lists it parses with: L{option_given}, for C{twistd -n echo} to
    write no pidfile unless C{--pidfile} was given.

Names the hot path reads are bound at import time, and L{send} is itself
defined here: reading them costs no Python call per echo beyond the ones
the fast path made before.
"""

from __future__ import annotations

import errno
import getopt
import signal
import socket
from collections.abc import Callable
from typing import Any, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
)
from twisted.internet.tcp import Connection
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.failure import Failure

# tcp.Connection: the fast path and the disconnect count.


def send(connection: Connection, data: bytes) -> None:
    """
    Write C{data} to C{connection}, straight to its socket when nothing is
    buffered, else (and for whatever the socket does not take) through
    C{connection.write}, with its buffering and backpressure.

    Only what a connection's own life changes is checked: something
    buffered (Twisted's private C{dataBuffer} and C{_tempDataLen}), closing
    or closed.  Neither TLS (see L{tls_started}) nor a shut sending side
    (C{loseWriteConnection}) can come about unless the protocol asks for it.

    @param connection: a TCP or UNIX connection with no TLS started, whose
        protocol neither starts TLS nor calls C{loseWriteConnection}.
    @param data: the bytes to write, after any written before.
    """
    if (
        connection.dataBuffer
        or connection._tempDataLen
        or not connection.connected
        or connection.disconnecting
    ):
        connection.write(data)
        return
    try:
        sent = connection.socket.send(data)
    except OSError:
        # Full (EAGAIN), interrupted, or broken: transport.write buffers
        # it, and meets any error itself on its next write and closes.
        sent = 0
    if sent < len(data):
        connection.write(data[sent:] if sent else data)


def unsent_bytes(transport: object) -> int:
    """
    @param transport: a transport, connected or lost.
    @return: bytes written to it and still in its buffer (0 where the
        transport does not keep Twisted's C{FileDescriptor} buffer).
    """
    buffered = getattr(transport, "dataBuffer", b"")
    pending = getattr(transport, "_tempDataLen", 0)
    offset = getattr(transport, "offset", 0)
    return max(0, len(buffered) - offset + pending)


def tls_started(connection: Connection) -> bool:
    """
    @param connection: a TCP or UNIX connection.
    @return: whether TLS has been started on it (its C{TLS} flag).
    """
    return bool(connection.TLS)


#: Twisted's plain C{recv} C{doRead}, which a connection class that reads
#: differently (UNIX's, which also receives descriptors) overrides.
_PLAIN_DO_READ = Connection.doRead


def has_plain_do_read(connection: Connection) -> bool:
    """
    @param connection: a TCP or UNIX connection.
    @return: whether its class reads with L{Connection.doRead} itself.
    """
    return type(connection).doRead is _PLAIN_DO_READ


def replace_do_read(connection: Connection, do_read: Callable[[], object]) -> None:
    """
    Have the reactor call C{do_read} instead of the connection's own
    C{doRead}: reactors look C{doRead} up on the instance each time.

    @param connection: a connection L{has_plain_do_read} accepted.
    @param do_read: what to call when its socket is readable; it returns
        what C{doRead} returns.
    """
    connection.doRead = do_read  # type: ignore[method-assign,assignment]


def forget_do_read(connection: object) -> None:
    """
    Undo L{replace_do_read} (or nothing, if it was not called).

    @param connection: the connection.
    """
    vars(connection).pop("doRead", None)


# EPollReactor.doPoll: the echotwist-epoll reactor.


class EPollReactorWithoutLogContext(EPollReactor):
    """
    L{EPollReactor} without L{twisted.python.log.callWithLogger} per event.

    Its C{doPoll} is a copy of L{EPollReactor.doPoll} (with the same private
    C{_poller}, C{_selectables} and C{_doReadOrWrite}) whose wrap of each
    event is a plain C{try}; a canary test notices when Twisted's own
    changes, so the copy is reviewed.
    """

    _log = Logger()

    def doPoll(self, timeout: float | None) -> None:
        """
        Wait for events and dispatch each to its selectable.

        @param timeout: seconds to wait at most, L{None} for no limit.
        """
        try:
            events = self._poller.poll(
                -1 if timeout is None else timeout, len(self._selectables)
            )
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure(
                    "Error handling an event on {selectable}", selectable=selectable
                )

    doIteration = doPoll


# tcp.Port: accept errors, and the sockets workers share.

#: The C{log_format} of L{twisted.internet.tcp.Port}'s event for each
#: connection it accepts and closes at once while out of descriptors.
ACCEPT_CLOSED = "EMFILE recovery: Closed socket from {address}"

#: The C{log_format} of its event for a connection it could not accept.
ACCEPT_FAILED = "Could not accept new connection ({acceptError})"

#: The C{log_format}s of the events around an C{EMFILE} recovery.
ACCEPT_QUIET = frozenset(
    {
        "EMFILE encountered; releasing reserved file descriptor.",
        "Re-reserving EMFILE recovery file descriptor.",
    }
)


def route_port_log(port: object, observer: ILogObserver) -> None:
    """
    Send a listening port's own log events (those with the formats above)
    to C{observer}, keeping their namespace.

    Twisted's ports log through a private C{_logger}; a port without one is
    left alone.

    @param port: a listening port.
    @param observer: where its events go from now on.
    """
    logger: Any = getattr(port, "_logger", None)
    if isinstance(logger, Logger):
        port._logger = Logger(  # type: ignore[attr-defined]
            namespace=logger.namespace, source=port, observer=observer
        )


def listening_socket(port: IListeningPort) -> socket.socket:
    """
    @param port: a port a TCP, TCP6, UNIX or systemd endpoint listened on.
    @return: its listening socket.
    """
    return cast(socket.socket, port.socket)  # type: ignore[attr-defined]


def listen_now(
    endpoint: IStreamServerEndpoint, factory: IProtocolFactory, description: str
) -> IListeningPort:
    """
    Listen on an endpoint that listens at once (TCP, TCP6, UNIX, systemd:
    their C{listen} fires before it returns, though endpoints promise only a
    L{Deferred}).

    @param endpoint: the endpoint.
    @param factory: the factory to listen with.
    @param description: the endpoint's description, for the error.
    @return: the listening port.
    @raise RuntimeError: if the endpoint did not listen at once.
    @raise Exception: whatever the endpoint failed with.
    """
    outcome: list[IListeningPort | Failure] = []
    listening: Deferred[IListeningPort] = endpoint.listen(factory)
    listening.addBoth(outcome.append)
    if not outcome:
        raise RuntimeError(f"{description!r} did not listen at once")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


# StreamServerEndpointService: failures to listen.


def raise_listen_failures(service: StreamServerEndpointService) -> None:
    """
    Make C{service}'s start raise when its endpoint fails to listen at once,
    rather than only log it, as L{twisted.application.strports.service}
    does (with the same private C{_raiseSynchronously}).

    @param service: the listening service.
    """
    service._raiseSynchronously = True


# Signals: the graceful shutdown.


def replace_sigterm_handler(
    reactor: IReactorCore, handler: Callable[[int, Any], None]
) -> None:
    """
    Handle SIGTERM with C{handler} instead of the reactor's own, from the
    moment the reactor runs.

    The reactor installs its signal handlers as it starts, before the calls
    C{callWhenRunning} schedules, so C{handler} replaces its handler.  That
    handler records the signal (the reactor's private C{_exitSignal}), and
    twistd, once the reactor stops, kills itself with it: a supervisor sees
    a death by SIGTERM rather than exit status 0.

    @param reactor: the reactor.
    @param handler: the new handler, as for L{signal.signal}.
    """
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, handler)


# usage.Options: which options were given.


def option_given(options: usage.Options, name: str, argv: list[str]) -> bool:
    """
    Whether C{argv}, the arguments C{options} parsed, gives the long option
    C{name} itself (rather than leaving its default), abbreviated or not.

    L{usage.Options} keeps no record of it; this parses C{argv} again with
    the same getopt lists (C{shortOpt}, C{longOpt}), up to the first
    argument that is not an option (a subcommand).

    @param options: options that have parsed C{argv}.
    @param name: the long option's name, without dashes.
    @param argv: the arguments parsed.
    @return: whether C{--name} is among them.
    """
    try:
        given, _ = getopt.getopt(argv, options.shortOpt, options.longOpt)
    except (getopt.GetoptError, AttributeError):
        return False
    return any(flag == f"--{name}" for flag, _ in given)
