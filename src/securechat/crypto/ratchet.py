"""The Double Ratchet (Signal specification) with X25519, HKDF/HMAC-SHA-256 and AES-256-GCM.

Pure functions over an immutable RatchetState: `encrypt` and `decrypt` return a new state
and never touch the one passed in, so a failed decryption leaves the caller's state as it
was and the caller stores the new state only on success.

Bounds (all per session):
- MAX_SKIP: a message may skip at most this many keys of its chain, or it is refused with
  TooManySkippedMessages (the sender cannot make us derive keys without limit).
- MAX_SKIPPED_KEYS: stored keys of messages not yet received; past it the oldest are
  evicted and those messages can no longer be read.
- Skipped keys also expire, as the Double Ratchet specification advises, since each one
  left is a key a later thief could use: those of a chain that finished more than
  MAX_SKIPPED_AGE ago (the caller passes the time: the ratchet stays pure), and those of a
  chain that fell out of the last MAX_TRACKED_CHAINS DH ratchet steps.
- Replay: for the current receiving chain and the last MAX_TRACKED_CHAINS finished ones we
  keep how many keys the chain produced. A message numbered below that mark whose key is
  not in the skipped store was already consumed (or its key was evicted) and is refused
  with DuplicateMessage. A replay from a chain older than that record is refused too, but
  as AuthenticationFailed: it looks like a new ratchet key whose derived key does not open.

Key confirmation (`confirmed`, the "end-to-end active" rule): a side is confirmed once it
has decrypted a message under a peer ratchet key that the peer generated after receiving
something from us. Every ratchet key of the responder answers the initiator's first one, so
the initiator is confirmed by any reply; the responder is confirmed by the first message
under an initiator ratchet key other than the initiator's first one.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping

import msgspec

from securechat.crypto import primitives
from securechat.crypto._codec import Kind, Reader, Writer
from securechat.crypto.chains import kdf_chain, kdf_root
from securechat.crypto.errors import (
    AuthenticationFailed,
    DuplicateMessage,
    InvalidKeyMaterial,
    TooManySkippedMessages,
)

MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
MAX_TRACKED_CHAINS = 64
MAX_SKIPPED_AGE = 7 * 24 * 3600
"""Seconds after its chain finished that a skipped key is deleted."""

_STATE_VERSION = 2
"""Version 2 adds when each finished chain finished; version 1 states load without it."""
_STATE_VERSIONS = frozenset({1, _STATE_VERSION})
_MESSAGE_VERSION = 1
_MESSAGE_PREFIX = bytes((Kind.RATCHET_MESSAGE, _MESSAGE_VERSION))
_HEADER = struct.Struct(">32sII")
_NONCE_SIZE = primitives.AES_GCM_NONCE_SIZE
_MIN_MESSAGE_SIZE = len(_MESSAGE_PREFIX) + _HEADER.size + _NONCE_SIZE + primitives.AES_GCM_TAG_SIZE
MESSAGE_OVERHEAD = _MIN_MESSAGE_SIZE
"""Bytes a ratchet message adds to its plaintext (kind, version, header, nonce, tag)."""

SkippedKeys = Mapping[tuple[bytes, int], bytes]


class MessageHeader(msgspec.Struct, frozen=True):
    ratchet_key: bytes
    previous_length: int
    number: int


class RatchetMessage(msgspec.Struct, frozen=True):
    """Wire form: kind, version, header (ratchet key 32, pn u32, n u32), nonce 12, AEAD output.

    The nonce is random rather than derived: if a crash ever restores an older state and a
    message key is used twice, distinct nonces keep AES-GCM from leaking its keystream.
    """

    header: MessageHeader
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return _header_bytes(self.header) + self.nonce + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetMessage:
        # Anything from the network that does not parse is treated like a forgery.
        if len(data) < _MIN_MESSAGE_SIZE or data[0] != Kind.RATCHET_MESSAGE:
            raise AuthenticationFailed("A message arrived damaged and was discarded.")
        Reader(data[:2], Kind.RATCHET_MESSAGE, "message", frozenset({_MESSAGE_VERSION}))
        key, previous, number = _HEADER.unpack_from(data, 2)
        start = 2 + _HEADER.size
        return cls(
            MessageHeader(key, previous, number),
            data[start : start + _NONCE_SIZE],
            data[start + _NONCE_SIZE :],
        )


class RatchetState(msgspec.Struct, frozen=True):
    """One side of a session. A frozen msgspec Struct rather than a dataclass because every
    message makes a modified copy, and msgspec.structs.replace is many times cheaper than
    dataclasses.replace on this hot path."""

    session_id: bytes
    root_key: bytes
    self_private: bytes
    self_public: bytes
    remote_public: bytes | None
    send_chain: bytes | None
    recv_chain: bytes | None
    send_n: int
    recv_n: int
    previous_send_n: int
    # Insertion-ordered so eviction drops the oldest first; never mutated after creation.
    skipped: SkippedKeys
    # Finished receiving chains: peer ratchet key -> number of keys the chain produced.
    finished_chains: Mapping[bytes, int]
    # The peer's first ratchet key as seen by the responder; empty for the initiator.
    first_peer_key: bytes
    confirmed: bool
    # Finished receiving chains: peer ratchet key -> when it finished (seconds; 0 unknown,
    # as in version 1 states, until the next expiry stamps it with that time).
    finished_at: Mapping[bytes, int] = {}

    def __repr__(self) -> str:
        return (
            f"RatchetState(session={self.session_id.hex()[:16]}, sent={self.send_n}, "
            f"received={self.recv_n}, skipped={len(self.skipped)}, confirmed={self.confirmed})"
        )

    def to_bytes(self) -> bytes:
        w = (
            Writer(Kind.RATCHET_STATE, _STATE_VERSION)
            .blob(self.session_id)
            .fixed(self.root_key)
            .fixed(self.self_private)
        )
        for optional in (self.remote_public, self.send_chain, self.recv_chain):
            if optional is None:
                w.u8(0)
            else:
                w.u8(1).fixed(optional)
        w.u32(self.send_n).u32(self.recv_n).u32(self.previous_send_n)
        w.blob(self.first_peer_key).u8(int(self.confirmed))
        w.u32(len(self.skipped))
        for (ratchet_key, number), message_key in self.skipped.items():
            w.fixed(ratchet_key).u32(number).fixed(message_key)
        w.u32(len(self.finished_chains))
        for ratchet_key, length in self.finished_chains.items():
            w.fixed(ratchet_key).u32(length).u64(self.finished_at.get(ratchet_key, 0))
        return w.finish()

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetState:
        r = Reader(data, Kind.RATCHET_STATE, "session state", _STATE_VERSIONS)
        session_id = r.blob(max_size=64)
        root_key, self_private = r.fixed(32), r.fixed(32)
        remote_public, send_chain, recv_chain = _optional_key(r), _optional_key(r), _optional_key(r)
        send_n, recv_n, previous_send_n = r.u32(), r.u32(), r.u32()
        first_peer_key = r.blob(max_size=32)
        confirmed = r.flag()
        skipped_count = r.u32()
        if skipped_count > MAX_SKIPPED_KEYS:
            raise r.fail("too many skipped message keys")
        skipped: dict[tuple[bytes, int], bytes] = {}
        for _ in range(skipped_count):
            ratchet_key, number = r.fixed(32), r.u32()
            skipped[(ratchet_key, number)] = r.fixed(32)
        chain_count = r.u32()
        if chain_count > MAX_TRACKED_CHAINS:
            raise r.fail("too many finished chains")
        finished: dict[bytes, int] = {}
        finished_at: dict[bytes, int] = {}
        for _ in range(chain_count):
            ratchet_key = r.fixed(32)
            finished[ratchet_key] = r.u32()
            if r.version >= 2:
                finished_at[ratchet_key] = r.u64()
        r.end()
        return cls(
            session_id=session_id,
            root_key=root_key,
            self_private=self_private,
            self_public=primitives.x25519_public(self_private),
            remote_public=remote_public,
            send_chain=send_chain,
            recv_chain=recv_chain,
            send_n=send_n,
            recv_n=recv_n,
            previous_send_n=previous_send_n,
            skipped=skipped,
            finished_chains=finished,
            first_peer_key=first_peer_key,
            confirmed=confirmed,
            finished_at=finished_at,
        )


def _optional_key(r: Reader) -> bytes | None:
    return r.fixed(32) if r.flag() else None


def start_as_initiator(
    session_id: bytes, shared_key: bytes, peer_ratchet_key: bytes
) -> RatchetState:
    """RatchetInitAlice: the responder's signed prekey is its first ratchet key."""
    private, public = primitives.x25519_generate()
    root_key, send_chain = kdf_root(shared_key, primitives.x25519_agree(private, peer_ratchet_key))
    return _new_state(session_id, root_key, private, public, peer_ratchet_key, send_chain)


