"""
The reference servers print what docs/reference-servers.rst shows they
print (issue 16, part 3), line for line, ports and peers aside.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sockets import TIMEOUT
from twistd_support import environment

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference-servers.rst"
#: A port or a peer's port, as shown or printed.
NUMBERS = re.compile(r"(?<=:)\d+|(?<=', )\d+(?=\))")


def shown_output() -> list[str]:
    """
    @return: the lines the page shows a reference server printing.
    """
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("against both servers)::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line.strip())
    return lines


@pytest.mark.parametrize("server", ["blocking", "selecting"])
def test_printedAsShown(server: str, tmp_path: Path) -> None:
    """
    The server's output for the documented client run is the page's block.
    """
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"echotwist.reference.{server}", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment(),
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (found := re.search(r"Listening on [\d.]+:(\d+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "echotwist.reference.client",
                "--port",
                found.group(1),
                "Demo Message",
            ],
            capture_output=True,
            timeout=TIMEOUT,
            env=environment(),
            check=True,
        )
        assert client.stdout == b"Received b'Demo Message'\n"
        deadline = time.monotonic() + TIMEOUT
        while "Closed by" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
    shown = shown_output()
    printed = [NUMBERS.sub("N", line) for line in log.read_text().splitlines()]
    assert printed == [NUMBERS.sub("N", line) for line in shown]
