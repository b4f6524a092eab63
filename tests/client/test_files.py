"""Encrypted file sharing end to end: sizes, tampering, authorisation, limits, resume."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from securechat.client import transfers
from securechat.client.core import ChatClient
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    FileOffered,
    TransferProgress,
)
from securechat.client.transfers import TransferError
from securechat.crypto.errors import AuthenticationFailed
from securechat.crypto.filestream import CHUNK_SIZE, FileManifest
from securechat.errors import ProtocolError, ServerRejected
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.server.app import RelayServer
from tests.client.helpers import PASSWORD, clients, drain, secure, wait_for
from tests.procs import RelayProcess


@pytest.fixture
async def pair(relay_url: str, tmp_path: Path) -> AsyncIterator[tuple[ChatClient, ChatClient]]:
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        yield alice, bob


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


async def send_and_receive(
    alice: ChatClient, bob: ChatClient, source: Path, target: Path
) -> tuple[str, Path]:
    blob_id = await alice.send_file("bob", source)
    offer = await wait_for(bob, FileOffered, timeout=30, file_id=blob_id)
    assert offer.name == source.name and offer.size == source.stat().st_size
    return blob_id, await bob.download(blob_id, target)


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 25_000_000]
)
async def test_round_trip_sizes(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path, size: int
) -> None:
    """Empty, tiny, chunk-boundary and maximal files arrive byte for byte."""
    alice, bob = pair
    source = make_file(tmp_path / f"data-{size}.bin", size)
    _, saved = await send_and_receive(alice, bob, source, tmp_path / "downloads")
    assert saved.read_bytes() == source.read_bytes()
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


async def test_names_are_sanitised_and_never_overwrite(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path
) -> None:
    """A hostile name lands as a plain name beside, not over, an existing file."""
    alice, bob = pair
    target = tmp_path / "downloads"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    source = make_file(tmp_path / "notes.txt", 10)
    _, saved = await send_and_receive(alice, bob, source, target)
    assert saved.name == "notes (1).txt" and (target / "notes.txt").read_text() == "mine"


async def _tamper(relay: RelayServer, blob_id: str, how: str) -> None:
    """Rewrites the relay's stored blob (`data` plus chunk end offsets in `index`)."""
    directory = relay.files.root / blob_id
    raw = bytearray((directory / "data").read_bytes())
    index = (directory / "index").read_bytes()
    ends = [int.from_bytes(index[i : i + 8], "big") for i in range(0, len(index), 8)]
    if how == "flip":
        raw[5] ^= 1
    elif how == "reorder":
        size = ends[0]
        assert ends[1] == 2 * size
        raw[: 2 * size] = raw[size : 2 * size] + raw[:size]
    elif how == "truncate":
        del raw[-40:]
        ends[-1] -= 40
    (directory / "data").write_bytes(bytes(raw))
    (directory / "index").write_bytes(b"".join(end.to_bytes(8, "big") for end in ends))


@pytest.mark.parametrize("how", ["flip", "reorder", "truncate"])
async def test_tampered_file_is_rejected_and_nothing_is_left(
    pair: tuple[ChatClient, ChatClient], relay: RelayServer, tmp_path: Path, how: str
) -> None:
    """A relay that alters, reorders or cuts chunks is caught; no partial file remains."""
    alice, bob = pair
    source = make_file(tmp_path / "secret.pdf", 3 * CHUNK_SIZE + 100)
    blob_id = await alice.send_file("bob", source)
    await wait_for(bob, FileOffered, file_id=blob_id)
    await _tamper(relay, blob_id, how)
    target = tmp_path / "downloads"
    with pytest.raises(AuthenticationFailed, match="altered, truncated"):
        await bob.download(blob_id, target)
    assert list(target.iterdir()) == []


async def test_wrong_key_is_rejected(pair: tuple[ChatClient, ChatClient], tmp_path: Path) -> None:
    """A manifest with another key opens nothing."""

    alice, bob = pair
    blob_id = await alice.send_file("bob", make_file(tmp_path / "a.bin", 1000))
    await wait_for(bob, FileOffered, file_id=blob_id)
    vault = bob.vault
    assert vault is not None
    manifest = FileManifest.from_bytes(vault.get(f"file:{blob_id}") or b"")
    forged = FileManifest(
        manifest.file_id,
        os.urandom(32),
        manifest.size,
        manifest.digest,
        manifest.name,
        manifest.mime,
    )
    vault.put(f"file:{blob_id}", forged.to_bytes())
    with pytest.raises(AuthenticationFailed):
        await bob.download(blob_id, tmp_path / "downloads")
    assert list((tmp_path / "downloads").iterdir()) == []


