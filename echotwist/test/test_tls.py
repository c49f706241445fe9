# mypy: disable-error-code="no-untyped-call"
# (trial's assertion methods have no type hints)
"""
Tests for L{echotwist.tls}, the throwaway CA and server certificate.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.trial.unittest import SynchronousTestCase

from echotwist.tls import DEFAULT_HOSTS, main, write_files


class WriteFilesTests(SynchronousTestCase):
    """
    Tests for L{write_files}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())

    def test_files(self) -> None:
        """
        The key, the certificate and the C{trustRoots} directory holding the
        CA's certificate alone are written where L{write_files} says, and
        the key is readable by its owner only.
        """
        files = write_files(self.directory)
        self.assertEqual(files.key, self.directory / "key.pem")
        self.assertEqual(files.cert, self.directory / "cert.pem")
        self.assertEqual(files.trust_roots, self.directory / "ca")
        self.assertEqual(
            sorted(p.name for p in files.trust_roots.iterdir()), ["ca.pem"]
        )
        self.assertEqual(stat.S_IMODE(files.key.stat().st_mode), 0o600)

    def test_signedByCA(self) -> None:
        """
        The server certificate is signed by the CA in C{trust_roots}, which
        is a CA, and holds the public half of the key written beside it.
        """
        files = write_files(self.directory)
        ca = x509.load_pem_x509_certificate((files.trust_roots / "ca.pem").read_bytes())
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        cert.verify_directly_issued_by(ca)
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(constraints.value.ca)
        key = serialization.load_pem_private_key(files.key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        self.assertEqual(key.public_key().public_numbers(), public.public_numbers())

    def test_hosts(self) -> None:
        """
        The certificate names each host: names as DNS names, addresses as IP
        addresses; by default C{localhost} and both loopback addresses.
        """
        for hosts, dns, ips in [
            (DEFAULT_HOSTS, ["localhost"], ["127.0.0.1", "::1"]),
            (("echo.test", "10.0.0.1"), ["echo.test"], ["10.0.0.1"]),
        ]:
            directory = Path(self.mktemp())
            cert = x509.load_pem_x509_certificate(
                write_files(directory, hosts).cert.read_bytes()
            )
            names = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
            self.assertEqual(names.get_values_for_type(x509.DNSName), dns)
            self.assertEqual(
                names.get_values_for_type(x509.IPAddress),
                [ipaddress.ip_address(ip) for ip in ips],
            )

    def test_days(self) -> None:
        """
        The certificate is valid for C{days} days from now (and from a few
        minutes before, for clocks a little behind).
        """
        cert = x509.load_pem_x509_certificate(
            write_files(self.directory, days=3).cert.read_bytes()
        )
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        self.assertEqual(lifetime.days, 3)
        self.assertLess(lifetime.seconds, 600)

    def test_neverOverwrites(self) -> None:
        """
        If one of the files is there already, L{write_files} raises
        L{FileExistsError} and leaves it as it was.
        """
        self.directory.mkdir()
        (self.directory / "cert.pem").write_bytes(b"mine")
        self.assertRaises(FileExistsError, write_files, self.directory)
        self.assertEqual((self.directory / "cert.pem").read_bytes(), b"mine")
        self.assertFalse((self.directory / "key.pem").exists())

    def test_badArguments(self) -> None:
        """
        No host, or fewer than one day, is a L{ValueError}.
        """
        self.assertRaises(ValueError, write_files, self.directory, ())
        self.assertRaises(ValueError, write_files, self.directory, days=0)


class MainTests(SynchronousTestCase):
    """
    Tests for L{main}, C{python -m echotwist.tls}.
    """

    def run_main(self, *argv: str) -> tuple[int, str, str]:
        """
        @return: L{main}'s exit status, standard output and standard error.
        """
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
        return status, out.getvalue(), err.getvalue()

    def test_writes(self) -> None:
        """
        The files are written into C{--directory} for the hosts given, and
        the output names them.
        """
        directory = self.mktemp()
        status, out, err = self.run_main("--directory", directory, "echo.test")
        self.assertEqual((status, err), (0, ""))
        self.assertIn(f"{directory}/key.pem", out)
        self.assertIn(f"{directory}/ca/ca.pem", out)
        cert = x509.load_pem_x509_certificate(
            (Path(directory) / "cert.pem").read_bytes()
        )
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(names.value.get_values_for_type(x509.DNSName), ["echo.test"])

    def test_exists(self) -> None:
        """
        Files there already: one line on standard error, exit status 1.
        """
        directory = self.mktemp()
        self.assertEqual(self.run_main("-d", directory)[0], 0)
        status, out, err = self.run_main("-d", directory)
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("exists already", err)

    def test_usageErrors(self) -> None:
        """
        Bad arguments are an error message naming the problem and exit
        status 2, never a traceback.
        """
        for argv, message in [
            (["--days", "0"], "--days must be at least 1"),
            (["--days", "x"], "--days must be a whole number"),
            (["--days", "999999999"], "--days 999999999: too many"),
            (["--bogus"], "--bogus"),
            (["caf\xe9"], "DNSName"),
        ]:
            status, out, err = self.run_main("-d", self.mktemp(), *argv)
            self.assertEqual((status, out), (2, ""), argv)
            self.assertIn(message, err, argv)
            self.assertNotIn("Traceback", err, argv)
