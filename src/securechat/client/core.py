"""`ChatClient`: the headless client core that the TUI, the CLI and tests drive.

It owns the vault, the relay session and the end-to-end sessions, and turns
everything that happens into `events`. The cryptography is the pure
`securechat.crypto` package; this module decides when to call it and keeps
the results in the vault, always in the same transaction as the message
they belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import msgspec

from securechat import paths
from securechat.client import delivery, sequence, transfers
from securechat.client import payloads as P
from securechat.client.conversation import ConversationId
from securechat.client.events import (
    ConnectionChanged,
    ConnectionState,
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    DeliveryState,
    ErrorRaised,
    Event,
    FileOffered,
    KeyChanged,
    KeyKept,
    KeyShared,
    MessageReceived,
    PresenceChanged,
    TransferProgress,
)
from securechat.client.relay_client import OutboxItem, RelayClient, new_envelope_id
from securechat.client.trust import (
    SafetyNumbers,
    SharedKeyOutcome,
    classify_shared_key,
    rejection_record,
    safety_numbers,
)
from securechat.client.trust import offered_name as _offered
from securechat.client.trust import pin_name as _pin
from securechat.client.trust import verified_name as _verified
from securechat.client.vault_store import (
    ConversationRecord,
    MessageRecord,
    StoredMessage,
    Vault,
)
from securechat.crypto import handshake, prekeys, ratchet, sessions
from securechat.crypto.errors import (
    CryptoError,
    IdentityKeyMismatch,
    TooManySkippedMessages,
    WrongPassword,
)
from securechat.crypto.filestream import FileManifest, SealLedger, tags_digest
from securechat.crypto.identity import IdentityKeyPair, IdentityPublicKey
from securechat.crypto.prekeys import PrekeyBundle, PrekeySecrets
from securechat.crypto.ratchet import RatchetMessage, RatchetState
from securechat.crypto.sessions import SessionRecord
from securechat.crypto.vault import (
    generate_recovery_code,
    is_recovery_code,
    recovery_server_token,
)
from securechat.errors import (
    ClientError,
    ConnectionLost,
    ProtocolError,
    SecureChatError,
    ServerRejected,
    SessionError,
    VaultBehind,
)
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import OPERATOR_TOKEN_PREFIX
from securechat.scanner import InvalidURL, Verdict, decide_from_hashes, prefixes_for

log = logging.getLogger("securechat.client")

K_IDENTITY = "identity"
K_PREKEYS = "prekeys"
K_TOKEN = "token"  # noqa: S105 (a vault entry name, not a secret)
ROTATION_CHECK_SECONDS = 6 * 3600
ONE_TIME_BATCH = 100
"""One-time prekeys uploaded per refill: a day of new contacts for a busy user."""
ONE_TIME_KEM_BATCH = 20
"""One-time ML-KEM prekeys per refill: each costs an RSA signature and 1.6 KB on the relay."""
K_PUBLISHED_SPK = "published_signed_prekey"
K_PUBLISHED_KEM = "published_kem_prekey"


def _session(peer: str) -> str:
    return f"session:{peer}"


def _sessions(peer: str) -> str:
    """The peer's `SessionRecord`: session starts seen, and sessions kept for receiving."""
    return f"sessions:{peer}"


def _jammed(peer: str) -> str:
    """The id of the session with `peer` that jammed (past the skip limit), if one did."""
    return f"jammed:{peer}"


def _token(vault: Vault) -> str | None:
    """The relay session this device holds, if any: a new login replaces it."""
    raw = vault.get(K_TOKEN)
    return raw.decode() if raw else None


def _gone(peer: str) -> str:
    """Set once the relay said `peer`'s account was deleted: after a restart the relay
    no longer knows them as a contact, so the vault remembers."""
    return f"gone:{peer}"


def _file(blob_id: str) -> str:
    return f"file:{blob_id}"


def _saved(blob_id: str) -> str:
    return f"saved:{blob_id}"


K_UPLOADS = "uploads"


VAULT_BEHIND = (
    "The relay accepted this password, but the history on this device is still "
    "locked with your previous password (an operator reset your password). Type the "
    "previous password or your recovery code once: the history is then unlocked and "
    "locked again under the new password."
)


def reset_token_kind(token: str) -> str:
    """What a reset with `token` does to local history: recovery, operator or invalid.

    A recovery code unlocks the vault and keeps it; an operator token resets the
    relay account only, so the vault waits for the previous password.
    """
    if is_recovery_code(token):
        return "recovery"
    return "operator" if token.startswith(OPERATOR_TOKEN_PREFIX) else "invalid"


class PendingUpload(msgspec.Struct, frozen=True, array_like=True):
    """An upload that must finish (and be offered) after a reconnect."""

    blob_id: str
    peer: str
    path: str
    manifest: bytes


