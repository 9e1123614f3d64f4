"""mTLS: a test CA, a server certificate and client certificates made in the test."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from telcoflow import (
    Call,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
    WSSAuthenticationError,
)
from telcoflow.server.config import TlsConfig, embedded_defaults
from telcoflow.testing import GatewayThread

from .conftest import dialled, find, noise

Key = ec.EllipticCurvePrivateKey


def _cert(subject: str, key: Key, issuer: x509.Name, signer: Key, *, ca: bool = False,
          server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Key) -> tuple[str, str]:
    cert_path, key_path = path.with_suffix(".pem"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, tuple[str, str]]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telcoflow test CA")])
    ca = _cert("telcoflow test CA", ca_key, ca_name, ca_key, ca=True)
    out = {"ca": _write(tmp_path / "ca", ca, ca_key)}
    for name, server in (("server", True), ("agent-mtls", False), ("stranger", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        out[name] = _write(tmp_path / name, _cert(name, key, ca_name, ca_key, server=server), key)
    return out


@pytest.fixture
def tls_gateway(pki: dict[str, tuple[str, str]],
                monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayThread]:
    config = embedded_defaults(port=0)
    config.connectors[0].cert_common_names = ["agent-mtls"]
    config.tls = TlsConfig(cert=pki["server"][0], key=pki["server"][1], client_ca=pki["ca"][0])
    # Clients trust the test CA through the standard OpenSSL variable, as the published SDK would.
    monkeypatch.setenv("SSL_CERT_FILE", pki["ca"][0])
    with GatewayThread(config) as gw:
        yield gw


@pytest.mark.asyncio
async def test_mtls_agent_serves_a_call(tls_gateway: GatewayThread,
                                        pki: dict[str, tuple[str, str]]) -> None:
    gw = tls_gateway
    assert gw.ws_url.startswith("wss://")
    cert, key = pki["agent-mtls"]
    config = SessionManagerConfig.create(cert_path=cert, key_path=key, base_url=gw.ws_url)
    ended = asyncio.Event()
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def handle(noti: SessionNotification) -> None:
            session = await sm.open_session(noti.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await call.answer()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)
                ended.set()

            await session.ready()

        assert [s.state for s in await sm.list_sessions()] == []  # REST over mTLS too
        sent = noise(0.4, 16000)
        async with dialled(gw) as phone:
            await phone.wait_answered(timeout=10)
            start = phone.frames_received
            await phone.play(sent)
            await phone.wait_frames(start + len(sent) // 320 + 15)
            heard = phone.received()[start * 320:]
            await phone.hangup()
        await asyncio.wait_for(ended.wait(), 10)
    lag = find(heard, sent)
    assert lag >= 0 and np.array_equal(heard[lag:lag + len(sent)], sent)


@pytest.mark.asyncio
async def test_unregistered_client_certificate_is_refused(
        tls_gateway: GatewayThread, pki: dict[str, tuple[str, str]]) -> None:
    cert, key = pki["stranger"]
    config = SessionManagerConfig.create(cert_path=cert, key_path=key,
                                         base_url=tls_gateway.ws_url)
    with pytest.raises(WSSAuthenticationError, match="certificate"):
        async with SessionManager(config):
            pass
