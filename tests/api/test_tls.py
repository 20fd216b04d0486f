"""The API over TLS on a cluster address: tokens work, and no one is root by claiming a peer uid there."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hakeeper.api.app import build_app, start_tls
from hakeeper.api.auth import Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from tests.api.helpers import NOW, sample_cib

pytestmark = pytest.mark.timeout(60)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hakeeper-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "api.crt", tmp_path / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_needs_a_token(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("remote", Role.READ, NOW)
    app = build_app(Services(handle=FakeCluster(sample_cib(), now=NOW), tokens=store))
    running = await start_tls(app, "127.0.0.1", 0, cert, key)
    try:
        host, port = running.addresses[0][:2]
        async with httpx.AsyncClient(
            base_url=f"https://{host}:{port}", verify=ssl.create_default_context(cafile=str(cert))
        ) as client:
            anonymous = await client.get("/v1/whoami")
            assert anonymous.status_code == 401
            who = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
            assert who.json() == {"actor": "remote", "role": "read"}
            denied = await client.post("/v1/nodes/n2/standby", headers={"Authorization": f"Bearer {token}"})
            assert denied.status_code == 403
    finally:
        await running.stop()
