"""
What every echotwist program's C{--version} prints.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import echotwist


def version_line(program: str) -> str:
    """
    @param program: the program's name, as its usage line gives it.
    @return: C{PROGRAM (echotwist 1.0.0, Twisted 26.10.0)}; Twisted's version
        only where it is installed (the reference programs don't need it).
    """
    try:
        from twisted import __version__ as twisted_version
    except ImportError:  # pragma: no cover - Twisted is a dependency
        return f"{program} (echotwist {echotwist.__version__})"
    return f"{program} (echotwist {echotwist.__version__}, Twisted {twisted_version})"


def print_version(program: str) -> NoReturn:
    """
    Print L{version_line} and exit 0, for a L{twisted.python.usage.Options}
    C{opt_version}.

    @param program: the program's name.
    """
    print(version_line(program))
    sys.exit(0)
