"""HTTPS for the dashboard: a certificate the user gives, or the station's own small CA.

On the LAN the session cookie and the one-time pairing tokens would otherwise cross the
network in clear text. A phone cannot trust a self-signed server certificate for good, but
it can trust a CA: so the station makes one CA, once (it is what a phone installs), and at
every start signs a short-lived server certificate for its current host name and addresses.

The CA is kept small on purpose: it can sign only server certificates (path length 0) and
only for the names a station can have on a home network (name constraints: its host name,
``*.local``, ``localhost``, loopback and the private address ranges). Even if its key
leaked, it could not vouch for a bank's web site on a phone that trusts it.

Everything here is blocking file I/O and key generation: call it before the event loop
starts (``spotter run`` does), never on it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_DIR = "tls"
"""The folder in the station's data directory that holds the CA and the server certificate."""
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CA_DAYS = 3650
"""The CA a phone trusts lives ten years: re-trusting it is a chore for the user."""
SERVER_DAYS = 397
"""Under the 398 days Apple and Chrome accept for a server certificate; re-issued each start."""

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
"""The addresses the station's CA may vouch for: loopback, private and link-local."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TlsError(RuntimeError):
    """A certificate or key that cannot be used; the message names the file."""


@dataclass(frozen=True)
class TlsFiles:
    """What uvicorn serves with, and the CA a phone downloads (None for a user's cert)."""

    cert_file: Path
    key_file: Path
    ca_pem: bytes | None = None
    """The station's CA certificate (PEM), served at /ca.crt; None when the user gave a cert."""
    ca_fingerprint: str | None = None
    """SHA-256 of the CA certificate, as phones show it: compare before trusting."""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of a certificate as colon-separated hex pairs (what iOS and Android show)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by this user only (0600) from the first byte."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _check_private(path: Path, mask: int = 0o077) -> None:
    """A key file others can read is a leaked key: refuse it, naming the fix."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & mask:
        raise TlsError(f"{path}: readable by others (mode {mode:o}); run: chmod 600 {path}")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Spotter"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _new_ca(
    station: str, hostname: str, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"Spotter station {station} CA")
    dns = sorted({hostname.lower(), "local", "localhost"})
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(n) for n in dns]
        + [x509.IPAddress(n) for n in PRIVATE_NETWORKS],
        excluded_subtrees=None,
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if not cert_path.exists() or not key_path.exists():
        missing = cert_path if not cert_path.exists() else key_path
        raise TlsError(
            f"{missing}: missing while its pair is there; phones that trust this station's CA "
            f"would stop trusting a new one. Restore it, or delete {folder} to make a new CA "
            "(and trust it again on every phone)"
        )
    _check_private(key_path)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise TlsError(f"{cert_path}: not a PEM certificate: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{key_path}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise TlsError(f"{key_path}: is not the key of {cert_path}")
    return cert, key


def ensure_ca(
    folder: Path, station: str, hostname: str, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The station's CA from ``folder``, made there (0600) the first time."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (folder / CA_CERT).exists() and not (folder / CA_KEY).exists():
        cert, key = _new_ca(station, hostname, now)
        _write_private(folder / CA_KEY, _key_pem(key))
        _write_private(folder / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return _load_ca(folder)


def _permitted(
    ca: x509.Certificate, dns: Iterable[str], ips: Iterable[IPAddress]
) -> tuple[list[str], list[IPAddress], list[str]]:
    """The names and addresses the CA's name constraints allow, and those it refuses."""
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    subtrees = constraints.permitted_subtrees or []
    domains = [s.value.lower() for s in subtrees if isinstance(s, x509.DNSName)]
    networks = [
        s.value
        for s in subtrees
        if isinstance(s, x509.IPAddress)
        and isinstance(s.value, ipaddress.IPv4Network | ipaddress.IPv6Network)
    ]
    ok_dns: list[str] = []
    ok_ips: list[IPAddress] = []
    refused: list[str] = []
    for name in dict.fromkeys(n.lower() for n in dns):
        if any(name == d or name.endswith("." + d) for d in domains):
            ok_dns.append(name)
        else:
            refused.append(name)
    for ip in dict.fromkeys(ips):
        if any(ip in net for net in networks):
            ok_ips.append(ip)
        else:
            refused.append(str(ip))
    return ok_dns, ok_ips, refused


def station_tls(
    data_dir: Path,
    station: str,
    hostname: str,
    addresses: Sequence[str],
    now: datetime.datetime,
) -> tuple[TlsFiles, list[str]]:
    """The station's CA (made once) and a fresh server certificate it signs for ``hostname``
    (also ``hostname.local`` and ``localhost``) and ``addresses`` (127.0.0.1 always).

    Returns the files to serve with and the names the CA may not vouch for (left out of the
    certificate: say so, a phone reaching the station by one of them will be refused).
    """
    folder = data_dir / TLS_DIR
    ca, ca_key = ensure_ca(folder, station, hostname, now)
    dns = [hostname, f"{hostname}.local", "localhost"]
    ips = [ipaddress.ip_address(a) for a in ("127.0.0.1", *addresses)]
    ok_dns, ok_ips, refused = _permitted(ca, dns, ips)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in ok_dns]
    sans += [x509.IPAddress(ip) for ip in ok_ips]
    cert = _server_cert(ca, ca_key, key, _name(hostname or station), sans, now)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    _write_private(folder / SERVER_KEY, _key_pem(key))
    _write_private(
        folder / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    )  # the chain: a client that trusts the CA needs nothing else
    files = TlsFiles(folder / SERVER_CERT, folder / SERVER_KEY, ca_pem, fingerprint(ca))
    return files, refused


def _server_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    now: datetime.datetime,
) -> x509.Certificate:
    """A server certificate for ``subject`` (``sans`` its names) valid from five minutes ago
    for :data:`SERVER_DAYS`, signed by the CA."""
    public = key.public_key()
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def user_tls(cert_file: Path, key_file: Path) -> TlsFiles:
    """A certificate the user gives (``[dashboard] cert_file``, ``key_file``), checked now so
    a wrong file is a clear error at start, not a failed handshake on the phone later."""
    for path in (cert_file, key_file):
        if not path.is_file():
            raise TlsError(f"{path}: no such file (dashboard.cert_file / dashboard.key_file)")
    _check_private(key_file, 0o007)  # a group such as Debian's ssl-cert may read it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise TlsError(
            f"{cert_file} with {key_file}: not a PEM certificate and its key: {exc.reason or exc}"
        ) from None
    return TlsFiles(cert_file, key_file)
