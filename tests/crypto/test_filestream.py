"""Chunked file encryption: round trips and every way a relay can mangle the stream."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from securechat.crypto import (
    CHUNK_SIZE,
    AuthenticationFailed,
    FileManifest,
    FileOpener,
    FileSealer,
    InvalidKeyMaterial,
    ciphertext_size,
    open_file,
    seal_file,
)
from securechat.crypto.errors import SealConflict
from securechat.crypto.filestream import (
    ChunkDigest,
    FileCheck,
    SealLedger,
    chunk_tag,
    tags_digest,
)

_KEY, _FILE_ID = bytes(range(32)), bytes(range(16))


def _sealed(index: int, data: bytes) -> bytes:
    return FileSealer(_KEY, _FILE_ID).seal_chunk(index, data, final=False)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE - 5])
def test_round_trip(size: int) -> None:
    """Boundary sizes encrypt to the predicted size and decrypt back."""
    data = bytes(i % 251 for i in range(size))
    manifest, chunks = seal_file(data, "f.bin", "application/octet-stream")
    assert sum(len(c) for c in chunks) == ciphertext_size(size)
    assert len(chunks) == max(1, -(-size // CHUNK_SIZE))
    assert open_file(FileManifest.from_bytes(manifest.to_bytes()), chunks) == data


def test_empty_file_is_one_final_chunk() -> None:
    """An empty file still carries one authenticated (final) chunk, so it cannot be faked."""
    manifest, chunks = seal_file(b"", "empty", "text/plain")
    assert len(chunks) == 1 and len(chunks[0]) == 16
    opener = FileOpener(manifest.key, manifest.file_id)
    assert opener.open_chunk(0, chunks[0], final=True) == b""


@pytest.fixture(scope="module")
def sealed() -> tuple[FileManifest, list[bytes]]:
    return seal_file(b"x" * (2 * CHUNK_SIZE + 10), "three.bin", "application/octet-stream")


def test_tampered_chunk(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """One flipped bit anywhere fails the whole file."""
    manifest, chunks = sealed
    bad = [chunks[0], bytes([chunks[1][0] ^ 1]) + chunks[1][1:], chunks[2]]
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, bad)


def test_truncated_stream(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """Dropping the tail leaves a last chunk not sealed as final: refused."""
    manifest, chunks = sealed
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, chunks[:2])
    opener = FileOpener(manifest.key, manifest.file_id)
    with pytest.raises(AuthenticationFailed):
        opener.open_chunk(1, chunks[1], final=True)
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, [])


def test_extended_stream(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """Appending a chunk after the final one is refused."""
    manifest, chunks = sealed
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, [*chunks, chunks[0]])


def test_reordered_chunks(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """Swapping two full chunks is detected through the index in nonce and AAD."""
    manifest, chunks = sealed
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, [chunks[1], chunks[0], chunks[2]])


def test_spliced_chunk_from_another_file(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """A chunk of another file at the same index does not open here."""
    manifest, chunks = sealed
    _, other = seal_file(b"x" * (2 * CHUNK_SIZE + 10), "other.bin", "application/octet-stream")
    with pytest.raises(AuthenticationFailed):
        open_file(manifest, [chunks[0], other[1], chunks[2]])


def test_same_key_other_file_id(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """Even under the same key, the file id binds chunks to their file."""
    manifest, chunks = sealed
    opener = FileOpener(manifest.key, bytes(16))
    with pytest.raises(AuthenticationFailed):
        opener.open_chunk(0, chunks[0], final=False)


def test_wrong_key(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """Another key fails authentication."""
    manifest, chunks = sealed
    with pytest.raises(AuthenticationFailed):
        FileOpener(bytes(32), manifest.file_id).open_chunk(0, chunks[0], final=False)


def test_manifest_size_and_digest_checked(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """A manifest whose size or digest disagrees with the content is refused."""
    manifest, chunks = sealed
    with pytest.raises(AuthenticationFailed):
        open_file(replace(manifest, size=manifest.size + 1), chunks)
    with pytest.raises(AuthenticationFailed):
        open_file(replace(manifest, digest=bytes(32)), chunks)


def test_sealer_enforces_fixed_chunking() -> None:
    """Non-final chunks must be exactly CHUNK_SIZE so each file has one chunking."""
    sealer = FileSealer(bytes(32), bytes(16))
    with pytest.raises(ValueError):
        sealer.seal_chunk(0, b"short", final=False)
    with pytest.raises(ValueError):
        sealer.seal_chunk(0, bytes(CHUNK_SIZE + 1), final=True)


def test_bad_key_sizes() -> None:
    """Keys and file ids of the wrong size are refused up front."""
    with pytest.raises(InvalidKeyMaterial):
        FileSealer(bytes(16), bytes(16))
    with pytest.raises(InvalidKeyMaterial):
        FileOpener(bytes(32), bytes(8))


def test_manifest_malformed(sealed: tuple[FileManifest, list[bytes]]) -> None:
    """A truncated manifest raises InvalidKeyMaterial."""
    data = sealed[0].to_bytes()
    with pytest.raises(InvalidKeyMaterial):
        FileManifest.from_bytes(data[:-1])


def _check_with(manifest: FileManifest, chunks: list[bytes], kept: int, plain: bytes) -> bool:
    """A download that resumes after `kept` chunks saved by an earlier attempt."""
    check = FileCheck(manifest)
    opener = FileOpener(manifest.key, manifest.file_id)
    for index in range(kept):
        check.kept(index, plain[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE])
    for index in range(kept, len(chunks)):
        blob = chunks[index]
        check.received(blob, opener.open_chunk(index, blob, final=index == len(chunks) - 1))
    return check.matches()


@pytest.mark.parametrize("kept", [0, 1, 2])
def test_digest_covers_chunks_kept_from_an_earlier_attempt(
    sealed: tuple[FileManifest, list[bytes]], kept: int
) -> None:
    """Chunks saved before an interruption count as if received; a changed byte in one of
    them fails the check, though those bytes never pass through the AEAD again."""
    manifest, chunks = sealed
    plain = b"x" * (2 * CHUNK_SIZE + 10)
    assert _check_with(manifest, chunks, kept, plain)
    if kept:
        damaged = b"y" + plain[1:]
        assert not _check_with(manifest, chunks, kept, damaged)


def test_format_1_manifests_check_the_plaintext_digest() -> None:
    """Offers from clients before format 2 carry SHA-256 of the plaintext; still verified."""
    data = b"z" * (CHUNK_SIZE + 3)
    manifest, chunks = seal_file(data, "old.bin", "application/octet-stream")
    old = replace(manifest, digest=hashlib.sha256(data).digest(), version=1)
    parsed = FileManifest.from_bytes(old.to_bytes())
    assert parsed.version == 1
    assert open_file(parsed, chunks) == data
    assert _check_with(parsed, chunks, 1, data)
    assert not _check_with(parsed, chunks, 1, b"!" + data[1:])
    with pytest.raises(AuthenticationFailed):
        open_file(replace(parsed, digest=manifest.digest), chunks)


def test_the_digest_is_over_the_sealed_chunks() -> None:
    """Format 2's digest is SHA-256 over the tags in order: reordering them changes it."""
    manifest, chunks = seal_file(b"q" * (3 * CHUNK_SIZE), "t.bin", "application/octet-stream")
    tags = b"".join(blob[-16:] for blob in chunks)
    assert manifest.digest == hashlib.sha256(tags).digest()
    digest = ChunkDigest()
    for blob in reversed(chunks):
        digest.add(blob)
    assert digest.value() != manifest.digest