def start_as_responder(
    session_id: bytes, shared_key: bytes, own_ratchet_private: bytes
) -> RatchetState:
    """RatchetInitBob: no sending chain until the initiator's first message arrives."""
    public = primitives.x25519_public(own_ratchet_private)
    return _new_state(session_id, shared_key, own_ratchet_private, public, None, None)


def _new_state(
    session_id: bytes,
    root_key: bytes,
    self_private: bytes,
    self_public: bytes,
    remote_public: bytes | None,
    send_chain: bytes | None,
) -> RatchetState:
    """A session before its first message: counters at zero, nothing skipped or confirmed."""
    return RatchetState(
        session_id=session_id,
        root_key=root_key,
        self_private=self_private,
        self_public=self_public,
        remote_public=remote_public,
        send_chain=send_chain,
        recv_chain=None,
        send_n=0,
        recv_n=0,
        previous_send_n=0,
        skipped={},
        finished_chains={},
        finished_at={},
        first_peer_key=b"",
        confirmed=False,
    )


def encrypt(
    state: RatchetState, plaintext: bytes, sender: str, recipient: str
) -> tuple[RatchetState, RatchetMessage]:
    if state.send_chain is None:
        raise InvalidKeyMaterial(
            "This session cannot send until it has received its contact's first message."
        )
    send_chain, message_key = kdf_chain(state.send_chain)
    header = MessageHeader(state.self_public, state.previous_send_n, state.send_n)
    nonce = primitives.random_bytes(_NONCE_SIZE)
    ad = _associated_data(state.session_id, sender, recipient, _header_bytes(header))
    message = RatchetMessage(
        header, nonce, primitives.aes_gcm_seal(message_key, nonce, plaintext, ad)
    )
    return msgspec.structs.replace(state, send_chain=send_chain, send_n=state.send_n + 1), message


