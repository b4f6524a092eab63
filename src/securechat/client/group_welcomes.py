"""A Welcome too large to travel inline, sent as a file, and the joining device's
wait for it.

Past `WELCOME_INLINE_MAX` (a hybrid-suite Welcome grows by about 3.4 KB a member)
the committer uploads the Welcome, which is already encrypted to each added
device, as a file only the added users may fetch, and names it in its Commit
(`group_commit.welcome_file`). The added device's delivery names the file; it
cannot fetch it there (a delivery makes no request), so the delivery is kept
(`PendingJoins`), with every delivery of the group that follows it, until
`Groups.finish_joins` has fetched the Welcome, joined and opened them in order.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from securechat.client import vault_keys as K
from securechat.client.relay_client import Request
from securechat.client.vault_store import Vault
from securechat.errors import ClientError
from securechat.protocol import frames as F
from securechat.protocol import group_frames as GF
from securechat.protocol.limits import FILE_CHUNK_BYTES, MAX_FILE_PLAINTEXT_BYTES

WELCOME_INLINE_MAX = 256 * 1024
"""A larger Welcome goes as a file (a relay takes 512 KiB inline by default)."""
MAX_WELCOME_CHUNKS = 1 + MAX_FILE_PLAINTEXT_BYTES // FILE_CHUNK_BYTES

_encode = msgspec.msgpack.Encoder().encode
_decode_ids = msgspec.msgpack.Decoder(list[str]).decode
_decode_envelope = msgspec.msgpack.Decoder(GF.GroupEnvelope).decode
_decode_count = msgspec.msgpack.Decoder(int).decode


async def upload(request: Request, data: bytes, readers: list[str]) -> str:
    """The Welcome as a file `readers` may fetch; returns its id."""
    begun = await request(lambda rid: F.FileBegin(rid=rid, size=len(data), recipients=readers))
    if not isinstance(begun, F.FileReady):
        raise ClientError(f"unexpected answer {type(begun).__name__} to file_begin")
    for index, start in enumerate(range(0, len(data), FILE_CHUNK_BYTES)):
        await request(_chunk(begun.file_id, index, data[start : start + FILE_CHUNK_BYTES]))
    return begun.file_id


async def download(request: Request, file_id: str) -> bytes:
    chunks: list[bytes] = []
    while True:
        answer = await request(_get(file_id, len(chunks)))
        if not isinstance(answer, F.FileData) or len(chunks) > MAX_WELCOME_CHUNKS:
            raise ClientError("the relay's answer is not the Welcome's file")
        chunks.append(answer.data)
        if answer.last:
            return b"".join(chunks)


def release(file_id: str) -> Callable[[int], F.ClientFrame]:
    """`file_done`: the relay frees the file once every added user has it."""
    return lambda rid: F.FileDone(rid=rid, file_id=file_id)


def withdraw(file_id: str) -> Callable[[int], F.ClientFrame]:
    """`file_cancel`: a Welcome whose Commit the relay did not take."""
    return lambda rid: F.FileCancel(rid=rid, file_id=file_id)


def _chunk(file_id: str, index: int, data: bytes) -> Callable[[int], F.ClientFrame]:
    return lambda rid: F.FileChunk(rid=rid, file_id=file_id, index=index, data=data)


def _get(file_id: str, index: int) -> Callable[[int], F.ClientFrame]:
    return lambda rid: F.FileGet(rid=rid, file_id=file_id, index=index)


class PendingJoins:
    """The groups whose Welcome is a file not fetched yet, in the vault: the delivery
    naming it and the group's deliveries held behind it. Each write carries the
    delivery's `seen` mark, in one transaction, as every group delivery does."""

    @staticmethod
    def wait(
        vault: Vault, group_id: str, envelope: GF.GroupEnvelope, seen: tuple[str, str] | None
    ) -> None:
        groups = PendingJoins.groups(vault)
        state = {K.group_join(group_id): _encode(envelope)}
        if group_id not in groups:
            state[K.GROUP_JOINS] = _encode([*groups, group_id])
        vault.record_all([], state, seen=seen)

    @staticmethod
    def waiting(vault: Vault, group_id: str) -> bool:
        return vault.get(K.group_join(group_id)) is not None

    @staticmethod
    def hold(
        vault: Vault, group_id: str, envelope: GF.GroupEnvelope, seen: tuple[str, str] | None
    ) -> None:
        """One record per held delivery and a count, so a long backlog behind the
        Welcome costs one small write a delivery, not the whole list again."""
        n = PendingJoins._count(vault, group_id)
        state = {
            K.group_held(group_id, n): _encode(envelope),
            K.group_held_count(group_id): _encode(n + 1),
        }
        vault.record_all([], state, seen=seen)

    @staticmethod
    def _count(vault: Vault, group_id: str) -> int:
        blob = vault.get(K.group_held_count(group_id))
        return _decode_count(blob) if blob else 0

    @staticmethod
    def groups(vault: Vault) -> list[str]:
        blob = vault.get(K.GROUP_JOINS)
        return _decode_ids(blob) if blob else []

    @staticmethod
    def welcome(vault: Vault, group_id: str) -> GF.GroupEnvelope | None:
        """The delivery naming the Welcome's file; None once the device joined."""
        blob = vault.get(K.group_join(group_id))
        return _decode_envelope(blob) if blob else None

    @staticmethod
    def held(vault: Vault, group_id: str) -> list[GF.GroupEnvelope]:
        found = []
        for n in range(PendingJoins._count(vault, group_id)):
            blob = vault.get(K.group_held(group_id, n))
            if blob is not None:
                found.append(_decode_envelope(blob))
        return found

    @staticmethod
    def forget(vault: Vault, group_id: str) -> None:
        remaining = [g for g in PendingJoins.groups(vault) if g != group_id]
        count = PendingJoins._count(vault, group_id)
        held = tuple(K.group_held(group_id, n) for n in range(count))
        vault.record_all(
            [],
            {K.GROUP_JOINS: _encode(remaining)},
            drop=(K.group_join(group_id), K.group_held_count(group_id), *held),
        )
