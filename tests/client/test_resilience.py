"""The client core under failure: relay restarts, TLS pinning, and what lands on disk."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securechat.client.connection import CertificatePinMismatch
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    MessageReceived,
    PresenceChanged,
)
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD, clients, secure, wait_for
from tests.conftest import fast_config
from tests.procs import RelayProcess


async def test_outbox_drains_after_the_relay_comes_back(tmp_path: Path) -> None:
    """Messages typed while the relay is down go out after it restarts, exactly once."""
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        async with clients(relay.url, tmp_path, "alice", "bob", fast_reconnect=True) as pair:
            await _type_while_down(relay, *pair)
    finally:
        relay.kill()


async def _outbox_empty(client: ChatClient) -> None:
    """`accepted` follows the commit, which the recipient's `deliver` may precede."""
    for _ in range(100):
        if not client.vault.outbox_items():  # type: ignore[union-attr]
            return
        await asyncio.sleep(0.05)
    assert client.vault.outbox_items() == []  # type: ignore[union-attr]


async def _type_while_down(relay: RelayProcess, alice: ChatClient, bob: ChatClient) -> None:
    await secure(alice, bob)
    await _outbox_empty(alice)
    relay.kill()
    await wait_for(alice, ConnectionChanged, state=ConnectionState.RECONNECTING)
    for i in range(3):
        await alice.send_text("bob", f"while down {i}")
    assert len(alice.vault.outbox_items()) == 3  # type: ignore[union-attr]
    relay.start()
    await wait_for(alice, ConnectionChanged, timeout=20, state=ConnectionState.CONNECTED)
    texts = [(await wait_for(bob, MessageReceived, timeout=20)).text for _ in range(3)]
    assert texts == [f"while down {i}" for i in range(3)]
    # The outbox forgets each envelope once its `accepted` is processed; bob may see
    # the message a moment before that.
    await _outbox_empty(alice)


async def test_nothing_readable_is_left_on_disk(relay: RelayServer, tmp_path: Path) -> None:
    """Neither client vaults nor the relay's database hold the plaintext or the password."""
    url = f"ws://127.0.0.1:{relay.port}"
    async with clients(url, tmp_path, "alice", "bob") as (alice, bob):
        await _chat_and_search(alice, bob)
    _assert_unreadable(tmp_path / "alice", tmp_path / "bob", Path(relay.config.data_dir))


SECRET = "the eagle lands at midnight"


async def _chat_and_search(alice: ChatClient, bob: ChatClient) -> None:
    await secure(alice, bob)
    await alice.send_text("bob", SECRET)
    assert (await wait_for(bob, MessageReceived)).text == SECRET
    assert bob.search("eagle")[0].record.text == SECRET
    await alice.settle()
    await bob.settle()


def _assert_unreadable(*roots: Path) -> None:
    needles = [SECRET.encode(), b"eagle", PASSWORD.encode(), SECRET.encode("utf-16-le")]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for needle in needles:
                    assert needle not in data, f"{needle!r} readable in {path}"


def _self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securechat test relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, cert.fingerprint(hashes.SHA256()).hex()


async def test_tls_with_a_pinned_certificate(tmp_path: Path) -> None:
    """wss:// works with the right pin and is refused, clearly, with a wrong one."""
    cert, key, fingerprint = _self_signed(tmp_path)
    server = RelayServer(fast_config(tmp_path / "relay", tls_cert=str(cert), tls_key=str(key)))
    await server.start()
    url = f"wss://127.0.0.1:{server.port}"
    try:
        good = ChatClient(url, tmp_path / "good", pin_sha256=fingerprint, reconnect=False)
        await good.connect()
        await good.register("alice", PASSWORD)
        await good.close()
        bad = ChatClient(url, tmp_path / "bad", pin_sha256="00" * 32, reconnect=False)
        with pytest.raises(CertificatePinMismatch, match="does not match the pinned"):
            await bad.connect()
    finally:
        await server.stop()


async def test_an_ended_session_is_signed_in_again_in_place(
    relay: RelayServer, relay_url: str, tmp_path: Path
) -> None:
    """The relay ends alice's session: she is told, signs in again, and the outbox goes out."""
    async with clients(relay_url, tmp_path, "alice", "bob", fast_reconnect=True) as (alice, bob):
        await secure(alice, bob)
        await relay.store.delete_sessions_of("alice")
        await relay.revocations.end("alice", "password_changed")
        ended = await wait_for(alice, ConnectionChanged, state=ConnectionState.CLOSED)
        assert isinstance(ended, ConnectionChanged) and ended.session_ended
        await alice.send_text("bob", "written while signed out")
        await alice.sign_in_again(PASSWORD)
        assert alice.relay.connected
        assert (await wait_for(bob, MessageReceived)).text == "written while signed out"
        assert (await wait_for(alice, PresenceChanged, user="bob")).state == "online"
