"""What this device publishes in the relay's key directory, and keeping it fresh.

Peers start sessions from the published bundle while we are offline, so the
signed prekeys rotate on schedule and the one-time prekeys are refilled when
the relay says they run low, from the first login on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from securechat.client import payloads as P
from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.crypto import prekeys
from securechat.crypto.prekeys import PrekeySecrets
from securechat.errors import SecureChatError
from securechat.protocol import frames as F

ROTATION_CHECK_SECONDS = 6 * 3600
ONE_TIME_BATCH = 100
"""One-time prekeys uploaded per refill: a day of new contacts for a busy user."""
ONE_TIME_KEM_BATCH = 20
"""One-time ML-KEM prekeys per refill: each costs an RSA signature and 1.6 KB on the relay."""


class KeyDirectory:
    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx

    async def rotate_periodically(self) -> None:
        """Clients that stay signed in for weeks still rotate their signed prekeys."""
        while True:
            await asyncio.sleep(ROTATION_CHECK_SECONDS)
            with contextlib.suppress(SecureChatError):
                await self.maintain(remaining_on_relay=prekeys.ONE_TIME_LOW_WATER + 1)

    async def maintain(
        self, remaining_on_relay: int, kem_remaining_on_relay: int | None = None
    ) -> None:
        """Publishes keys on first login, rotates old signed prekeys, refills one-time ones.

        One-time KEM prekeys go only to a relay that counts them (`kem_remaining_on_relay`
        not None): an older relay would refuse the frame.
        """
        vault, identity, _ = self._ctx.need_identity()
        blob = vault.get(K.PREKEYS)
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
        spk_blob, kem_blob = vault.get(K.PUBLISHED_SPK), vault.get(K.PUBLISHED_KEM)
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
        vault.put(K.PREKEYS, secrets.to_bytes())
        vault.put(K.PUBLISHED_SPK, spk_blob)
        vault.put(K.PUBLISHED_KEM, kem_blob)
        await self._ctx.relay.request(
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