async def test_only_named_recipients_can_fetch(
    pair: tuple[ChatClient, ChatClient], relay_url: str, tmp_path: Path
) -> None:
    """A third user guessing or learning the id is refused like a missing file."""
    alice, _ = pair
    blob_id = await alice.send_file("bob", make_file(tmp_path / "a.bin", 1000))
    eve = ChatClient(relay_url, tmp_path / "eve")
    await eve.connect()
    await eve.register("eve", PASSWORD)
    with pytest.raises(ServerRejected) as info:
        await eve.relay.request(lambda rid: F.FileGet(rid=rid, file_id=blob_id, index=0))
    assert info.value.code == "not_found"
    await eve.close()


async def test_over_limit_file_is_refused_by_client_and_relay(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path
) -> None:
    """25 MB + 1 byte: the client says so before uploading; the relay refuses a forged size."""
    alice, _ = pair
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(25_000_001)
    with pytest.raises(TransferError, match="limited to 25 MB"):
        await alice.send_file("bob", big)
    with pytest.raises(ServerRejected) as info:
        await alice.relay.request(
            lambda rid: F.FileBegin(rid=rid, size=26_000_000, recipients=["bob"])
        )
    assert info.value.code == "too_large"


def _hash_after(
    monkeypatch: pytest.MonkeyPatch,
    ready: threading.Event,
    before: Callable[[], object] = lambda: None,
) -> None:
    """Holds the sender's digest on its thread until `ready` is set."""
    real = transfers.file_tags

    def held(outgoing: transfers.OutgoingFile) -> list[bytes]:
        if not ready.wait(30):
            raise AssertionError("the digest was never released")
        before()
        return real(outgoing)

    monkeypatch.setattr(transfers, "file_tags", held)


