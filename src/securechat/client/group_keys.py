"""This device's MLS identity and key packages, kept in the vault and published.

The signing key and credential (`groups.device.Device`) are made once per
device; each key package's private keys are stored before the relay has the
package, since a Welcome may be on its way the moment it hands one out.
"""

from __future__ import annotations

import time

from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.relay_client import Request
from securechat.crypto.mls.suite import get_suite
from securechat.groups.device import Device, key_package, new_device
from securechat.groups.stored import decode_device, encode_device, encode_key_package
from securechat.protocol import group_frames as GF

KEY_PACKAGE_BATCH = 20
"""One-time key packages published at a time: each invitation uses one."""


class GroupKeys:
    def __init__(self, ctx: ClientContext, request: Request) -> None:
        self._ctx = ctx
        self._request = request

    def device(self) -> Device:
        """Made once per device: the credential costs an RSA signature."""
        vault, identity, me = self._ctx.need_identity()
        blob = vault.get(K.GROUP_DEVICE)
        if blob is not None:
            return decode_device(blob)
        device = new_device(identity, me)
        vault.put(K.GROUP_DEVICE, encode_device(device))
        return device

    async def publish(self, *, more: bool = False) -> None:
        """After sign-in, once per device: a batch and a last-resort package. `more`
        (the relay said `key_packages_low`): another batch.

        The private keys are stored before the relay has the packages: a Welcome
        may be on its way the moment it hands one out.
        """
        vault = self._ctx.need_vault()
        first = vault.get(K.GROUP_KEY_PACKAGES) is None
        if not first and not more:
            return
        device = self.device()
        suite = get_suite(device.suite_id)
        now = int(time.time())
        made = [key_package(device, now=now) for _ in range(KEY_PACKAGE_BATCH)]
        last = key_package(device, now=now) if first else None
        stored = {
            K.key_package(kp.ref(suite)): encode_key_package(kp, private)
            for kp, private in [*made, *([last] if last else [])]
        }
        if last is not None:
            stored[K.GROUP_LAST_RESORT] = last[0].ref(suite)
        vault.record_all([], stored)
        try:
            await self._request(
                lambda rid: GF.PublishKeyPackages(
                    rid=rid,
                    device=device.device,
                    key_packages=[kp.encode() for kp, _ in made],
                    last_resort=last[0].encode() if last else None,
                )
            )
        except BaseException:
            vault.record_all([], {}, drop=tuple(stored))
            raise
        vault.put(K.GROUP_KEY_PACKAGES, b"1")
