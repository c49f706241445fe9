"""
Tests that the service, the client and the bench start from a plain C{pip
install .}, without the optional extras (C{tls}: pyOpenSSL, cryptography and
service_identity; C{metrics}: prometheus_client), as README says they do.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

#: The top-level modules the extras bring, hidden from the child process.
EXTRAS = ("OpenSSL", "cryptography", "service_identity", "prometheus_client")


def without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """
    Run C{code} in a new interpreter in which importing any of L{EXTRAS}
    fails, as it does where they are not installed.

    @param code: Python source.
    @return: the finished process, its output as text.
    """
    hide = f"import sys\nfor name in {EXTRAS!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", hide + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class WithoutExtrasTests(SynchronousTestCase):
    """
    The commands' modules import, and C{twistd echo} parses a plain TCP
    port, with none of the optional extras installed.
    """

    def test_hidingWorks(self) -> None:
        """
        The child process cannot import pyOpenSSL (else the other test
        shows nothing).
        """
        result = without_extras(
            """
            try:
                import OpenSSL
            except ImportError:
                print("hidden")
            """
        )
        self.assertEqual((result.stdout, result.stderr), ("hidden\n", ""))

    def test_commandsImport(self) -> None:
        """
        The twistd plugin's service maker, the client's and the bench's
        entry points import, and C{twistd echo --port} parses a TCP port
        (a module-level import of C{twisted.protocols.tls}, which needs
        pyOpenSSL, once stopped all three with a traceback).
        """
        result = without_extras(
            """
            import echotwist.bench.__main__
            import echotwist.client.__main__
            from echotwist.server.tap import Options
            options = Options()
            options.parseOptions(["--port", "tcp:9000:interface=127.0.0.1"])
            print("ok")
            """
        )
        self.assertEqual((result.stdout, result.stderr), ("ok\n", ""))

    def test_tlsFilesOneLine(self) -> None:
        """
        C{python -m echotwist.tls} without cryptography says in one line
        what to install, and exits 1, without a traceback.
        """
        result = without_extras(
            """
            import runpy
            runpy.run_module("echotwist.tls", run_name="__main__")
            """
        )
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        [line] = result.stderr.splitlines()
        self.assertTrue(line.startswith("python -m echotwist.tls: "), line)
        self.assertTrue(line.endswith(": pip install 'echotwist[tls]'"), line)

    def test_sslPortOneLine(self) -> None:
        """
        C{twistd echo --port ssl:...} without pyOpenSSL is a usage error
        saying what to install (not C{No module named 'OpenSSL'} alone).
        """
        result = without_extras(
            """
            from twisted.python.usage import UsageError
            from echotwist.server.tap import Options
            try:
                Options().parseOptions(
                    ["--port", "ssl:9443:privateKey=key.pem:certKey=cert.pem"]
                )
            except UsageError as e:
                print(e)
            """
        )
        self.assertEqual(result.stderr, "")
        self.assertTrue(
            result.stdout.startswith(
                "--port 'ssl:9443:privateKey=key.pem:certKey=cert.pem': "
            ),
            result.stdout,
        )
        self.assertTrue(
            result.stdout.endswith(": pip install 'echotwist[tls]'\n"), result.stdout
        )

    def test_tlsClientOneLine(self) -> None:
        """
        The client's C{--connect tls:...} without pyOpenSSL is a usage error
        (exit 2) saying what to install, not Twisted's C{NameError}
        traceback.
        """
        result = without_extras(
            """
            import sys
            sys.argv = ["echotwist-client", "--connect", "tls:localhost:9", "m"]
            from echotwist.client.__main__ import main
            main()
            """
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        [line] = result.stderr.splitlines()
        self.assertTrue(
            line.startswith("echotwist-client: --connect 'tls:localhost:9': "), line
        )
        self.assertIn("OpenSSL", line)
        self.assertTrue(line.endswith(": pip install 'echotwist[tls]'"), line)