async def test_upload_goes_out_while_the_digest_is_computed(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest is only needed for the offer: chunks reach the relay before it is known."""
    alice, bob = pair
    uploaded = threading.Event()
    _hash_after(monkeypatch, uploaded)
    source = make_file(tmp_path / "big.bin", 20 * CHUNK_SIZE + 5)
    sending = asyncio.create_task(alice.send_file("bob", source))
    progress = await wait_for(alice, TransferProgress, timeout=10, direction="up")
    assert progress.done > 0
    assert not sending.done()
    uploaded.set()
    blob_id = await sending
    await wait_for(bob, FileOffered, timeout=10, file_id=blob_id)
    saved = await bob.download(blob_id, tmp_path / "dl")
    assert saved.read_bytes() == source.read_bytes()


async def test_a_file_changed_during_the_upload_is_not_offered(
    pair: tuple[ChatClient, ChatClient],
    relay: RelayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file that grows while it is hashed fails the send; nothing is left to resume,
    and the space the relay had reserved for it is freed."""
    alice, bob = pair
    source = make_file(tmp_path / "log.txt", 3 * CHUNK_SIZE)
    ready = threading.Event()
    ready.set()
    _hash_after(monkeypatch, ready, lambda: source.write_bytes(os.urandom(4 * CHUNK_SIZE)))
    with pytest.raises(TransferError, match="changed while it was being sent"):
        await alice.send_file("bob", source)
    assert alice.files.pending() == []
    assert await relay.store.files_of("alice") == []
    await asyncio.sleep(0.3)
    assert not [e for e in drain(bob) if isinstance(e, FileOffered)]


async def test_a_file_edited_in_place_during_the_upload_is_not_offered(
    pair: tuple[ChatClient, ChatClient],
    relay: RelayServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same size, other bytes, after the first chunks left: the digest would describe a file
    the relay does not hold, so the send fails before anything is offered or kept."""
    alice, bob = pair
    source = make_file(tmp_path / "notes.bin", 3 * CHUNK_SIZE)
    uploaded = threading.Event()
    _hash_after(monkeypatch, uploaded, lambda: source.write_bytes(os.urandom(3 * CHUNK_SIZE)))
    sending = asyncio.create_task(alice.send_file("bob", source))
    await wait_for(alice, TransferProgress, timeout=10, direction="up")
    uploaded.set()
    with pytest.raises(TransferError, match="changed while it was being sent"):
        await sending
    assert alice.files.pending() == []
    assert await relay.store.files_of("alice") == []
    await asyncio.sleep(0.3)
    assert not [e for e in drain(bob) if isinstance(e, FileOffered)]


def test_a_format_1_upload_resumes_only_if_the_file_still_matches(tmp_path: Path) -> None:
    """A pending upload saved before format 2 (plaintext digest) still resumes; edited, not."""
    source = make_file(tmp_path / "old.bin", 2 * CHUNK_SIZE + 9)
    outgoing = transfers.outgoing_file(source)
    manifest = replace(outgoing.manifest(hashlib.sha256(source.read_bytes()).digest()), version=1)
    assert transfers.resume_tags(outgoing, manifest) == transfers.file_tags(outgoing)
    with open(source, "r+b") as handle:
        handle.write(b"edited")
    with pytest.raises(TransferError, match="changed"):
        transfers.resume_tags(outgoing, manifest)


async def test_blob_is_freed_once_every_recipient_has_it(
    pair: tuple[ChatClient, ChatClient], relay: RelayServer, tmp_path: Path
) -> None:
    """The relay deletes a file when its last recipient confirms the download."""
    alice, bob = pair
    blob_id, _ = await send_and_receive(
        alice, bob, make_file(tmp_path / "x.bin", 5000), tmp_path / "dl"
    )
    assert await relay.store.get_file(blob_id) is None
    assert not (relay.files.root / blob_id).exists()


async def test_upload_and_download_resume_after_relay_restart(tmp_path: Path) -> None:
    """A transfer cut by a relay crash continues from the last stored chunk."""
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        async with clients(relay.url, tmp_path, "alice", "bob", fast_reconnect=True) as pair:
            await _interrupted_transfers(relay, *pair, tmp_path)
    finally:
        relay.kill()


async def _interrupted_transfers(
    relay: RelayProcess, alice: ChatClient, bob: ChatClient, tmp_path: Path
) -> None:
    await secure(alice, bob)
    source = make_file(tmp_path / "movie.bin", 8_000_000)

    upload = asyncio.create_task(alice.send_file("bob", source))
    progress = await wait_for(alice, TransferProgress, timeout=20, direction="up")
    while progress.done < 2_000_000:
        progress = await wait_for(alice, TransferProgress, timeout=20, direction="up")
    relay.kill()
    with pytest.raises(TransferError, match="resumes when the relay is back"):
        await upload
    relay.start()
    offer = await wait_for(bob, FileOffered, timeout=30)
    first_up = [e for e in drain(alice) if isinstance(e, TransferProgress)]
    assert first_up and first_up[0].done >= 2_000_000

    download = asyncio.create_task(bob.download(offer.file_id, tmp_path / "dl"))
    progress = await wait_for(bob, TransferProgress, timeout=20, direction="down")
    while progress.done < 2_000_000:
        progress = await wait_for(bob, TransferProgress, timeout=20, direction="down")
    relay.kill()
    with pytest.raises(Exception):  # noqa: B017 - any transport error interrupts it
        await download
    relay.start()
    await asyncio.sleep(0.5)
    for _ in range(100):
        if bob.relay.connected:
            break
        await asyncio.sleep(0.1)
    drain(bob)
    saved = await bob.download(offer.file_id, tmp_path / "dl")
    resumed = [e for e in drain(bob) if isinstance(e, TransferProgress)]
    assert resumed[0].done > 2_000_000 - 8 * CHUNK_SIZE
    assert (
        hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )


async def test_upload_cut_before_its_digest_resumes_once_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay goes down and comes back while the digest is still being computed: the
    reconnect cannot resume an upload it does not know yet, so the send resumes it."""
    digest_may_finish = threading.Event()
    _hash_after(monkeypatch, digest_may_finish)
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        async with clients(relay.url, tmp_path, "alice", "bob", fast_reconnect=True) as pair:
            alice, bob = pair
            await secure(alice, bob)
            source = make_file(tmp_path / "slow.bin", 8_000_000)
            sending = asyncio.create_task(alice.send_file("bob", source))
            await wait_for(alice, TransferProgress, timeout=20, direction="up")
            relay.kill()
            relay.start()
            await wait_for(alice, ConnectionChanged, timeout=30, state=ConnectionState.CONNECTED)
            assert not sending.done()
            digest_may_finish.set()
            with pytest.raises(TransferError, match="resumes when the relay is back"):
                await sending
            offer = await wait_for(bob, FileOffered, timeout=30)
            saved = await bob.download(offer.file_id, tmp_path / "dl")
            assert saved.read_bytes() == source.read_bytes()
            assert alice.files.pending() == []
    finally:
        relay.kill()


async def test_a_damaged_part_file_fails_the_resumed_download(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path
) -> None:
    """Chunks kept from an earlier attempt count towards the digest: a byte changed in
    them on disk is caught, though they are not fetched or authenticated again."""
    alice, bob = pair
    source = make_file(tmp_path / "kept.bin", 3 * CHUNK_SIZE + 100)
    blob_id = await alice.send_file("bob", source)
    await wait_for(bob, FileOffered, file_id=blob_id)
    target = tmp_path / "dl"
    target.mkdir()
    part = target / f".{blob_id}.part"
    part.write_bytes(b"\x00" + source.read_bytes()[1 : 2 * CHUNK_SIZE])
    with pytest.raises(TransferError, match="did not match what the sender described"):
        await bob.download(blob_id, target)
    assert list(target.iterdir()) == []

    part.write_bytes(source.read_bytes()[: 2 * CHUNK_SIZE])
    drain(bob)
    saved = await bob.download(blob_id, target)
    assert saved.read_bytes() == source.read_bytes()
    progress = [e for e in drain(bob) if isinstance(e, TransferProgress)]
    assert progress[0].done == 3 * CHUNK_SIZE


async def test_an_offer_in_format_1_is_checked_against_the_plaintext(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path
) -> None:
    """Clients before manifest format 2 sent SHA-256 of the plaintext: still accepted, and
    still refused when it does not match."""
    alice, bob = pair
    source = make_file(tmp_path / "old.bin", CHUNK_SIZE + 7)
    blob_id = await alice.send_file("bob", source)
    await wait_for(bob, FileOffered, file_id=blob_id)
    vault = bob.vault
    assert vault is not None
    manifest = FileManifest.from_bytes(vault.get(f"file:{blob_id}") or b"")
    assert manifest.version == 2
    wrong = replace(manifest, version=1, digest=hashlib.sha256(b"other").digest())
    vault.put(f"file:{blob_id}", wrong.to_bytes())
    with pytest.raises(TransferError, match="did not match"):
        await bob.download(blob_id, tmp_path / "dl")
    right = replace(wrong, digest=hashlib.sha256(source.read_bytes()).digest())
    vault.put(f"file:{blob_id}", right.to_bytes())
    saved = await bob.download(blob_id, tmp_path / "dl")
    assert saved.read_bytes() == source.read_bytes()


async def test_saved_file_is_not_fetched_again(
    pair: tuple[ChatClient, ChatClient], tmp_path: Path
) -> None:
    """After the relay freed the blob, asking again returns where the file was saved."""
    alice, bob = pair
    blob_id, saved = await send_and_receive(
        alice, bob, make_file(tmp_path / "once.bin", 3000), tmp_path / "dl"
    )
    assert await bob.download(blob_id) == saved
    assert bob.saved_file(blob_id) == saved and alice.saved_file(blob_id) is None
    saved.unlink()
    assert bob.saved_file(blob_id) is None
    with pytest.raises(ServerRejected):
        await bob.download(blob_id, tmp_path / "dl")


async def test_a_relay_that_does_not_announce_binary_files_gets_text_frames(
    relay: RelayServer, relay_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a relay from before binary messages, chunks go as base64 and file_get has
    no `binary` field (such a relay refuses both)."""
    from securechat.protocol import codec
    from securechat.server import connection, dispatch

    def old_session(frame: F.ServerFrame | F.ClientFrame) -> str:
        if isinstance(frame, F.Session):
            frame = msgspec.structs.replace(frame, binary_files=False)
        return codec.encode_str(frame)

    def refuse_binary(data: bytes) -> F.ClientFrame:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "frame is not valid JSON")

    seen: list[bytes] = []

    def spying_parse(data: bytes) -> F.ClientFrame:
        seen.append(data)
        return codec.parse_client_frame(data)

    monkeypatch.setattr(dispatch, "encode_str", old_session)
    monkeypatch.setattr(connection, "parse_client_bulk", refuse_binary)
    monkeypatch.setattr(connection, "parse_client_frame", spying_parse)
    async with clients(relay_url, tmp_path, "alice", "bob") as (alice, bob):
        await secure(alice, bob)
        source = make_file(tmp_path / "old.bin", 2 * CHUNK_SIZE + 5)
        _, saved = await send_and_receive(alice, bob, source, tmp_path / "in")
        assert saved.read_bytes() == source.read_bytes()
    file_frames = [f for f in seen if b'"file_chunk"' in f or b'"file_get"' in f]
    assert len(file_frames) >= 6
    assert not any(b'"binary"' in f for f in file_frames)
