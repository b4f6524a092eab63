"""Encrypted file sharing: a fresh key per file and chunked AES-256-GCM.

A file is cut into CHUNK_SIZE pieces; every piece but the last is exactly CHUNK_SIZE and
the last (possibly empty) carries the final flag. Each chunk's nonce is derived from its
index and final flag (unique under a per-file key, so no nonce is stored) and the AAD binds
the file id, index and final flag. Hence a relay that drops the tail (no chunk opens as
final), reorders chunks (index mismatch), or splices in a chunk of another file (file id and
key mismatch) is caught by authentication. Chunk blob = ciphertext || 16-byte tag.

The FileManifest (key, id, size, digest, name, type) travels inside a ratchet message, so
only the two ends ever learn the key. Its digest (format 2) is SHA-256 over the chunks' tags
in order: it pins the exact sealed file, and a receiver gets the tags from the chunks it
authenticates anyway, where format 1's SHA-256 of the plaintext cost a second pass over
every byte. The digest still matters after the AEAD: it checks the chunks a resumed
download kept on disk from an earlier attempt, and that a resumed upload sealed the same
file as the first attempt.

The nonce comes from the index, so a chunk index must never be sealed to two different
plaintexts under one key: the relay would learn their XOR and GHASH key material to forge
chunks. A `SealLedger` holds the tag each index was sealed to (or must be sealed to) and
refuses anything else, so an upload resumed from wherever the relay says, of a file edited
in place meanwhile, stops before sealing instead of reusing a nonce.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.errors import AuthenticationFailed, InvalidKeyMaterial, SealConflict

CHUNK_SIZE = 64 * 1024
FILE_KEY_SIZE = 32
FILE_ID_SIZE = 16
_TAG_SIZE = primitives.AES_GCM_TAG_SIZE
_AAD_LABEL = b"securechat file chunk v1"
MANIFEST_VERSION = 2
_PLAINTEXT_DIGEST_VERSION = 1


def ciphertext_size(plaintext_size: int) -> int:
    """Total size of the sealed chunks: one tag per chunk, and an empty file is one chunk."""
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return plaintext_size + chunks * _TAG_SIZE


def _nonce(index: int, final: bool) -> bytes:
    return bytes((int(final), 0, 0, 0)) + index.to_bytes(8, "big")


def _aad(file_id: bytes, index: int, final: bool) -> bytes:
    return _AAD_LABEL + file_id + index.to_bytes(8, "big") + bytes((int(final),))


def _check(key: bytes, file_id: bytes) -> primitives.AesGcm:
    if len(key) != FILE_KEY_SIZE or len(file_id) != FILE_ID_SIZE:
        raise InvalidKeyMaterial("A file key must be 32 bytes and a file id 16 bytes.")
    return primitives.AesGcm(key)


class FileSealer:
    __slots__ = ("_aead", "_file_id")

    def __init__(self, key: bytes, file_id: bytes) -> None:
        self._aead = _check(key, file_id)
        self._file_id = file_id

    def seal_chunk(self, index: int, data: bytes, final: bool) -> bytes:
        # Fixed chunk boundaries give every file exactly one chunking, so the receiver can
        # check sizes against the manifest before decrypting anything.
        if len(data) > CHUNK_SIZE or (not final and len(data) != CHUNK_SIZE):
            raise ValueError("Every chunk but the last must be exactly CHUNK_SIZE bytes.")
        return self._aead.seal(_nonce(index, final), data, _aad(self._file_id, index, final))


class FileOpener:
    __slots__ = ("_aead", "_file_id")

    def __init__(self, key: bytes, file_id: bytes) -> None:
        self._aead = _check(key, file_id)
        self._file_id = file_id

    def open_chunk(self, index: int, blob: bytes, final: bool) -> bytes:
        if len(blob) > CHUNK_SIZE + _TAG_SIZE:
            raise _damaged()
        try:
            return self._aead.open(_nonce(index, final), blob, _aad(self._file_id, index, final))
        except AuthenticationFailed as exc:
            raise _damaged() from exc


def _damaged() -> AuthenticationFailed:
    return AuthenticationFailed(
        "The file was altered, truncated or mixed with another file in transit; "
        "ask the sender to share it again."
    )


@dataclass(frozen=True, repr=False)
class FileManifest:
    file_id: bytes
    key: bytes
    size: int
    digest: bytes
    """Format 2: SHA-256 over the chunk tags; format 1: SHA-256 of the plaintext."""
    name: str
    mime: str
    version: int = MANIFEST_VERSION

    def __repr__(self) -> str:
        return f"FileManifest(name={self.name!r}, size={self.size}, mime={self.mime!r})"

    def to_bytes(self) -> bytes:
        return (
            Writer(Kind.FILE_MANIFEST, self.version)
            .fixed(self.file_id)
            .fixed(self.key)
            .u64(self.size)
            .fixed(self.digest)
            .text(self.name)
            .text(self.mime)
            .finish()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FileManifest:
        r = Reader(
            data,
            Kind.FILE_MANIFEST,
            "file description",
            frozenset({_PLAINTEXT_DIGEST_VERSION, MANIFEST_VERSION}),
        )
        manifest = cls(
            file_id=r.fixed(FILE_ID_SIZE),
            key=r.fixed(FILE_KEY_SIZE),
            size=r.u64(),
            digest=r.fixed(32),
            name=r.text(max_size=1024),
            mime=r.text(max_size=255),
            version=r.version,
        )
        r.end()
        return manifest


def _tag(blob: bytes) -> bytes:
    return blob[-_TAG_SIZE:]


def chunk_tag(blob: bytes) -> bytes:
    """The GCM tag of a sealed chunk: what the format 2 digest and a `SealLedger` keep."""
    return _tag(blob)


def tags_digest(tags: Iterable[bytes]) -> bytes:
    """The format 2 manifest digest of a file whose chunks sealed to `tags`, in order."""
    digest = primitives.Sha256()
    for tag in tags:
        digest.update(tag)
    return digest.digest()


class SealLedger:
    """What each chunk index of one file key was sealed to, so it is sealed to nothing else.

    Tags stand for what was sealed: under one key, nonce and AAD, equal tags mean equal
    ciphertexts except with negligible probability. Before the expected tags are known (a
    first upload sends while its digest is computed), the ledger keeps the tags it saw and
    checks them once `expect` gives the list; from then on each chunk is checked before it
    may leave. A resumed upload starts with the tags its manifest's digest was made from.
    """

    __slots__ = ("_expected", "_sealed")

    def __init__(self, expected: Sequence[bytes] | None = None) -> None:
        self._expected: tuple[bytes, ...] | None = None if expected is None else tuple(expected)
        self._sealed: dict[int, bytes] = {}

    def expect(self, tags: Sequence[bytes]) -> None:
        """Fixes the tags every index must seal to; raises SealConflict if one already differs."""
        expected = tuple(tags)
        for index, tag in self._sealed.items():
            if index >= len(expected) or not primitives.constant_time_equal(tag, expected[index]):
                raise SealConflict(index)
        self._expected = expected
        self._sealed = {}

    def record(self, index: int, blob: bytes) -> None:
        """Call before `blob` (chunk `index`, just sealed) is sent; raises SealConflict."""
        tag = _tag(blob)
        if self._expected is not None:
            if index >= len(self._expected) or not primitives.constant_time_equal(
                tag, self._expected[index]
            ):
                raise SealConflict(index)
            return
        seen = self._sealed.setdefault(index, tag)
        if not primitives.constant_time_equal(seen, tag):
            raise SealConflict(index)


class ChunkDigest:
    """The digest of a manifest, fed one sealed chunk at a time (format 2)."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = primitives.Sha256()

    def add(self, blob: bytes) -> None:
        self._hash.update(_tag(blob))

    def value(self) -> bytes:
        return self._hash.digest()


