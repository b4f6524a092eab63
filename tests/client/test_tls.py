"""wss:// without a pin: a relay signed by a trusted CA works, any other is refused clearly."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securechat.client.cli import EXIT_UNREACHABLE
from securechat.client.connection import UntrustedCertificate
from securechat.client.core import ChatClient
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD
from tests.conftest import fast_config


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a relay certificate it signed for 127.0.0.1, and an unrelated CA."""
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("securechat test CA")
    _, other = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("securechat test relay"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(root / "ca.pem", root / "other-ca.pem", root / "cert.pem", root / "key.pem")
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other))
    pki.cert.write_bytes(_pem(leaf))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@pytest.fixture
async def tls_url(pki: Pki, tmp_path: Path) -> AsyncIterator[str]:
    server = RelayServer(
        fast_config(tmp_path / "relay", tls_cert=str(pki.cert), tls_key=str(pki.key))
    )
    await server.start()
    try:
        yield f"wss://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def test_a_relay_signed_by_a_trusted_ca_needs_no_pin(
    pki: Pki, tls_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE stands in for the system store that would hold a public CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    client = ChatClient(tls_url, tmp_path / "alice", reconnect=False)
    try:
        await client.connect()
        await client.register("alice", PASSWORD)
    finally:
        await client.close()


async def test_an_untrusted_relay_is_refused_before_anything_is_sent(
    pki: Pki, tls_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate from a CA the computer does not trust is an error, not a connection."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca))
    client = ChatClient(tls_url, tmp_path / "alice", reconnect=False)
    try:
        with pytest.raises(UntrustedCertificate, match="does not trust"):
            await client.connect()
    finally:
        await client.close()


async def test_the_cli_says_so_in_one_line(pki: Pki, tls_url: str, tmp_path: Path) -> None:
    """No traceback: one sentence naming the problem and the two ways out."""
    env = dict(os.environ, SSL_CERT_FILE=str(pki.other_ca), SECURECHAT_PASSWORD=PASSWORD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "securechat.client.cli",
        "--server",
        tls_url,
        "--data-dir",
        str(tmp_path / "cli"),
        "--user",
        "alice",
        "login",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == EXIT_UNREACHABLE
    assert len(lines) == 1 and "does not trust" in lines[0] and "--pin" in lines[0], lines
