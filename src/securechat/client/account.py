"""Accounts: registering, signing in and out, password resets, and the relay session.

Signing in unlocks this device's vault first (it holds the identity key and
the history), then opens a relay session; an operator's password reset is the
one case where the two disagree (`VaultBehind`). Starting a session also
starts what runs for as long as it lasts: prekey upkeep, pending uploads,
presence watches and the delivery watch.
"""

from __future__ import annotations

import asyncio
import contextlib

from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.delivery import DeliveryWatch
from securechat.client.directory import KeyDirectory
from securechat.client.files import Files
from securechat.client.groups import Groups
from securechat.client.vault_store import Vault
from securechat.crypto.errors import WrongPassword
from securechat.crypto.identity import IdentityKeyPair
from securechat.crypto.vault import (
    generate_recovery_code,
    is_recovery_code,
    recovery_server_token,
)
from securechat.errors import ClientErrorCode, ServerRejected, SessionError, VaultBehind
from securechat.protocol import frames as F
from securechat.protocol.errors import ErrorCode
from securechat.protocol.limits import OPERATOR_TOKEN_PREFIX

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


def _token(vault: Vault) -> str | None:
    """The relay session this device holds, if any: a new login replaces it."""
    raw = vault.get(K.TOKEN)
    return raw.decode() if raw else None


class Accounts:
    def __init__(
        self,
        ctx: ClientContext,
        keys: KeyDirectory,
        files: Files,
        delivery: DeliveryWatch,
        groups: Groups,
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._files = files
        self._delivery = delivery
        self._groups = groups
        self._rotation: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """Ends what the session started: prekey rotation and the delivery watch."""
        if self._rotation is not None:
            self._rotation.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def register(self, username: str, password: str) -> str:
        """Creates the account and this device's vault; returns the recovery code to show once."""
        username = username.strip().lower()
        directory = self._ctx.user_dir(username)
        if Vault.exists(directory):
            raise SessionError(
                f"{directory} already holds a vault for {username}; log in instead",
                ClientErrorCode.VAULT_EXISTS,
            )
        code = generate_recovery_code()
        vault = await asyncio.to_thread(Vault.create, directory, password, code, username)
        try:
            identity = await asyncio.to_thread(IdentityKeyPair.generate)
            vault.put(K.IDENTITY, identity.to_bytes())
            await self._ctx.relay.register(username, password, recovery_server_token(code))
        except BaseException:
            vault.wipe()
            raise
        vault.conversation_opened = self._ctx.conversation_opened
        self._ctx.vault, self._ctx.identity, self._ctx.username = vault, identity, username
        await self._start_session(await self._ctx.relay.login(username, password))
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
            session = await self._ctx.relay.login(username, password, _token(vault))
        except BaseException:
            if behind:
                self._ctx.vault = None
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
            self._ctx.vault = None
            vault.close()
            await self.login(username, password, previous)
            return
        self._open_vault(vault, username)
        token = _token(vault)
        if token:
            with contextlib.suppress(ServerRejected):
                await self._start_session(await self._ctx.relay.resume(token))
                return
        await self._start_session(await self._ctx.relay.login(username, password, token))

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
        directory = self._ctx.user_dir(username)
        if not Vault.exists(directory):
            raise SessionError(
                f"there is no vault for {username} on this device (in {directory}); "
                "securechat keeps your keys where you registered",
                ClientErrorCode.NO_VAULT,
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
            await self._ctx.relay.login(username, password)
        except ServerRejected as exc:
            if exc.code == ErrorCode.UNAUTHORIZED:
                return
            raise
        await self._ctx.relay.logout()
        raise VaultBehind(VAULT_BEHIND)

    def _open_vault(self, vault: Vault, username: str) -> None:
        """Opens before the relay session starts, so the backlog can be decrypted at once."""
        blob = vault.get(K.IDENTITY)
        if blob is None:
            raise SessionError(
                "the vault holds no identity key; it is damaged", ClientErrorCode.VAULT_DAMAGED
            )
        vault.conversation_opened = self._ctx.conversation_opened
        self._ctx.vault, self._ctx.identity = vault, IdentityKeyPair.from_bytes(blob)
        self._ctx.username = username

    async def _start_session(self, session: F.Session) -> None:
        vault = self._ctx.need_vault()
        self._ctx.username = session.username
        vault.put(K.TOKEN, session.token.encode())
        await self._keys.maintain(session.one_time_prekeys, session.one_time_kem_prekeys)
        # Awaited, not spawned: a CLI run ends (and cancels what runs) right after.
        await self._groups.start()
        self._files.resume_all()
        peers = self._ctx.contacts()
        if peers:
            await self._ctx.watch(peers)
        if self._rotation is None:
            self._rotation = asyncio.get_running_loop().create_task(
                self._keys.rotate_periodically()
            )
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._delivery.run())

    async def reset_password(self, username: str, token: str, new_password: str) -> str | None:
        """Resets with a recovery code (returns the new one) or an operator token (None).

        Signed in as `username`, the open vault is re-wrapped under the new
        password whatever the token, and a new session replaces the one the
        reset ended. Otherwise a recovery code re-wraps the vault here, and an
        operator token resets only the relay account: the next login then asks
        for the previous password or the recovery code (`VaultBehind`).
        """
        username = username.strip().lower()
        if self._ctx.vault is not None and self._ctx.username == username:
            return await self._reset_signed_in(self._ctx.vault, username, token, new_password)
        directory = self._ctx.user_dir(username)
        if is_recovery_code(token):
            vault = await asyncio.to_thread(Vault.unlock_with_recovery, directory, token)
            try:
                new_code = generate_recovery_code()
                await self._ctx.relay.reset_password(
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
        await self._ctx.relay.reset_password(username, token, new_password, None)
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
        await self._ctx.relay.stop_supervising()
        try:
            await self._ctx.relay.reset_password(
                username,
                recovery_server_token(token).hex() if recovery else token,
                new_password,
                recovery_server_token(new_code) if new_code else None,
            )
        except BaseException:
            self._ctx.relay.supervise()
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
        _, _, username = self._ctx.need_identity()
        session = await self._ctx.relay.sign_in_again(username, password)
        await self._start_session(session)

    async def logout(self) -> None:
        if self._ctx.vault is not None:
            self._ctx.vault.delete(K.TOKEN)
        await self._ctx.relay.logout()

    async def delete_account(self, password: str) -> None:
        """Deletes the account on the relay, then wipes this device's vault."""
        vault = self._ctx.need_vault()
        await self._ctx.relay.request(lambda rid: F.DeleteAccount(rid=rid, password=password))
        await self._ctx.relay.close()
        vault.wipe()
        self._ctx.vault = None
