"""
The tests README.rst and the pages in C{docs/} cite as evidence exist: each
C{tests/FILE.py::NAME} or C{echotwist/test/FILE.py::CLASS::NAME} names a
file, and test functions or classes in it, that are there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]
CITED = re.compile(r"``((?:tests|echotwist/test)/[\w/]+\.py)((?:::\w+)*)``")


def defined(path: Path) -> set[tuple[str, ...]]:
    """
    @return: the dotted paths of the classes and functions defined in
        C{path}, as tuples (C{("Tests", "test_x")}).
    """
    found: set[tuple[str, ...]] = set()

    def walk(node: ast.AST, prefix: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                found.add((*prefix, child.name))
                walk(child, (*prefix, child.name))

    walk(ast.parse(path.read_text(encoding="utf-8")), ())
    return found


def test_cited_tests_exist() -> None:
    """
    Every test a page cites is defined where it says.
    """
    missing = []
    cited = 0
    for page in PAGES:
        for match in CITED.finditer(page.read_text(encoding="utf-8")):
            cited += 1
            path = ROOT / match.group(1)
            names = tuple(filter(None, match.group(2).split("::")))
            if not path.is_file():
                missing.append(f"{page.name}: {match.group(1)}")
            elif names and names not in defined(path):
                missing.append(f"{page.name}: {match.group(0)}")
    assert cited > 0
    assert missing == []
