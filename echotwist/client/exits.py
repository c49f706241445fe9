"""
The client's exit statuses, and the exception that ends a run with one.

One message: 0 echoed; 1 cannot connect; 2 bad arguments; 3 timeout; 4 the
echo differs or is short. Probing (as ping): 0 every probe came back exact;
4 some probe came back corrupted (or truncated); 5 some probes lost; 6 every
probe lost (or refused); 1 and 2 as for one message.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CONNECT = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_MISMATCH = 4
EXIT_SOME_LOST = 5
EXIT_ALL_LOST = 6

#: The program's name in its messages.
PROG = "echotwist-client"

#: The exit statuses as the help and the docs list them.
ONE_SHOT_STATUSES = (
    "0 echoed; 1 cannot connect; 2 bad arguments; 3 timeout; 4 echo differs or is short"
)
PROBE_STATUSES = (
    "0 every probe came back exact; 4 some came back corrupted or short; "
    "5 some lost; 6 all lost; 1 cannot start (name or --bind); "
    "2 bad arguments"
)


class ClientExit(Exception):
    """
    End the command with a one-line message and an exit code.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
