"""
The scripts in C{benchmarks/} that print figures for people run, short, and
say what they measured (the figures themselves are not asserted: the
machines are shared and noisy).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import native_or_skip
from twistd_support import environment

ROOT = Path(__file__).resolve().parent.parent


def trees(*args: str) -> subprocess.CompletedProcess[str]:
    """
    Run C{benchmarks/trees.py} with C{args}.
    """
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "trees.py"), *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=300,
        check=False,
    )


def test_trees() -> None:
    """
    C{benchmarks/trees.py} loads (or storms) C{twistd echo} from each tree
    in turn, one line per run with its server CPU per echo (or connection)
    and share of a core, then a median ratio per workload and tree against
    the first.
    """
    native_or_skip()
    if not (ROOT / ".venv" / "bin" / "twistd").exists():
        pytest.skip("this checkout has no .venv (make .venv/.stamp)")
    result = trees(
        "--tree",
        f"a={ROOT}",
        "--tree",
        f"b={ROOT}",
        "--workloads",
        "3x64,storm:20",
        "--rounds",
        "2",
        "--duration",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    runs = re.findall(
        r"^\s+(\d)  (\S+)\s+([ab])\s+[\d,]+\s+(\d+\.\d\d)\s+\d+$",
        result.stdout,
        re.MULTILINE,
    )
    assert [(r, w) for r, w, _, _ in runs] == [
        (r, w) for r in "12" for w in ("3x64", "3x64", "storm:20", "storm:20")
    ]
    # Each round starts one tree further on.
    assert [t for _, _, t, _ in runs] == list("abab" + "baba")
    assert all(float(us) > 0 for *_, us in runs)
    for workload in ("3x64", "storm:20"):
        assert re.search(
            rf"^{workload}: b/a median \d+\.\d{{3}} \(min .*, 2 rounds\)$",
            result.stdout,
            re.MULTILINE,
        )


@pytest.mark.parametrize(
    ("tree", "message"),
    [("nameless", "give NAME=PATH"), ("x=/nonexistent", "no .venv/bin/twistd")],
)
def test_treesBadTree(tree: str, message: str) -> None:
    """
    A C{--tree} that is not NAME=PATH, or names a tree with no virtual
    environment, is a one-line usage error.
    """
    result = trees("--tree", tree)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
