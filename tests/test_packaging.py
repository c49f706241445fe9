"""
The built distributions carry the twistd plugin the right way: the plugin
module in C{twisted/plugins/}, with no C{__init__.py} (which would shadow
Twisted's own package) and no C{dropin.cache}.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "twisted/plugins/echotwist_plugin.py"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    Build an sdist and a wheel from a copy of the source tree that has a
    stale C{dropin.cache} in its plugin folder, as a developer's tree does
    once twistd has run.
    """
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(
        ROOT,
        source,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".venv-*",
            "venv",
            "build",
            "_build",
            "dist",
            "*.egg-info",
            "__pycache__",
            "_trial_temp*",
            ".*_cache",
            ".hypothesis",
        ),
    )
    (source / "twisted/plugins/dropin.cache").write_bytes(b"stale")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def test_wheelCarriesPlugin(dist: Path) -> None:
    """
    The wheel has the plugin module and the typing marker, and neither a
    C{twisted/plugins/__init__.py} nor a C{dropin.cache}.
    """
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert PLUGIN in names
    assert "echotwist/py.typed" in names
    # The bench builds its native driver from this source.
    assert "echotwist/bench/driver.c" in names
    assert "twisted/plugins/__init__.py" not in names
    assert "twisted/__init__.py" not in names
    assert not [n for n in names if n.endswith("dropin.cache")]


def test_wheelCarriesEveryPackage(dist: Path) -> None:
    """
    Every package of the source tree is in the wheel (C{setup.cfg} lists
    them by hand: one left out, C{echotwist.client.output}, made C{pip
    install .}'s client fail with C{ModuleNotFoundError}).
    """
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packages = sorted(
        init.relative_to(ROOT).as_posix()
        for init in ROOT.glob("echotwist/**/__init__.py")
    )
    assert "echotwist/client/output/__init__.py" in packages
    assert [p for p in packages if p not in names] == []


def test_sdistCarriesPlugin(dist: Path) -> None:
    """
    The sdist has the plugin module and no C{dropin.cache}.
    """
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith(PLUGIN) for n in names)
    assert any(n.endswith("echotwist/bench/driver.c") for n in names)
    assert not [n for n in names if n.endswith("dropin.cache")]
    assert not [n for n in names if n.endswith("twisted/plugins/__init__.py")]


def test_installedWheelFoundByTwisted(dist: Path, tmp_path: Path) -> None:
    """
    Installed from the wheel alone (not from this source tree),
    L{getPlugins} finds C{echo} in the installed copy.
    """
    [wheel] = dist.glob("*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "from twisted.application.service import IServiceMaker\n"
        "from twisted.plugin import getPlugins\n"
        "import sys\n"
        "[m] = [m for m in getPlugins(IServiceMaker) if m.tapname == 'echo']\n"
        "import echotwist.server.tap, twisted.plugins.echotwist_plugin as p\n"
        "print(p.__file__); print(echotwist.server.tap.__file__)\n"
    )
    # -S skips site-packages' .pth files, so an editable install of this tree
    # is not on the path: only the wheel's copy and Twisted itself are.
    paths = [str(target), sysconfig.get_paths()["purelib"]]
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env={"PYTHONPATH": ":".join(paths), "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    plugin_file, tap_file = result.stdout.split()
    assert Path(plugin_file).is_relative_to(target)
    assert Path(tap_file).is_relative_to(target)
