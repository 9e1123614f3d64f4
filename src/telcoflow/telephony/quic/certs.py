"""The QUIC door's TLS identity: the configured PEM files, or a self-signed certificate
made at start (embedded defaults, ``--quic PORT``), and its SHA-256 fingerprint for
clients to pin (a self-signed certificate has no CA to verify it against)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SELF_SIGNED_DAYS = 30


def self_signed(host: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh P-256 key and a certificate for ``host``, localhost and loopback."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telcoflow-quic-dev")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                   x509.IPAddress(ipaddress.ip_address("::1"))]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lower-case hex (what ``QuicAgent(fingerprint=)``
    takes; colons are accepted there too)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def server_identity(configuration: QuicConfiguration, host: str, cert: str | None,
                    key: str | None) -> str:
    """Load (or make) the certificate into ``configuration``; returns its fingerprint."""
    if cert is not None:
        configuration.load_cert_chain(cert, key)
    else:
        configuration.certificate, configuration.private_key = self_signed(host)
    assert configuration.certificate is not None
    return fingerprint(configuration.certificate)
