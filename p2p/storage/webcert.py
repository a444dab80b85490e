"""The TLS certificate of the practice's page when it is served to the network.

With ``web_tls = true`` the page speaks HTTPS. Its certificate is the practice's
own (``web_certificate`` and ``web_private_key``, PEM files from its IT), or else
one made here on the daemon's first start: an ECDSA P-256 key and a self-signed
certificate for the names the page answers at, in ``web/`` of the home (the key
mode 0600), made again when it nears its end or no longer names them all.
``fingerprint`` is its SHA-256, which ``pli open`` and ``pli status`` print so a
person can compare it with what the browser shows before trusting it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from p2p.errors import ConfigError
from p2p.storage.files import make_private_dir, write_atomic

FOLDER = Path("web")
CERT_FILE = FOLDER / "certificate.pem"
KEY_FILE = FOLDER / "private-key.pem"
LIFETIME = dt.timedelta(days=825)  # what browsers accept for a certificate they are told to trust
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class PageCertificate:
    certificate: Path
    private_key: Path
    fingerprint: str  # SHA-256 of the certificate, "AB:CD:..." as browsers show it
    made_here: bool


def fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate, in pairs of hex digits."""
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def ensure(
    home: Path, names: list[str], *, own_cert: str = "", own_key: str = ""
) -> PageCertificate:
    """The page's certificate: the practice's own if configured, else ours (made if needed)."""
    if own_cert or own_key:
        return _own(Path(own_cert), Path(own_key))
    cert_path, key_path = home / CERT_FILE, home / KEY_FILE
    if not _still_good(cert_path, key_path, names):
        _make(cert_path, key_path, names)
    return PageCertificate(cert_path, key_path, fingerprint(cert_path.read_bytes()), True)


def _own(cert: Path, key: Path) -> PageCertificate:
    try:
        pem = cert.read_bytes()
        key.read_bytes()
        found = fingerprint(pem)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The page's certificate {cert} or its key {key} (settings “web_certificate” and "
            f"“web_private_key”) could not be read ({exc}). Give both as PEM files, or remove "
            "both settings to let pli make its own."
        ) from None
    return PageCertificate(cert, key, found, False)


def _still_good(cert_path: Path, key_path: Path, names: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if not key_path.exists():
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return False
    try:
        named = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(n) for n in named.get_values_for_type(x509.DNSName)}
    have |= {str(ip) for ip in named.get_values_for_type(x509.IPAddress)}
    return set(names) <= have


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name)


def _make(cert_path: Path, key_path: Path, names: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pli — page du cabinet")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(
            x509.SubjectAlternativeName([_alt_name(n) for n in dict.fromkeys(names)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    make_private_dir(cert_path.parent)
    write_atomic(key_path, [private])
    write_atomic(cert_path, [cert.public_bytes(serialization.Encoding.PEM)])
