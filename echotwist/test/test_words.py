"""
Tests for L{echotwist.words}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from echotwist.words import counted, were


class CountedTests(SynchronousTestCase):
    """
    Tests for L{counted} and L{were}.
    """

    def test_counted(self) -> None:
        """
        One is singular; zero and more are plural, C{noun + s} unless told.
        """
        self.assertEqual(
            [counted(n, "connection") for n in (0, 1, 2)],
            ["0 connections", "1 connection", "2 connections"],
        )
        self.assertEqual(counted(3, "repeat", "repeats"), "3 repeats")
        self.assertEqual(counted(1, "datagram"), "1 datagram")

    def test_were(self) -> None:
        """
        C{was} for one, C{were} otherwise.
        """
        self.assertEqual([were(n) for n in (0, 1, 2)], ["were", "was", "were"])
