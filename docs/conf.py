"""
Sphinx configuration for echotwist's documentation.

The prose pages are reStructuredText in this folder; the API reference is
built from the epytext docstrings by pydoctor's Sphinx extension into
C{api/} of the HTML output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import echotwist

ROOT = Path(__file__).resolve().parent.parent

project = "echotwist"
author = "echotwist contributors"
copyright = "echotwist contributors"
release = echotwist.__version__
version = release

# intersphinx is required by the pydoctor extension; no mapping: the build
# must not need the network.
extensions = ["sphinx.ext.intersphinx", "pydoctor.sphinx_ext.build_apidocs"]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

exclude_patterns = ["_build"]
html_theme = "alabaster"

# The extension runs pydoctor with --quiet and turns each line it prints into
# a Sphinx warning, which -W makes an error: a docstring pydoctor cannot
# parse fails the build.
pydoctor_args = [
    "--project-name=echotwist",
    f"--project-version={release}",
    "--docformat=epytext",
    "--privacy=HIDDEN:echotwist.test",
    "--html-output={outdir}/api",
    f"--project-base-dir={ROOT}",
    str(ROOT / "echotwist"),
]
pydoctor_url_path = "api/"


class _SkipUnresolvedLinks(logging.Filter):
    """
    Drop pydoctor's "Cannot find link target" warnings: with no network for
    Twisted's and Python's inventories, every L{} to their names is one.
    The rest of its warnings (a docstring it cannot parse) still count.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Cannot find link target" not in record.getMessage()


logging.getLogger("sphinx.pydoctor.sphinx_ext.build_apidocs").addFilter(
    _SkipUnresolvedLinks()
)