class ChatClient:
    retry_after = 60.0
    """Seconds before an unconfirmed message is sent again; doubles with each attempt."""
    max_retries = 8
    missing_after = 180.0
    """Seconds a numbered message may lag behind a later one before it is reported missing."""
    check_every = 5.0

    def __init__(
        self,
        server_url: str,
        data_dir: str | Path | None = None,
        *,
        pin_sha256: str | None = None,
        reconnect: bool = True,
    ) -> None:
        self.server_url = server_url
        self.data_dir = Path(data_dir) if data_dir else None
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.vault: Vault | None = None
        self.identity: IdentityKeyPair | None = None
        self.username: str | None = None
        self.relay = RelayClient(
            server_url,
            outbox=_LazyOutbox(self),
            pin_sha256=pin_sha256,
            on_envelope=self._on_envelope,
            on_push=self._on_push,
            on_event=self._emit,
            reconnect=reconnect,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._uploading: set[str] = set()
        self._rotation: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # --- plumbing ------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if (
            isinstance(event, DeliveryChanged)
            and event.state == DeliveryState.FAILED
            and event.code == ErrorCode.NOT_FOUND
            and self.vault is not None
        ):
            self.vault.put(_gone(event.peer), b"1")
        self.events.put_nowait(event)
        if (
            isinstance(event, ConnectionChanged)
            and event.state == ConnectionState.CONNECTED
            and self.vault is not None
            and self.relay.connected
        ):
            for pending in self._pending_uploads():
                self._spawn(self._finish_upload(pending))
            # The relay keeps watches per connection: a new one watches nobody yet.
            peers = [c.peer for c in self.vault.conversations()]
            if peers:
                self._spawn(self._watch(peers))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._emit(ErrorRaised(str(exc), getattr(exc, "code", "")))

    def _user_dir(self, username: str) -> Path:
        return paths.client_dir(username, self.data_dir)

    def _need_vault(self) -> Vault:
        if self.vault is None:
            raise SessionError("log in first")
        return self.vault

    def _need_identity(self) -> tuple[Vault, IdentityKeyPair, str]:
        vault = self._need_vault()
        assert self.identity is not None and self.username is not None
        return vault, self.identity, self.username

    async def connect(self) -> None:
        await self.relay.connect()

    async def close(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.relay.close()
        if self.vault is not None:
            self.vault.close()
            self.vault = None

    async def settle(self) -> None:
        """Waits for background work (receipts, key uploads) to finish: for tests and the CLI."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- accounts ------------------------------------------------------------------

    async def register(self, username: str, password: str) -> str:
        """Creates the account and this device's vault; returns the recovery code to show once."""
        username = username.strip().lower()
        directory = self._user_dir(username)
        if Vault.exists(directory):
            raise SessionError(f"{directory} already holds a vault for {username}; log in instead")
        code = generate_recovery_code()
        vault = await asyncio.to_thread(Vault.create, directory, password, code, username)
        try:
            identity = await asyncio.to_thread(IdentityKeyPair.generate)
            vault.put(K_IDENTITY, identity.to_bytes())
            await self.relay.register(username, password, recovery_server_token(code))
        except BaseException:
            vault.wipe()
            raise
        self.vault, self.identity, self.username = vault, identity, username
        await self._start_session(await self.relay.login(username, password))
        return code

    async def login(self, username: str, password: str, previous: str | None = None) -> None:
        """Unlocks the vault and opens a relay session.

        `previous` (the password from before an operator reset, or the recovery
        code) is needed only when the relay takes `password` but the vault does
        not; see `_unlock`.
        """
        username = username.strip().lower()
        vault, behind = await self._unlock(username, password, previous)
        self._open_vault(vault, username)
        try:
            session = await self.relay.login(username, password, _token(vault))
        except BaseException:
            if behind:
                self.vault = None
                vault.close()
            raise
        if behind:
            await asyncio.to_thread(vault.change_password, password)
        await self._start_session(session)

    async def unlock_and_resume(
        self, username: str, password: str, previous: str | None = None
    ) -> None:
        """Unlocks the vault and resumes the stored session token, logging in if it expired."""
        username = username.strip().lower()
        vault, behind = await self._unlock(username, password, previous)
        if behind:
            # The reset ended every session: there is no token worth resuming.
            self.vault = None
            vault.close()
            await self.login(username, password, previous)
            return
        self._open_vault(vault, username)
        token = _token(vault)
        if token:
            with contextlib.suppress(ServerRejected):
                await self._start_session(await self.relay.resume(token))
                return
        await self._start_session(await self.relay.login(username, password, token))

    async def _unlock(
        self, username: str, password: str, previous: str | None
    ) -> tuple[Vault, bool]:
        """The vault, and whether it is still wrapped under `previous` rather than `password`.

        An operator reset changes the password on the relay only. When the vault
        refuses `password`, the relay is asked whether it takes it: if it does,
        `VaultBehind` asks the caller for `previous`; if not, the password is
        simply wrong. The probe session is logged out at once, which closes the
        connection: `connect()` again before the next attempt.
        """
        directory = self._user_dir(username)
        if not Vault.exists(directory):
            raise SessionError(
                f"there is no vault for {username} on this device (in {directory}); "
                "securechat keeps your keys where you registered"
            )
        try:
            return await asyncio.to_thread(Vault.unlock, directory, password, username), False
        except WrongPassword:
            if previous is None:
                await self._probe_relay(username, password)
                raise
        try:
            if is_recovery_code(previous):
                vault = await asyncio.to_thread(
                    Vault.unlock_with_recovery, directory, previous, username
                )
            else:
                vault = await asyncio.to_thread(Vault.unlock, directory, previous, username)
        except WrongPassword:
            raise WrongPassword(
                "Neither the password nor the previous password or recovery code "
                "unlocks this vault."
            ) from None
        return vault, True

    async def _probe_relay(self, username: str, password: str) -> None:
        """Raises VaultBehind if the relay takes the password the vault refused."""
        try:
            await self.relay.login(username, password)
        except ServerRejected as exc:
            if exc.code == ErrorCode.UNAUTHORIZED:
                return
            raise
        await self.relay.logout()
        raise VaultBehind(VAULT_BEHIND)

    def _open_vault(self, vault: Vault, username: str) -> None:
        """Opens before the relay session starts, so the backlog can be decrypted at once."""
        blob = vault.get(K_IDENTITY)
        if blob is None:
            raise SessionError("the vault holds no identity key; it is damaged")
        self.vault, self.identity = vault, IdentityKeyPair.from_bytes(blob)
        self.username = username

    async def _start_session(self, session: F.Session) -> None:
        vault = self._need_vault()
        self.username = session.username
        vault.put(K_TOKEN, session.token.encode())
        await self._maintain_prekeys(session.one_time_prekeys, session.one_time_kem_prekeys)
        for pending in self._pending_uploads():
            self._spawn(self._finish_upload(pending))
        peers = [c.peer for c in vault.conversations()]
        if peers:
            await self._watch(peers)
        if self._rotation is None:
            self._rotation = asyncio.get_running_loop().create_task(self._rotate_periodically())
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_delivery())

    async def _rotate_periodically(self) -> None:
        """Clients that stay signed in for weeks still rotate their signed prekeys."""
        while True:
            await asyncio.sleep(ROTATION_CHECK_SECONDS)
            with contextlib.suppress(SecureChatError):
                await self._maintain_prekeys(remaining_on_relay=prekeys.ONE_TIME_LOW_WATER + 1)

    def _ensure_conversation(self, vault: Vault, peer: str) -> None:
        """A conversation opened by the peer: follow their presence (we are contacts now)."""
        if vault.ensure_conversation(peer):
            self._spawn(self._watch([peer]))

    async def _watch(self, peers: list[str]) -> None:
        with contextlib.suppress(SecureChatError):
            answer = await self.relay.request(lambda rid: F.Watch(rid=rid, users=peers))
            if isinstance(answer, F.PresenceList):
                for user, state in answer.states.items():
                    self._emit(PresenceChanged(user, state))

    async def reset_password(self, username: str, token: str, new_password: str) -> str | None:
        """Resets with a recovery code (returns the new one) or an operator token (None).

        Signed in as `username`, the open vault is re-wrapped under the new
        password whatever the token, and a new session replaces the one the
        reset ended. Otherwise a recovery code re-wraps the vault here, and an
        operator token resets only the relay account: the next login then asks
        for the previous password or the recovery code (`VaultBehind`).
        """
        username = username.strip().lower()
        if self.vault is not None and self.username == username:
            return await self._reset_signed_in(self.vault, username, token, new_password)
        directory = self._user_dir(username)
        if is_recovery_code(token):
            vault = await asyncio.to_thread(Vault.unlock_with_recovery, directory, token)
            try:
                new_code = generate_recovery_code()
                await self.relay.reset_password(
                    username,
                    recovery_server_token(token).hex(),
                    new_password,
                    recovery_server_token(new_code),
                )
                await asyncio.to_thread(vault.change_password, new_password)
                await asyncio.to_thread(vault.change_recovery_code, new_code)
            finally:
                vault.close()
            return new_code
        await self.relay.reset_password(username, token, new_password, None)
        return None

    async def _reset_signed_in(
        self, vault: Vault, username: str, token: str, new_password: str
    ) -> str | None:
        """Resets over this session, which the relay then ends, and signs in again.

        The supervisor stops first, so the ended session is never reported as
        expired to the UI in between.
        """
        recovery = is_recovery_code(token)
        new_code = generate_recovery_code() if recovery else None
        await self.relay.stop_supervising()
        try:
            await self.relay.reset_password(
                username,
                recovery_server_token(token).hex() if recovery else token,
                new_password,
                recovery_server_token(new_code) if new_code else None,
            )
        except BaseException:
            self.relay.supervise()
            raise
        await asyncio.to_thread(vault.change_password, new_password)
        if new_code is not None:
            await asyncio.to_thread(vault.change_recovery_code, new_code)
        await self.sign_in_again(new_password)
        return new_code

    async def sign_in_again(self, password: str) -> None:
        """A new relay session with the vault still open: after expiry or a reset.

        Drafts, history and the outbox stay as they are; the outbox drains once
        the new session starts.
        """
        _, _, username = self._need_identity()
        session = await self.relay.sign_in_again(username, password)
        await self._start_session(session)

    async def logout(self) -> None:
        if self.vault is not None:
            self.vault.delete(K_TOKEN)
        await self.relay.logout()

    async def delete_account(self, password: str) -> None:
        """Deletes the account on the relay, then wipes this device's vault."""
        vault = self._need_vault()
        await self.relay.request(lambda rid: F.DeleteAccount(rid=rid, password=password))
        await self.relay.close()
        vault.wipe()
        self.vault = None

    # --- prekeys -------------------------------------------------------------------

    async def _maintain_prekeys(
        self, remaining_on_relay: int, kem_remaining_on_relay: int | None = None
    ) -> None:
        """Publishes keys on first login, rotates old signed prekeys, refills one-time ones.

        One-time KEM prekeys go only to a relay that counts them (`kem_remaining_on_relay`
        not None): an older relay would refuse the frame.
        """
        vault, identity, _ = self._need_identity()
        blob = vault.get(K_PREKEYS)
        secrets = PrekeySecrets.from_bytes(blob) if blob else PrekeySecrets()
        now = int(time.time())
        latest = secrets.latest_signed
        rotate = latest is None or prekeys.needs_rotation(latest.created_at, now)
        refill = prekeys.needs_replenish(remaining_on_relay)
        refill_kem = kem_remaining_on_relay is not None and prekeys.needs_replenish(
            kem_remaining_on_relay, prekeys.ONE_TIME_KEM_LOW_WATER
        )
        if not rotate and not refill and not refill_kem:
            return
        spk_blob, kem_blob = vault.get(K_PUBLISHED_SPK), vault.get(K_PUBLISHED_KEM)
        if rotate or spk_blob is None or kem_blob is None:
            spk_secret, spk_public = prekeys.generate_signed_prekey(
                identity, secrets.next_signed_id, now
            )
            kem_secret, kem_public = prekeys.generate_kem_prekey(identity, secrets.next_kem_id)
            secrets = secrets.with_signed_prekey(spk_secret).with_kem_prekey(kem_secret)
            spk_blob, kem_blob = spk_public.to_bytes(), kem_public.to_bytes()
        one_time_public: list[bytes] = []
        if refill:
            new_secrets, publics = prekeys.generate_one_time_prekeys(
                secrets.next_one_time_id, ONE_TIME_BATCH
            )
            secrets = secrets.with_one_time_prekeys(new_secrets)
            one_time_public = [p.to_bytes() for p in publics]
        one_time_kem_public: list[bytes] = []
        if refill_kem:
            kem_secrets, kem_publics = await asyncio.to_thread(
                prekeys.generate_one_time_kem_prekeys,
                identity,
                secrets.next_one_time_kem_id,
                ONE_TIME_KEM_BATCH,
            )
            secrets = secrets.with_one_time_kem_prekeys(kem_secrets)
            one_time_kem_public = [p.to_bytes() for p in kem_publics]
        vault.put(K_PREKEYS, secrets.to_bytes())
        vault.put(K_PUBLISHED_SPK, spk_blob)
        vault.put(K_PUBLISHED_KEM, kem_blob)
        await self.relay.request(
            lambda rid: F.PublishKeys(
                rid=rid,
                identity=P.encode_identity_blob(
                    identity.public.der, identity.signed_dh_public().to_bytes()
                ),
                signed_prekey=spk_blob,
                kem_prekey=kem_blob,
                one_time_prekeys=one_time_public,
                one_time_kem_prekeys=one_time_kem_public,
            )
        )

    # --- trust ---------------------------------------------------------------------

    def pinned_key(self, peer: str) -> IdentityPublicKey | None:
        der = self._need_vault().get(_pin(peer))
        return IdentityPublicKey(der) if der else None

    async def sharekey(self, peer: str) -> str:
        """Sends our identity key to `peer`; returns our fingerprint to read out."""
        vault, identity, _ = self._need_identity()
        body = P.encode(
            P.SharedKey(
                identity=identity.public.der, identity_dh=identity.signed_dh_public().to_bytes()
            )
        )
        new = vault.ensure_conversation(peer)
        await self.relay.send_envelope(peer, body)
        if new:
            # After `accepted`: the relay shares presence only between contacts.
            await self._watch([peer])
        return identity.public.fingerprint_hex()

    def verify(self, peer: str) -> SafetyNumbers:
        """The numbers to read out: the pinned key's, and during a change the offered one's."""
        vault, identity, me = self._need_identity()
        pinned = vault.get(_pin(peer))
        if pinned is None:
            raise SessionError(f"no key known for {peer}: ask them to `sharekey {self.username}`")
        offered = vault.get(_offered(peer))
        return safety_numbers(
            me,
            identity.public,
            peer,
            IdentityPublicKey(pinned),
            IdentityPublicKey(offered) if offered else None,
            self.is_verified(peer),
        )

    def mark_verified(self, peer: str) -> str:
        """Records that the user compared the safety number of the pinned key; returns its
        fingerprint. A later key change clears the mark (see `is_verified`)."""
        vault = self._need_vault()
        pinned = vault.get(_pin(peer))
        if pinned is None:
            raise SessionError(f"no key known for {peer}: ask them to `sharekey {self.username}`")
        if vault.get(_offered(peer)) is not None:
            raise SessionError(
                f"{peer}'s key changed: keep the pinned key or accept the new one first"
            )
        vault.put(_verified(peer), pinned)
        fingerprint = IdentityPublicKey(pinned).fingerprint_hex()
        self._emit(ConversationChanged(peer, self.conversation_state(peer), fingerprint))
        return fingerprint

    def is_verified(self, peer: str) -> bool:
        """The user marked the pinned key, and no key change happened since."""
        vault = self._need_vault()
        marked = vault.get(_verified(peer))
        return marked is not None and marked == vault.get(_pin(peer))

    def reject(self, peer: str) -> str:
        """Keeps the pinned key and drops the offered one; returns the pinned fingerprint.

        The session under the pinned key, if any, carries on; the conversation keeps a
        warning that another key was presented.
        """
        vault = self._need_vault()
        offered, pinned = vault.get(_offered(peer)), vault.get(_pin(peer))
        if offered is None or pinned is None:
            raise SessionError(f"{peer}'s key has not changed: there is no new key to reject")
        self._keep_pinned(vault, peer, pinned, offered, by_peer=False, eid=None)
        return IdentityPublicKey(pinned).fingerprint_hex()

    def _keep_pinned(
        self,
        vault: Vault,
        peer: str,
        pinned: bytes,
        offered: bytes,
        *,
        by_peer: bool,
        eid: str | None,
    ) -> None:
        """Ends a change in favour of the pinned key; one transaction stores the warning."""
        pinned_fp = IdentityPublicKey(pinned).fingerprint_hex()
        offered_fp = IdentityPublicKey(offered).fingerprint_hex()
        record = rejection_record(peer, pinned_fp, offered_fp, time.time(), by_peer=by_peer)
        if eid is None:
            message_id = vault.add_message(record, drop=(_offered(peer),))
        else:
            stored = vault.record_incoming(peer, eid, record, {}, drop=(_offered(peer),))
            assert stored is not None
            message_id = stored
        self._emit(KeyKept(peer, pinned_fp, offered_fp, message_id, by_peer))
        self._emit(ConversationChanged(peer, self.conversation_state(peer), pinned_fp))

    def trust(self, peer: str) -> str:
        """Accepts the key `peer` now offers and drops the old session; returns the fingerprint."""
        vault = self._need_vault()
        offered = vault.get(_offered(peer))
        if offered is None:
            pinned = vault.get(_pin(peer))
            if pinned is None:
                raise SessionError(f"no key from {peer} to trust yet")
            return IdentityPublicKey(pinned).fingerprint_hex()
        vault.put(_pin(peer), offered)
        vault.delete(_offered(peer))
        vault.delete(_session(peer))
        vault.delete(_verified(peer))
        fingerprint = IdentityPublicKey(offered).fingerprint_hex()
        self._emit(ConversationChanged(peer, ConversationState.NONE, fingerprint))
        return fingerprint

    def _key_changed(self, peer: str, pinned: bytes, offered: bytes) -> None:
        """A different key is on offer: the verified mark goes, whichever key is kept."""
        vault = self._need_vault()
        vault.put(_offered(peer), offered)
        vault.delete(_verified(peer))
        old_fp = IdentityPublicKey(pinned).fingerprint_hex()
        new_fp = IdentityPublicKey(offered).fingerprint_hex()
        self._emit(KeyChanged(peer, old_fp, new_fp))
        self._emit(ConversationChanged(peer, ConversationState.KEY_CHANGED, new_fp))

    # --- sessions ------------------------------------------------------------------

    def conversation_state(self, peer: str) -> ConversationState:
        vault = self._need_vault()
        if vault.get(_offered(peer)) is not None:
            return ConversationState.KEY_CHANGED
        blob = vault.get(_session(peer))
        if blob is None:
            return ConversationState.NONE
        state = RatchetState.from_bytes(blob)
        if vault.get(_jammed(peer)) == state.session_id:
            return ConversationState.JAMMED
        return ConversationState.ACTIVE if state.confirmed else ConversationState.PENDING

    async def talk(self, peer: str) -> ConversationState:
        """Starts a session from the peer's published bundle; works while they are offline."""
        vault, identity, me = self._need_identity()
        if peer == me:
            raise SessionError("you cannot open a session with yourself")
        if vault.get(_offered(peer)) is not None:
            raise SessionError(
                f"{peer}'s key changed: compare `verify {peer}` with them, then `reject {peer}` "
                f"keeps the key you had or `trust {peer}` accepts the new one"
            )
        answer = await self.relay.request(lambda rid: F.FetchBundle(rid=rid, user=peer))
        assert isinstance(answer, F.Bundle)
        now_ms = int(time.time() * 1000)
        try:
            ident = P.decode_identity_blob(answer.identity)
            bundle = PrekeyBundle.from_blobs(
                ident.der,
                ident.identity_dh,
                answer.signed_prekey,
                # PQXDH: a one-time KEM prekey when the relay has one, the last-resort else.
                answer.one_time_kem_prekey or answer.kem_prekey,
                answer.one_time_prekey,
            )
            result = handshake.initiate(identity, me, peer, self.pinned_key(peer), bundle)
        except IdentityKeyMismatch:
            pinned = vault.get(_pin(peer)) or b""
            self._key_changed(peer, pinned, ident.der)
            raise SessionError(
                f"the relay offered a different key for {peer}: possible interception. "
                f"Compare `verify {peer}` with them, then `reject {peer}` or `trust {peer}`"
            ) from None
        except (CryptoError, ProtocolError) as exc:
            raise SessionError(f"{peer}'s published keys are invalid: {exc}") from exc
        if result.newly_pinned:
            vault.put(_pin(peer), result.peer_identity.der)
        state, message = ratchet.encrypt(
            result.state, P.encode(P.Hello(created_at_ms=now_ms)), me, peer
        )
        body = P.encode(
            P.PrekeyEnvelope(initial=result.initial.to_bytes(), message=message.to_bytes())
        )
        item = OutboxItem(new_envelope_id(), peer, body)
        new = vault.ensure_conversation(peer)
        record = sessions.own_start(
            self._session_record(peer), self._current_session(peer), result.state, now_ms
        )
        vault.record_outgoing(
            None, {_session(peer): state.to_bytes(), _sessions(peer): record.to_bytes()}, item
        )
        await self.relay.transmit(item)
        if new:
            await self._watch([peer])
        self._emit(
            ConversationChanged(
                peer, ConversationState.PENDING, result.peer_identity.fingerprint_hex()
            )
        )
        return ConversationState.PENDING

    async def send_text(self, peer: str, text: str) -> str:
        """Encrypts and queues a message; never sends anything in clear."""
        if not text:
            raise SessionError("nothing to send")
        if len(text) > P.MAX_TEXT_CHARS:
            raise SessionError(f"a message holds at most {P.MAX_TEXT_CHARS} characters")
        now = time.time()
        eid = new_envelope_id()
        record = MessageRecord(
            peer=peer,
            conversation=ConversationId.direct(peer).key,
            sender=self._need_identity()[2],
            outgoing=True,
            text=text,
            ts=now,
            eid=eid,
            state=DeliveryState.SENDING,
        )
        await self._send_inner(peer, P.Text(text=text), record, eid)
        return eid

    async def _send_inner(
        self, peer: str, inner: P.Inner, record: MessageRecord | None, eid: str | None = None
    ) -> int | None:
        """Seals `inner` in format 2: numbered if a user would miss it, padded, untagged."""
        vault, _, me = self._need_identity()
        state = self._usable_session(peer)
        changes: dict[str, bytes] = {}
        number = 0
        if P.counted(inner):
            counter = sequence.next_number(
                sequence.decode_counter(vault.get(delivery.sent_count_key(peer))), state.session_id
            )
            changes[delivery.sent_count_key(peer)] = sequence.encode(counter)
            number = counter.last
        sent_at = record.ts if record is not None else time.time()
        plaintext = P.encode_inner(inner, sent_at, number)
        state, message = ratchet.encrypt(state, plaintext, me, peer)
        item = OutboxItem(eid or new_envelope_id(), peer, P.encode_message(message.to_bytes()))
        changes[_session(peer)] = state.to_bytes()
        confirm = state.session_id if number else None
        message_id = vault.record_outgoing(record, changes, item, confirm=confirm)
        await self.relay.transmit(item)
        return message_id

    # --- drops: gaps in what arrives, retries of what was not confirmed --------------

    async def _watch_delivery(self) -> None:
        """Reports overdue gaps and sends unconfirmed messages again, for as long as we run."""
        while True:
            await asyncio.sleep(self.check_every)
            with contextlib.suppress(SecureChatError):
                self.report_missing()
                await self.retry_unconfirmed()

    def report_missing(self) -> None:
        for report in delivery.overdue_gaps(self._need_vault(), time.time(), self.missing_after):
            self._emit(report)

    async def retry_unconfirmed(self) -> None:
        vault = self._need_vault()
        if not self.relay.connected:
            return
        due = delivery.due_retries(
            vault, time.time(), self.retry_after, self.max_retries, self._session_id
        )
        for item in due:
            vault.outbox_add(item)
            await self.relay.transmit(item)

    def _session_id(self, peer: str) -> bytes | None:
        blob = self._need_vault().get(_session(peer))
        return RatchetState.from_bytes(blob).session_id if blob else None

    def _usable_session(self, peer: str) -> RatchetState:
        vault = self._need_vault()
        if vault.get(_offered(peer)) is not None:
            raise SessionError(
                f"{peer}'s key changed: compare `verify {peer}` with them, then "
                f"`reject {peer}` keeps the key you had or `trust {peer}` accepts the new one"
            )
        blob = vault.get(_session(peer))
        if blob is None:
            raise SessionError(
                f"no secure session with {peer}: type `sharekey {peer}` and `talk {peer}` first"
            )
        state = RatchetState.from_bytes(blob)
        if state.send_chain is None:
            raise SessionError(f"waiting for {peer} to answer the session set-up")
        return state

    # --- receiving -----------------------------------------------------------------

    async def _on_envelope(self, envelope: F.Envelope) -> None:
        """Runs for each delivered envelope before it is acknowledged. Never makes requests."""
        vault = self.vault
        if vault is None or self.identity is None or self.username is None:
            raise SessionError("envelope arrived before the vault was open")
        if vault.seen(envelope.sender, envelope.eid):
            self._confirm_again(vault, envelope)
            return
        peer = envelope.sender
        if vault.get(_gone(peer)) is not None:
            # The name has an account again (a new one: its key is checked as any other).
            vault.delete(_gone(peer))
        try:
            outer = P.decode_outer(envelope.body)
            match outer:
                case P.SharedKey():
                    self._receive_key(vault, peer, outer, envelope.eid)
                case P.PrekeyEnvelope():
                    self._receive_prekey(vault, peer, outer, envelope)
                case P.RatchetEnvelope():
                    state_blob = vault.get(_session(peer))
                    if state_blob is None:
                        raise SessionError(f"a message from {peer} arrived without a session")
                    if vault.get(_offered(peer)) is not None:
                        raise SessionError(f"{peer}'s key changed; message held back")
                    current = RatchetState.from_bytes(state_blob)
                    try:
                        opened = sessions.open_message(
                            self._session_record(peer),
                            current,
                            RatchetMessage.from_bytes(outer.message),
                            peer,
                            self.username,
                            int(time.time()),
                        )
                    except TooManySkippedMessages:
                        self._jam(vault, peer, current)
                        raise
                    self._receive_ratchet(vault, peer, opened, envelope, self._unjam(peer))
        except (CryptoError, SecureChatError) as exc:
            vault.record_incoming(peer, envelope.eid, None, {})
            self._emit(ErrorRaised(f"message from {peer} rejected: {exc}", "e2e"))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # Anything else malformed is dropped too: a poison envelope must not be
            # redelivered on every connection.
            log.warning("dropped an unreadable envelope: %s", type(exc).__name__)
            vault.record_incoming(peer, envelope.eid, None, {})
            self._emit(ErrorRaised(f"an unreadable message from {peer} was dropped", "e2e"))

    def _confirm_again(self, vault: Vault, envelope: F.Envelope) -> None:
        """A message we have, sent again: its sender did not get our receipt, so resend it."""
        stored = vault.message_by_eid(envelope.eid)
        if (
            stored is not None
            and not stored.record.outgoing
            and stored.record.peer == envelope.sender
            and stored.record.kind in ("text", "file")
        ):
            self._spawn(self._receipt(envelope.sender, envelope.eid))

    async def _receipt(self, peer: str, eid: str) -> None:
        with contextlib.suppress(SessionError):
            await self._send_inner(peer, P.Receipt(eids=[eid]), None)

    def _numbered(
        self, vault: Vault, peer: str, opened: P.Opened, state: RatchetState
    ) -> dict[str, bytes]:
        """The window of what arrived from `peer`, with this message in it."""
        if opened.seq == 0:
            return {}
        window = sequence.window_for(
            sequence.decode_window(vault.get(delivery.window_key(peer))), state.session_id
        )
        window = sequence.arrive(window, opened.seq, time.time())
        return {delivery.window_key(peer): sequence.encode(window)}

    def _receive_key(self, vault: Vault, peer: str, key: P.SharedKey, eid: str) -> None:
        shared = IdentityPublicKey.from_der(key.identity)
        pinned, pending = vault.get(_pin(peer)), vault.get(_offered(peer))
        self._ensure_conversation(vault, peer)
        match classify_shared_key(pinned, pending, shared.der):
            case SharedKeyOutcome.PIN:
                vault.record_incoming(peer, eid, None, {_pin(peer): shared.der})
                self._emit(KeyShared(peer, shared.fingerprint_hex()))
                self._emit(
                    ConversationChanged(
                        peer, self.conversation_state(peer), shared.fingerprint_hex()
                    )
                )
            case SharedKeyOutcome.CHANGE:
                assert pinned is not None
                vault.record_incoming(peer, eid, None, {})
                self._key_changed(peer, pinned, shared.der)
            case SharedKeyOutcome.CLEARS_CHANGE:
                assert pinned is not None and pending is not None
                self._keep_pinned(vault, peer, pinned, pending, by_peer=True, eid=eid)
            case SharedKeyOutcome.SAME:
                vault.record_incoming(peer, eid, None, {})
                self._emit(KeyShared(peer, shared.fingerprint_hex()))

    def _receive_prekey(
        self, vault: Vault, peer: str, outer: P.PrekeyEnvelope, envelope: F.Envelope
    ) -> None:
        assert self.identity is not None and self.username is not None
        initial = handshake.InitialMessage.from_bytes(outer.initial)
        secrets_blob = vault.get(K_PREKEYS)
        if secrets_blob is None:
            raise SessionError("no prekeys in the vault")
        pinned = self.pinned_key(peer)
        try:
            result = handshake.respond(
                self.identity,
                self.username,
                peer,
                pinned,
                PrekeySecrets.from_bytes(secrets_blob),
                initial,
            )
        except IdentityKeyMismatch:
            vault.record_incoming(peer, envelope.eid, None, {})
            self._key_changed(peer, pinned.der if pinned else b"", initial.identity_der)
            return
        record, current = self._session_record(peer), self._current_session(peer)
        first = sessions.open_start(
            record,
            current,
            result.state,
            RatchetMessage.from_bytes(outer.message),
            peer,
            self.username,
            int(time.time()),
        )
        opened = None
        if first is not None:
            hello = P.decode_inner(first.plaintext).content
            started_at = hello.created_at_ms if isinstance(hello, P.Hello) else None
            opened = sessions.accept_start(record, current, first, started_at)
        if opened is None:
            # A replayed session start: dropped like any other replay, the session untouched.
            vault.record_incoming(peer, envelope.eid, None, {})
            return
        extra = {K_PREKEYS: result.secrets.to_bytes()}
        if pinned is None:
            extra[_pin(peer)] = result.peer_identity.der
        self._ensure_conversation(vault, peer)
        self._receive_ratchet(vault, peer, opened, envelope, extra)

    def _jam(self, vault: Vault, peer: str, current: RatchetState) -> None:
        """Every later message of this session lies past the limit too: say so once.

        The skip limit is checked before a message authenticates, so a relay could also
        forge this; starting a new session (`talk`) is the cure either way and harmless.
        """
        if vault.get(_jammed(peer)) != current.session_id:
            vault.put(_jammed(peer), current.session_id)
            self._emit(ConversationChanged(peer, ConversationState.JAMMED))

    def _unjam(self, peer: str) -> dict[str, bytes]:
        """A message that opens shows the session was not stuck after all (a forged header)."""
        return {_jammed(peer): b""} if self._need_vault().get(_jammed(peer)) else {}

    def _session_record(self, peer: str) -> SessionRecord:
        blob = self._need_vault().get(_sessions(peer))
        return SessionRecord.from_bytes(blob) if blob else SessionRecord()

    def _current_session(self, peer: str) -> RatchetState | None:
        blob = self._need_vault().get(_session(peer))
        return RatchetState.from_bytes(blob) if blob else None

    def _receive_ratchet(
        self,
        vault: Vault,
        peer: str,
        opened: sessions.Opened,
        envelope: F.Envelope,
        extra: dict[str, bytes],
    ) -> None:
        was_confirmed = opened.was_confirmed
        conversation = ConversationId.direct(peer)
        payload = P.decode_inner(opened.plaintext)
        inner = payload.content
        sent_at = payload.sent_at if payload.sent_at is not None else envelope.ts
        changes = dict(extra)
        if opened.current is not None:
            changes[_session(peer)] = opened.current.to_bytes()
            # Numbering belongs to the current session; a late message of a replaced one
            # does not disturb its window.
            changes.update(self._numbered(vault, peer, payload, opened.current))
        if opened.record is not None:
            changes[_sessions(peer)] = opened.record.to_bytes()
        match inner:
            case P.Text():
                record = MessageRecord(
                    peer=peer,
                    conversation=conversation.key,
                    sender=peer,
                    outgoing=False,
                    text=inner.text,
                    ts=sent_at,
                    eid=envelope.eid,
                    received=envelope.ts,
                )
                message_id = vault.record_incoming(peer, envelope.eid, record, changes)
                assert message_id is not None
                self._emit(
                    MessageReceived(
                        conversation,
                        peer,
                        inner.text,
                        sent_at,
                        message_id,
                        envelope.ts,
                        P.clocks_disagree(sent_at, envelope.ts),
                    )
                )
                self._spawn(self._send_inner(peer, P.Receipt(eids=[envelope.eid]), None))
            case P.Receipt():
                vault.record_incoming(peer, envelope.eid, None, changes)
                for eid in inner.eids:
                    vault.drop_unconfirmed(eid, peer)
                    if vault.update_delivery(eid, DeliveryState.DELIVERED):
                        self._emit(DeliveryChanged(peer, eid, DeliveryState.DELIVERED))
            case P.Hello():
                vault.record_incoming(peer, envelope.eid, None, changes)
                if not was_confirmed:
                    self._spawn(self._send_inner(peer, P.Hello(), None))
            case P.FileOffer():
                manifest = FileManifest.from_bytes(inner.manifest)
                record = MessageRecord(
                    peer=peer,
                    conversation=conversation.key,
                    sender=peer,
                    outgoing=False,
                    kind="file",
                    file_id=inner.blob_id,
                    text=f"{manifest.name} ({transfers.human_size(manifest.size)})",
                    ts=sent_at,
                    eid=envelope.eid,
                    received=envelope.ts,
                )
                changes[_file(inner.blob_id)] = inner.manifest
                message_id = vault.record_incoming(peer, envelope.eid, record, changes)
                assert message_id is not None
                self._emit(
                    FileOffered(
                        conversation,
                        peer,
                        inner.blob_id,
                        manifest.name,
                        manifest.size,
                        message_id,
                    )
                )
                self._spawn(self._send_inner(peer, P.Receipt(eids=[envelope.eid]), None))
        if opened.confirmed != was_confirmed or extra:
            self._emit(ConversationChanged(peer, self.conversation_state(peer)))

    async def _on_push(self, frame: F.ServerFrame) -> None:
        match frame:
            case F.Presence():
                if frame.state == "deleted" and self.vault is not None:
                    self.vault.put(_gone(frame.user), b"1")
                self._emit(PresenceChanged(frame.user, frame.state))
            case F.PrekeysLow():
                self._spawn(self._maintain_prekeys(frame.remaining, frame.kem_remaining))
            case F.Error():
                self._emit(ErrorRaised(frame.message, frame.code))
            case _:
                pass

    # --- files -------------------------------------------------------------------

    async def send_file(self, peer: str, path: str | Path) -> str:
        """Encrypts and uploads a file, then offers it to `peer` inside the session.

        Returns the relay's blob id. An interrupted upload resumes after reconnecting.
        """
        vault = self._need_vault()
        self._usable_session(peer)
        outgoing = await asyncio.to_thread(transfers.outgoing_file, Path(path).expanduser())
        # The digest only goes into the offer: a thread computes it while the chunks go out.
        hashing = asyncio.ensure_future(asyncio.to_thread(transfers.file_tags, outgoing))
        try:
            blob_id = await transfers.begin_upload(self.relay, outgoing.size, [peer])
        except BaseException:
            await asyncio.gather(hashing, return_exceptions=True)
            raise
        self._uploading.add(blob_id)
        ledger = SealLedger()
        uploading = asyncio.ensure_future(
            transfers.upload(self.relay, outgoing, blob_id, self._progress(blob_id, "up"), ledger)
        )
        try:
            tags = await hashing
            # Kept (and resumable) only if every chunk already sent sealed to these tags.
            transfers.expect_tags(ledger, tags, outgoing.path)
            manifest = outgoing.manifest(tags_digest(tags))
            pending = PendingUpload(
                blob_id, peer, str(outgoing.path.resolve()), manifest.to_bytes()
            )
            vault.put(K_UPLOADS, msgspec.msgpack.encode([*self._pending_uploads(), pending]))
        except BaseException as exc:
            uploading.cancel()
            await asyncio.gather(uploading, return_exceptions=True)
            self._uploading.discard(blob_id)
            if isinstance(exc, transfers.TransferError):
                await self._abandon_upload(blob_id)
            raise
        try:
            await uploading
            await self._offer(pending, manifest)
        except (transfers.TransferError, ServerRejected) as exc:
            if _permanent(exc):
                await self._abandon_upload(blob_id)
            raise
        except ConnectionLost as exc:
            if self.relay.reconnect and self.relay.connected:
                # Back already: the reconnect skipped this upload while it was still ours
                # (or did not know it yet). The task starts after the `finally` below.
                self._spawn(self._finish_upload(pending))
            raise transfers.TransferError(
                f"the upload of {outgoing.path.name} was interrupted; "
                "it resumes when the relay is back"
            ) from exc
        finally:
            self._uploading.discard(blob_id)
        return blob_id

    def _pending_uploads(self) -> list[PendingUpload]:
        blob = self._need_vault().get(K_UPLOADS)
        return msgspec.msgpack.decode(blob, type=list[PendingUpload]) if blob else []

    async def _finish_upload(self, pending: PendingUpload) -> None:
        """Resumes an upload cut by a disconnect or a restart, then offers the file."""
        if pending.blob_id in self._uploading:
            return
        self._uploading.add(pending.blob_id)
        try:
            manifest = FileManifest.from_bytes(pending.manifest)
            await transfers.resume_upload(
                self.relay,
                transfers.OutgoingFile.of(Path(pending.path), manifest),
                manifest,
                pending.blob_id,
                self._progress(pending.blob_id, "up"),
            )
            # Still guarded: a reconnect meanwhile must not offer the file a second time.
            await self._offer(pending, manifest)
        except (transfers.TransferError, ServerRejected) as exc:
            if _permanent(exc):
                await self._abandon_upload(pending.blob_id)
            raise
        finally:
            self._uploading.discard(pending.blob_id)

    async def _abandon_upload(self, blob_id: str) -> None:
        """An upload that cannot finish: forget it, and free its space on the relay."""
        self._forget_upload(blob_id)
        # Best effort: offline, or a relay that predates file_cancel, the blob expires.
        with contextlib.suppress(ClientError):
            await self.relay.request(lambda rid: F.FileCancel(rid=rid, file_id=blob_id))

    def _forget_upload(self, blob_id: str) -> None:
        remaining = [p for p in self._pending_uploads() if p.blob_id != blob_id]
        self._need_vault().put(K_UPLOADS, msgspec.msgpack.encode(remaining))

    async def _offer(self, pending: PendingUpload, manifest: FileManifest) -> None:
        now = time.time()
        eid = new_envelope_id()
        record = MessageRecord(
            peer=pending.peer,
            conversation=ConversationId.direct(pending.peer).key,
            sender=self._need_identity()[2],
            outgoing=True,
            kind="file",
            file_id=pending.blob_id,
            text=f"{manifest.name} ({transfers.human_size(manifest.size)})",
            ts=now,
            eid=eid,
            state=DeliveryState.SENDING,
        )
        self._need_vault().put(_file(pending.blob_id), pending.manifest)
        await self._send_inner(
            pending.peer,
            P.FileOffer(manifest=pending.manifest, blob_id=pending.blob_id),
            record,
            eid,
        )
        self._forget_upload(pending.blob_id)

    async def download(self, blob_id: str, directory: str | Path | None = None) -> Path:
        """Fetches, verifies and saves a received file; returns where it was saved.

        A file saved before (even in an earlier run) is not fetched again: the relay
        deletes a blob once every recipient has it.
        """
        vault = self._need_vault()
        blob = vault.get(_file(blob_id))
        if blob is None:
            raise SessionError(f"no file {blob_id} was offered to you")
        saved = vault.get(_saved(blob_id))
        if saved is not None and Path(saved.decode()).is_file():
            return Path(saved.decode())
        target = Path(directory) if directory else paths.downloads_dir(self.data_dir)
        path = await transfers.download(
            self.relay,
            FileManifest.from_bytes(blob),
            blob_id,
            target,
            self._progress(blob_id, "down"),
        )
        vault.put(_saved(blob_id), str(path).encode())
        return path

    def saved_file(self, blob_id: str) -> Path | None:
        """Where a received file was saved, in this run or an earlier one, if it is still there.

        Lets the chat show a download's location again after a restart.
        """
        saved = self._need_vault().get(_saved(blob_id))
        if saved is None:
            return None
        path = Path(saved.decode(errors="replace"))
        return path if path.is_file() else None

    def _progress(self, blob_id: str, direction: str) -> transfers.Progress:
        def report(done: int, total: int) -> None:
            self._emit(TransferProgress(blob_id, done, total, direction))

        return report

    # --- link safety ---------------------------------------------------------------

    async def scan(self, url: str, *, full: bool = False, submit: bool = False) -> Verdict:
        """Checks a link. By default only hash prefixes leave the device; `full` sends the URL.

        A full lookup asks the relay's providers (VirusTotal, OTX) with the relay's keys;
        `submit` also lets VirusTotal analyse a link it has never seen.
        """
        if full:
            answer = await self.relay.request(
                lambda rid: F.ScanUrl(rid=rid, url=url, submit=submit), timeout=90
            )
            assert isinstance(answer, F.ScanVerdict)
            return msgspec.convert(answer.verdict, Verdict)
        try:
            prefixes = prefixes_for(url)
        except InvalidURL:
            return decide_from_hashes(url, [])
        answer = await self.relay.request(lambda rid: F.ScanPrefixes(rid=rid, prefixes=prefixes))
        assert isinstance(answer, F.ScanHashes)
        return decide_from_hashes(url, [(m.full_hash, m.verdict, m.source) for m in answer.matches])

    # --- history -------------------------------------------------------------------

    def history(
        self,
        peer: str,
        before_id: int | None = None,
        limit: int = 50,
        after_id: int | None = None,
    ) -> list[StoredMessage]:
        return self._need_vault().messages(peer, before_id, limit, after_id)

    def received_after(self, after_id: int, limit: int = 200) -> tuple[list[Event], int]:
        """The messages and file offers received after `after_id`, as the events they raised.

        Returns them with the last id read, which is the cursor to go on from: a
        reader that was away (a daemon's client, a restarted daemon) catches up
        from the vault instead of from events it missed.
        """
        events: list[Event] = []
        stored = self._need_vault().messages_after(after_id, limit)
        for message in stored:
            record = message.record
            if record.outgoing:
                continue
            if record.kind == "text":
                events.append(
                    MessageReceived(
                        record.conversation_id,
                        record.sender,
                        record.text,
                        record.ts,
                        message.id,
                        record.received,
                        bool(record.received) and P.clocks_disagree(record.ts, record.received),
                    )
                )
            elif record.kind == "file" and (blob := self._need_vault().get(_file(record.file_id))):
                manifest = FileManifest.from_bytes(blob)
                events.append(
                    FileOffered(
                        record.conversation_id,
                        record.sender,
                        record.file_id,
                        manifest.name,
                        manifest.size,
                        message.id,
                    )
                )
        return events, stored[-1].id if stored else after_id

    def search(self, query: str, limit: int = 50) -> list[StoredMessage]:
        return self._need_vault().search(query, limit)

    def conversations(self) -> list[ConversationRecord]:
        """Every conversation with its unread count, most recent first."""
        return self._need_vault().conversations()

    def peer_deleted(self, peer: str) -> bool:
        """The relay reported `peer`'s account deleted: nothing sent to them can arrive."""
        return self._need_vault().get(_gone(peer)) is not None

    def mark_read(self, peer: str) -> None:
        self._need_vault().mark_read(peer)

    async def delete_conversation(self, peer: str) -> None:
        """Forgets the history here and whatever the relay still queues for it.

        The end-to-end session and the pinned key stay, as in Signal: the peer
        cannot see the delete, so their next message must still open here, and
        a reply must still open there.
        """
        vault = self._need_vault()
        with contextlib.suppress(SecureChatError):
            await self.relay.request(lambda rid: F.DeleteConversation(rid=rid, peer=peer))
        vault.delete_conversation(peer)


class _LazyOutbox:
    """The relay client's outbox is the vault, which opens only after login."""

    def __init__(self, client: ChatClient) -> None:
        self._client = client

    def outbox_add(self, item: OutboxItem) -> None:
        self._client._need_vault().outbox_add(item)

    def outbox_remove(self, eid: str) -> None:
        vault = self._client.vault
        if vault is not None:
            vault.outbox_remove(eid)
            stored = vault.update_delivery(eid, DeliveryState.SENT)
            if stored is not None:
                self._client._emit(DeliveryChanged(stored.record.peer, eid, DeliveryState.SENT))

    def outbox_items(self) -> list[OutboxItem]:
        vault = self._client.vault
        return vault.outbox_items() if vault is not None else []


def _permanent(exc: ClientError) -> bool:
    """A failed upload that trying again after a reconnect cannot fix."""
    return isinstance(exc, transfers.TransferError) or (
        isinstance(exc, ServerRejected) and not exc.transient
    )