def decrypt(
    state: RatchetState,
    message: RatchetMessage,
    sender: str,
    recipient: str,
    now: int | None = None,
) -> tuple[RatchetState, bytes]:
    """Opens a message; with `now` (seconds) it also deletes the skipped keys that expired."""
    new_state, plaintext = _decrypt(state, message, sender, recipient, now)
    return (new_state if now is None else expire_skipped(new_state, now)), plaintext


def expire_skipped(state: RatchetState, now: int) -> RatchetState:
    """Deletes the skipped keys of chains that finished more than MAX_SKIPPED_AGE ago.

    Chains whose finishing time is unknown (version 1 states) are stamped `now`, so their
    keys get the full MAX_SKIPPED_AGE from the upgrade on. A state without skipped keys is
    returned as is, so the common case costs nothing.
    """
    if not state.skipped:
        return state
    stamps = {key: state.finished_at.get(key) or now for key in state.finished_chains}
    expired = {key for key, finished in stamps.items() if now - finished > MAX_SKIPPED_AGE}
    if not expired and stamps == state.finished_at:
        return state
    skipped = {slot: key for slot, key in state.skipped.items() if slot[0] not in expired}
    return msgspec.structs.replace(state, skipped=skipped, finished_at=stamps)


def _decrypt(
    state: RatchetState,
    message: RatchetMessage,
    sender: str,
    recipient: str,
    now: int | None,
) -> tuple[RatchetState, bytes]:
    header = message.header
    ad = _associated_data(state.session_id, sender, recipient, _header_bytes(header))

    skipped_key = state.skipped.get((header.ratchet_key, header.number))
    if skipped_key is not None:
        plaintext = _open(skipped_key, message, ad)
        remaining = dict(state.skipped)
        del remaining[(header.ratchet_key, header.number)]
        return _confirm(msgspec.structs.replace(state, skipped=remaining), header), plaintext

    if header.ratchet_key in state.finished_chains:
        if header.number < state.finished_chains[header.ratchet_key]:
            raise _duplicate()
        raise _forged()

    if header.ratchet_key == state.remote_public:
        if state.recv_chain is None:
            raise _forged()
        if header.number < state.recv_n:
            raise _duplicate()
        working = state
    else:
        working = _dh_ratchet(state, header, now)

    assert working.recv_chain is not None and working.remote_public is not None
    recv_chain, skipped = _skip(
        working.remote_public, working.recv_chain, working.recv_n, header.number, working.skipped
    )
    recv_chain, message_key = kdf_chain(recv_chain)
    plaintext = _open(message_key, message, ad)
    new_state = msgspec.structs.replace(
        working, recv_chain=recv_chain, recv_n=header.number + 1, skipped=skipped
    )
    return _confirm(new_state, header), plaintext


