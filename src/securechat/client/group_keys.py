"""This device's MLS identity and key packages, kept in the vault and published;
and the key packages of users we add, fetched and checked against our pins.

The signing key and credential (`groups.device.Device`) are made once per
device; each key package's private keys are stored before the relay has the
package, since a Welcome may be on its way the moment it hands one out.

A key package lives 90 days (crypto/mls/creation.py) and nobody can add a
device whose packages have all run out, so a device publishes a new batch and
last-resort package in place of the old ones at the first sign-in once its
batch is `REFRESH_AFTER` old. The private keys of a replaced batch stay until
the refresh after, for Welcomes the relay still holds (it keeps a queued
envelope 30 days by default).
"""

from __future__ import annotations

import time

import msgspec

from securechat.client import vault_keys as K
from securechat.client.context import ClientContext
from securechat.client.relay_client import Request
from securechat.crypto.mls.errors import MLSError
from securechat.crypto.mls.leaf_node import KeyPackage
from securechat.crypto.mls.suite import get_suite
from securechat.errors import ClientError, ClientErrorCode
from securechat.groups.credentials import FirstSeen, PinnedKeys, Refused, classify_key_package
from securechat.groups.credentials import KeyChanged as KeyMismatch
from securechat.groups.device import Device, key_package, new_device
from securechat.groups.stored import decode_device, encode_device, encode_key_package
from securechat.protocol import group_frames as GF

KEY_PACKAGE_BATCH = 20
"""One-time key packages published at a time: each invitation uses one."""
REFRESH_AFTER = 30 * 24 * 3600
"""A batch this old (seconds) is replaced at the next sign-in: 60 of its 90 days left."""


class PublishedKeyPackages(msgspec.Struct, frozen=True, array_like=True):
    """What this device has on the relay, by MLS key package reference."""

    at: int
    """When the batch on the relay was first published (Unix seconds)."""
    current: list[bytes]
    replaced: list[bytes]
    """The batch the current one replaced: its private keys go at the next refresh."""


_encode_published = msgspec.msgpack.Encoder().encode
_decode_published = msgspec.msgpack.Decoder(PublishedKeyPackages).decode


def _published(blob: bytes | None) -> PublishedKeyPackages | None:
    if blob is None:
        return None
    if blob == b"1":  # published before refreshes were recorded: refresh at once
        return PublishedKeyPackages(0, [], [])
    return _decode_published(blob)


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

    async def publish(self, *, more: bool = False, now: int | None = None) -> None:
        """After sign-in: a batch and a last-resort package the first time, the same in
        place of the old ones once they are `REFRESH_AFTER` old. `more` (the relay said
        `key_packages_low`): another batch.

        The private keys are stored before the relay has the packages: a Welcome
        may be on its way the moment it hands one out.
        """
        vault = self._ctx.need_vault()
        now = int(time.time()) if now is None else now
        published = _published(vault.get(K.GROUP_KEY_PACKAGES))
        refresh = published is not None and now - published.at >= REFRESH_AFTER
        if published is not None and not refresh and not more:
            return
        device = self.device()
        suite = get_suite(device.suite_id)
        made = [key_package(device, now=now) for _ in range(KEY_PACKAGE_BATCH)]
        last = key_package(device, now=now) if published is None or refresh else None
        stored = {
            K.key_package(kp.ref(suite)): encode_key_package(kp, private)
            for kp, private in [*made, *([last] if last else [])]
        }
        refs = [kp.ref(suite) for kp, _ in [*made, *([last] if last else [])]]
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
                    replace=refresh,
                )
            )
        except BaseException:
            vault.record_all([], {}, drop=tuple(stored))
            raise
        if published is None:
            record, gone = PublishedKeyPackages(now, refs, []), []
        elif refresh:
            record, gone = PublishedKeyPackages(now, refs, published.current), published.replaced
        else:
            record = PublishedKeyPackages(
                published.at, [*published.current, *refs], published.replaced
            )
            gone = []
        vault.record_all(
            [],
            {K.GROUP_KEY_PACKAGES: _encode_published(record)},
            drop=tuple(K.key_package(ref) for ref in gone),
        )

    async def fetch(self, users: list[str], pinned: PinnedKeys) -> list[tuple[str, KeyPackage]]:
        """One key package per device of each user, to add them, checked against our
        pins first.

        A user never met is pinned now (trust on first use, as `sharekey`); a
        package signed by another key than the pinned one is refused with the
        key-change advice.
        """
        vault = self._ctx.need_vault()
        answer = await self._request(lambda rid: GF.FetchKeyPackages(rid=rid, users=users))
        if not isinstance(answer, GF.KeyPackages):
            raise ClientError(f"unexpected answer {type(answer).__name__} to fetch_key_packages")
        if answer.missing:
            raise ClientError(
                f"{', '.join(answer.missing)} cannot be added: no key packages published "
                "(they have not signed in since groups arrived, or do not exist)",
                ClientErrorCode.NO_KEY,
            )
        packages: list[tuple[str, KeyPackage]] = []
        pins: dict[str, bytes] = {}
        for entry in answer.packages:
            if entry.user not in users:
                continue
            try:
                package = KeyPackage.decode(entry.key_package)
            except MLSError as exc:
                raise ClientError(f"{entry.user}'s key package is invalid: {exc}") from exc
            check = classify_key_package(package, pinned, expected_user=entry.user)
            if isinstance(check, Refused):
                raise ClientError(check.reason, ClientErrorCode.INVALID_KEYS)
            if isinstance(check, KeyMismatch):
                raise ClientError(
                    f"{entry.user}'s key changed: compare `verify {entry.user}` with them, then "
                    f"`reject {entry.user}` or `trust {entry.user}`",
                    ClientErrorCode.KEY_CHANGED,
                )
            if isinstance(check, FirstSeen):
                pins[K.pin(entry.user)] = check.member.identity.der
            packages.append((entry.user, package))
        vault.record_all([], pins)
        return packages
