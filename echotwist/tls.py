"""
Throwaway TLS files for trying and testing echo over TLS.

C{python -m echotwist.tls} writes, into a directory:

  - C{key.pem} and C{cert.pem}: a server key and a certificate for the
    given host names and addresses, for
    C{--port ssl:PORT:privateKey=key.pem:certKey=cert.pem};
  - C{ca/ca.pem}: the certificate of the CA that signed it, alone in C{ca/},
    for the client's C{--connect tls:HOST:PORT:trustRoots=ca/}.

The CA's key is never written: the CA signs this one certificate and is
gone, so nothing it could sign later is trusted. Not for production: a real
service gets its certificate from a real CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from twisted.python import usage

from echotwist.cli import print_version

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError as e:
    # Run as a command without the tls extra: one line, not a traceback.
    if __name__ != "__main__":
        raise
    sys.exit(f"python -m echotwist.tls: {e}: pip install 'echotwist[tls]'")

#: The names a certificate is for unless told otherwise: this machine by
#: name and by both loopback addresses.
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Days a certificate is valid for unless told otherwise.
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class TLSFiles:
    """
    Where L{write_files} put the files.

    @ivar key: the server's private key (PEM).
    @ivar cert: the server's certificate (PEM).
    @ivar trust_roots: a directory holding only the CA's certificate.
    """

    key: Path
    cert: Path
    trust_roots: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _subject_name(host: str) -> x509.GeneralName:
    """
    @return: C{host} as a subject alternative name: an IP address if it is
        one, else a DNS name.
    """
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def write_files(
    directory: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = DEFAULT_DAYS,
) -> TLSFiles:
    """
    Make a throwaway CA and a server certificate it signs, and write the
    server's key and certificate and the client's C{trustRoots} directory.

    @param directory: where to write them (made if missing).
    @param hosts: the host names and IP addresses the certificate is for;
        the first is also its common name.
    @param days: how many days the certificates are valid.
    @return: where the files are.
    @raise FileExistsError: if one of the files is there already (nothing is
        overwritten).
    @raise ValueError: if C{hosts} is empty or C{days} is not positive.
    """
    if not hosts:
        raise ValueError("at least one host name or address is needed")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    files = TLSFiles(
        key=directory / "key.pem",
        cert=directory / "cert.pem",
        trust_roots=directory / "ca",
    )
    for path in (files.key, files.cert, files.trust_roots):
        if path.exists():
            raise FileExistsError(f"{path} exists already")

    now = datetime.datetime.now(datetime.timezone.utc)
    # Valid from a few minutes ago, so a clock a little behind still trusts it.
    start = now - datetime.timedelta(minutes=5)
    end = now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("echotwist throwaway CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([_subject_name(h) for h in hosts]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    files.trust_roots.mkdir()
    pem = serialization.Encoding.PEM
    (files.trust_roots / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    key_bytes = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key_bytes)
    return files


class Options(usage.Options):
    """
    C{python -m echotwist.tls}'s command line.
    """

    synopsis = "Usage: python -m echotwist.tls [options] [HOST ...]"

    def opt_version(self) -> None:
        """
        Display echotwist's version (and Twisted's) and exit.
        """
        print_version("python -m echotwist.tls")

    longdesc = (
        "Write a throwaway CA's certificate (ca/ca.pem, for the client's "
        "trustRoots=ca/) and a server key and certificate it signed "
        "(key.pem, cert.pem) for each HOST name or IP address (default: "
        + ", ".join(DEFAULT_HOSTS)
        + "). Nothing is overwritten. For trying TLS, not for production."
    )
    optParameters = [["directory", "d", ".", "Where to write the files."]]

    def __init__(self) -> None:
        super().__init__()
        self["days"] = DEFAULT_DAYS

    def opt_days(self, value: str) -> None:
        """
        Days the certificates are valid [default: 30].
        """
        try:
            self["days"] = int(value)
        except ValueError:
            raise usage.UsageError(
                f"--days must be a whole number, not {value!r}"
            ) from None

    def parseArgs(self, *hosts: str) -> None:
        self["hosts"] = hosts or DEFAULT_HOSTS

    def postOptions(self) -> None:
        if self["days"] < 1:
            raise usage.UsageError(f"--days must be at least 1, not {self['days']}")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run C{python -m echotwist.tls}.

    @param argv: the arguments (default: C{sys.argv[1:]}).
    @return: the exit status: 0, 1 if a file is there already, 2 for bad
        arguments.
    """
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else list(argv))
    except usage.UsageError as e:
        print(f"python -m echotwist.tls: {e}", file=sys.stderr)
        print("(see python -m echotwist.tls --help)", file=sys.stderr)
        return 2
    try:
        files = write_files(
            Path(options["directory"]), options["hosts"], options["days"]
        )
    except FileExistsError as e:
        print(f"python -m echotwist.tls: {e}: not overwritten", file=sys.stderr)
        return 1
    except OverflowError:
        days = options["days"]
        print(f"python -m echotwist.tls: --days {days}: too many", file=sys.stderr)
        return 2
    except ValueError as e:
        # A host name that x509 refuses.
        print(f"python -m echotwist.tls: {e}", file=sys.stderr)
        return 2
    hosts = ", ".join(options["hosts"])
    print(f"{files.key}, {files.cert}: the server's key and certificate ({hosts})")
    print(f"{files.trust_roots}/ca.pem: the CA's certificate (trustRoots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