def _dh_ratchet(state: RatchetState, header: MessageHeader, now: int | None) -> RatchetState:
    skipped: SkippedKeys = state.skipped
    finished = state.finished_chains
    finished_at = state.finished_at
    if state.recv_chain is not None and state.remote_public is not None:
        _, skipped = _skip(
            state.remote_public,
            state.recv_chain,
            state.recv_n,
            header.previous_length,
            state.skipped,
        )
        finished = dict(finished)
        finished[state.remote_public] = max(state.recv_n, header.previous_length)
        dropped = set()
        while len(finished) > MAX_TRACKED_CHAINS:
            oldest = next(iter(finished))
            dropped.add(oldest)
            del finished[oldest]
        if dropped:
            # A chain this many DH steps old: its missing messages are not coming.
            skipped = {slot: key for slot, key in skipped.items() if slot[0] not in dropped}
        finished_at = {key: state.finished_at.get(key, 0) for key in finished}
        finished_at[state.remote_public] = now or 0
    try:
        root_key, recv_chain = kdf_root(
            state.root_key, primitives.x25519_agree(state.self_private, header.ratchet_key)
        )
        private, public = primitives.x25519_generate()
        root_key, send_chain = kdf_root(
            root_key, primitives.x25519_agree(private, header.ratchet_key)
        )
    except InvalidKeyMaterial as exc:
        raise _forged() from exc
    return msgspec.structs.replace(
        state,
        root_key=root_key,
        self_private=private,
        self_public=public,
        remote_public=header.ratchet_key,
        send_chain=send_chain,
        recv_chain=recv_chain,
        previous_send_n=state.send_n,
        send_n=0,
        recv_n=0,
        skipped=skipped,
        finished_chains=finished,
        finished_at=finished_at,
        first_peer_key=header.ratchet_key if state.remote_public is None else state.first_peer_key,
    )


def _skip(
    remote: bytes, chain_key: bytes, start: int, until: int, skipped: SkippedKeys
) -> tuple[bytes, SkippedKeys]:
    """Store the keys of messages [start, until) of a chain so they can arrive later."""
    if until <= start:
        return chain_key, skipped
    if until - start > MAX_SKIP:
        raise TooManySkippedMessages(
            f"A message arrived more than {MAX_SKIP} messages ahead of the last one received, "
            "so it cannot be decrypted; ask your contact to send it again."
        )
    grown = dict(skipped)
    for number in range(start, until):
        chain_key, message_key = kdf_chain(chain_key)
        grown[(remote, number)] = message_key
    # Evict the oldest (insertion order) so the store stays bounded.
    for key in list(grown)[: max(0, len(grown) - MAX_SKIPPED_KEYS)]:
        del grown[key]
    return chain_key, grown


def _confirm(state: RatchetState, header: MessageHeader) -> RatchetState:
    if state.confirmed or header.ratchet_key == state.first_peer_key:
        return state
    return msgspec.structs.replace(state, confirmed=True)


def _open(message_key: bytes, message: RatchetMessage, ad: bytes) -> bytes:
    try:
        return primitives.aes_gcm_open(message_key, message.nonce, message.ciphertext, ad)
    except AuthenticationFailed as exc:
        raise _forged() from exc


def _header_bytes(header: MessageHeader) -> bytes:
    """The serialised header, with the message format's kind and version bytes."""
    return _MESSAGE_PREFIX + _HEADER.pack(header.ratchet_key, header.previous_length, header.number)


def _associated_data(session_id: bytes, sender: str, recipient: str, header: bytes) -> bytes:
    return _ad_prefix(session_id, sender, recipient) + header


@functools.lru_cache(maxsize=256)
def _ad_prefix(session_id: bytes, sender: str, recipient: str) -> bytes:
    # Cached because it is the same for every message of a conversation; none of it is secret.
    s, r = sender.encode(), recipient.encode()
    return b"".join((session_id, len(s).to_bytes(2, "big"), s, len(r).to_bytes(2, "big"), r))


def _duplicate() -> DuplicateMessage:
    return DuplicateMessage("This message was already received; the repeated copy was ignored.")


def _forged() -> AuthenticationFailed:
    return AuthenticationFailed(
        "A message could not be authenticated: it was altered, or it was not sent by "
        "your contact in this conversation. It was discarded."
    )