def test_tags_digest_is_the_manifest_digest() -> None:
    """The digest rebuilt from the chunks' tags is the one seal_file puts in the manifest."""
    manifest, chunks = seal_file(b"x" * (2 * CHUNK_SIZE + 3), "f", "text/plain")
    assert tags_digest(chunk_tag(c) for c in chunks) == manifest.digest


def test_ledger_allows_the_same_bytes_again() -> None:
    """Resealing identical data gives the identical chunk: sending it twice leaks nothing."""
    ledger = SealLedger()
    first = _sealed(0, b"a" * CHUNK_SIZE)
    ledger.record(0, first)
    ledger.record(0, _sealed(0, b"a" * CHUNK_SIZE))
    ledger.expect([chunk_tag(first)])
    ledger.record(0, first)


def test_ledger_refuses_other_bytes_under_a_used_nonce() -> None:
    """Index 0 sealed once: sealing other data at index 0 is refused, before and after expect."""
    ledger = SealLedger()
    ledger.record(0, _sealed(0, b"a" * CHUNK_SIZE))
    with pytest.raises(SealConflict) as info:
        ledger.record(0, _sealed(0, b"b" * CHUNK_SIZE))
    assert info.value.index == 0
    expected = SealLedger([chunk_tag(_sealed(0, b"a" * CHUNK_SIZE))])
    with pytest.raises(SealConflict):
        expected.record(0, _sealed(0, b"b" * CHUNK_SIZE))
    with pytest.raises(SealConflict):
        expected.record(1, _sealed(1, b"a" * CHUNK_SIZE))


def test_ledger_expect_checks_what_was_sent_before() -> None:
    """Chunks sent before the tags were known must match them once they are."""
    ledger = SealLedger()
    ledger.record(0, _sealed(0, b"a" * CHUNK_SIZE))
    with pytest.raises(SealConflict):
        ledger.expect([chunk_tag(_sealed(0, b"b" * CHUNK_SIZE))])
    with pytest.raises(SealConflict):
        ledger.expect([])  # a chunk sent beyond the file as it is now