class FileCheck:
    """What a receiver compares with the manifest's digest, chunk by chunk.

    A chunk opened from the relay counts through `received`; a chunk an earlier attempt
    already saved counts through `kept`, which for format 2 seals its plaintext again to
    recover its tag (sealing is deterministic: the nonce comes from the index).
    """

    __slots__ = ("_hash", "_manifest", "_plaintext", "_sealer")

    def __init__(self, manifest: FileManifest) -> None:
        self._manifest = manifest
        self._plaintext = manifest.version == _PLAINTEXT_DIGEST_VERSION
        self._sealer = FileSealer(manifest.key, manifest.file_id)
        self._hash = primitives.Sha256()

    def received(self, blob: bytes, plain: bytes) -> None:
        self._hash.update(plain if self._plaintext else _tag(blob))

    def kept(self, index: int, plain: bytes) -> None:
        """A whole non-final chunk from an earlier, interrupted download."""
        if self._plaintext:
            self._hash.update(plain)
        else:
            self._hash.update(_tag(self._sealer.seal_chunk(index, plain, final=False)))

    def matches(self) -> bool:
        return primitives.constant_time_equal(self._hash.digest(), self._manifest.digest)


def seal_file(data: bytes, name: str, mime: str) -> tuple[FileManifest, list[bytes]]:
    """Encrypt an in-memory file under a fresh key; stream large files with FileSealer."""
    file_id = primitives.random_bytes(FILE_ID_SIZE)
    key = primitives.random_bytes(FILE_KEY_SIZE)
    sealer = FileSealer(key, file_id)
    starts = range(0, max(len(data), 1), CHUNK_SIZE)
    last = len(starts) - 1
    chunks = [
        sealer.seal_chunk(i, data[start : start + CHUNK_SIZE], final=i == last)
        for i, start in enumerate(starts)
    ]
    digest = ChunkDigest()
    for blob in chunks:
        digest.add(blob)
    return FileManifest(file_id, key, len(data), digest.value(), name, mime), chunks


def open_file(manifest: FileManifest, chunks: Sequence[bytes]) -> bytes:
    """Decrypt every chunk in order, the last as final, and check size and digest."""
    if not chunks:
        raise _damaged()
    opener = FileOpener(manifest.key, manifest.file_id)
    check = FileCheck(manifest)
    last = len(chunks) - 1
    pieces = []
    for i, blob in enumerate(chunks):
        plain = opener.open_chunk(i, blob, final=i == last)
        check.received(blob, plain)
        pieces.append(plain)
    data = b"".join(pieces)
    if len(data) != manifest.size or not check.matches():
        raise _damaged()
    return data
