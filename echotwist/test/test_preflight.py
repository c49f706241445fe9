"""
Tests for L{echotwist.server.preflight} and the one-line listener errors of
L{echotwist.server.endpoints}.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile

from twisted.internet.error import CannotListenError
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from echotwist.server.endpoints import ADVICE, ListenerError, failure_reason
from echotwist.server.preflight import check_stream, check_udp, fields, udp_value

#: What would work, after a port in use.
IN_USE = ADVICE[errno.EADDRINUSE]


class FailureReasonTests(SynchronousTestCase):
    """
    Tests for L{failure_reason}.
    """

    def test_lockFile(self) -> None:
        """
        The C{.lock} symlink Twisted's UNIX endpoint makes is named by the
        file at fault, not by the pid it links to.
        """
        error = FileNotFoundError(
            2, "No such file or directory", "123", None, b"/x/e.lock"
        )
        self.assertEqual(failure_reason(error), "No such file or directory: /x/e.lock")

    def test_cannotListen(self) -> None:
        """
        A L{CannotListenError} is said by its socket error.
        """
        error = CannotListenError("", 9, OSError(98, "Address already in use"))
        self.assertEqual(failure_reason(error), f"Address already in use: {IN_USE}")

    def test_other(self) -> None:
        """
        Anything else is its message, or its type without one.
        """
        self.assertEqual(failure_reason(ValueError("bad")), "bad")
        self.assertEqual(failure_reason(RuntimeError()), "RuntimeError")

    def test_listenerErrorIsUsageError(self) -> None:
        """
        A L{ListenerError} names the option and value, and is a
        L{UsageError} for those who parse options without twistd.
        """
        error = ListenerError("metrics", "tcp:9", "Address already in use")
        self.assertIsInstance(error, UsageError)
        self.assertEqual(str(error), "--metrics 'tcp:9': Address already in use")


class FieldsTests(SynchronousTestCase):
    """
    Tests for L{fields}.
    """

    def test_fields(self) -> None:
        """
        Fields split on unquoted colons; C{name=value} ones are named.
        """
        self.assertEqual(
            fields(r"tcp6:9000:interface=\:\:1:backlog=5"),
            (["tcp6", "9000"], {"interface": "::1", "backlog": "5"}),
        )
        self.assertEqual(fields("unix:address=/a=b"), (["unix"], {"address": "/a=b"}))


class CheckTests(SynchronousTestCase):
    """
    Tests for L{check_stream} and L{check_udp}.
    """

    def test_tcpInUse(self) -> None:
        """
        A TCP port another socket listens on is named with the reason.
        """
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            description = f"tcp:{port}:interface=127.0.0.1"
            error = self.assertRaises(ListenerError, check_stream, description)
        self.assertEqual(
            str(error), f"--port {description!r}: Address already in use: {IN_USE}"
        )

    def test_tcpFree(self) -> None:
        """
        A free port passes, and is free again after the check.
        """
        check_stream("tcp:0:interface=127.0.0.1", "metrics")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        check_stream(f"haproxy:tcp:{port}:interface=127.0.0.1")
        with socket.create_server(("127.0.0.1", port)):
            pass

    def test_udpInUse(self) -> None:
        """
        A UDP port already bound is named as C{--udp} typed it.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            error = self.assertRaises(ListenerError, check_udp, "127.0.0.1", port)
        self.assertEqual(
            str(error), f"--udp '127.0.0.1:{port}': Address already in use: {IN_USE}"
        )

    def test_udpValue(self) -> None:
        """
        C{--udp} values are spelt as typed.
        """
        self.assertEqual(udp_value("", 7), "7")
        self.assertEqual(udp_value("::1", 7), "[::1]:7")

    def test_unixDirectory(self) -> None:
        """
        A UNIX socket in a directory that is missing, or is a file, is
        refused naming the directory.
        """
        with tempfile.TemporaryDirectory() as directory:
            missing = os.path.join(directory, "gone", "echo.sock")
            error = self.assertRaises(ListenerError, check_stream, f"unix:{missing}")
            self.assertIn("No such file or directory: ", str(error))
            self.assertIn(os.path.dirname(missing), str(error))
            afile = os.path.join(directory, "file")
            open(afile, "w").close()
            error = self.assertRaises(
                ListenerError, check_stream, f"unix:{afile}/echo.sock"
            )
            self.assertIn("Not a directory", str(error))
            check_stream(f"unix:{directory}/echo.sock:backlog=5")

    def test_otherKindsLeftAlone(self) -> None:
        """
        Kinds the check does not know are left to their start.
        """
        check_stream("systemd:domain=INET:index=0")
