"""The key directory: the prekeys each user publishes, and the bundles others fetch.

The relay only holds public keys here; what it must get right is the
one-time keys: each is handed out once, a user holds no more than the caps
below, and a user running low is told (`prekeys_low`) on every connection,
so their client publishes more before a peer gets a bundle without one.

MLS key packages follow the same rules per device: each one-time package is
handed out once, a device's last-resort package stands in when none is left
(and is kept), a device holds at most `MAX_KEY_PACKAGES_HELD`, and a device
running low is told (`key_packages_low`) on its user's connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from securechat.errors import ProtocolError
from securechat.protocol import frames as F
from securechat.protocol import group_frames as G
from securechat.protocol.codec import encode_str
from securechat.protocol.errors import ErrorCode
from securechat.server.accounts import normalise_username
from securechat.server.relay import Outlet
from securechat.server.store import Store

PREKEYS_LOW_WATER = 10
MAX_ONE_TIME_PREKEYS_HELD = 1000
KEM_PREKEYS_LOW_WATER = 5
MAX_ONE_TIME_KEM_PREKEYS_HELD = 200
KEY_PACKAGES_LOW_WATER = PREKEYS_LOW_WATER
MAX_KEY_PACKAGES_HELD = 200
"""One-time key packages per device (16 KiB each at most: 3.2 MiB a device)."""
MAX_KEY_PACKAGE_DEVICES = 16
"""Devices with key packages per user: device ids are the client's to choose, so
without a bound one account could fill the disk with made-up devices."""


class Directory:
    def __init__(self, store: Store, outlets_of: Callable[[str], Iterable[Outlet]]) -> None:
        """`outlets_of(user)`: the user's connections on this node, told when they run low."""
        self.store = store
        self._outlets_of = outlets_of

    async def remaining(self, user: str) -> tuple[int, int]:
        """One-time prekeys and one-time KEM prekeys the user has left (told at login)."""
        return (
            await self.store.one_time_prekey_count(user),
            await self.store.one_time_kem_prekey_count(user),
        )

    async def publish(self, outlet: Outlet, user: str, frame: F.PublishKeys) -> None:
        await self._check_room(user, frame)
        count = await self.store.publish_keys(
            user,
            frame.identity,
            frame.signed_prekey,
            frame.kem_prekey,
            frame.one_time_prekeys,
            frame.replace_one_time,
            frame.one_time_kem_prekeys,
        )
        outlet.push(encode_str(F.Done(rid=frame.rid)))
        kem_count = await self.store.one_time_kem_prekey_count(user)
        if count < PREKEYS_LOW_WATER or (
            frame.one_time_kem_prekeys and kem_count < KEM_PREKEYS_LOW_WATER
        ):
            outlet.push(encode_str(F.PrekeysLow(remaining=count, kem_remaining=kem_count)))

    async def fetch_bundle(self, outlet: Outlet, frame: F.FetchBundle) -> None:
        """Hands out `frame.user`'s bundle, and tells its owner if it ran low."""
        owner = normalise_username(frame.user)
        bundle = await self.store.fetch_bundle(owner)
        if bundle is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"{owner} has not published keys (or does not exist)"
            )
        outlet.push(
            encode_str(
                F.Bundle(
                    rid=frame.rid,
                    user=owner,
                    identity=bundle.identity,
                    signed_prekey=bundle.signed_prekey,
                    kem_prekey=bundle.kem_prekey,
                    one_time_prekey=bundle.one_time_prekey,
                    one_time_kem_prekey=bundle.one_time_kem_prekey,
                )
            )
        )
        remaining = await self.store.one_time_prekey_count(owner)
        kem_remaining = await self.store.one_time_kem_prekey_count(owner)
        if remaining < PREKEYS_LOW_WATER or (
            bundle.one_time_kem_prekey is not None and kem_remaining < KEM_PREKEYS_LOW_WATER
        ):
            low = encode_str(F.PrekeysLow(remaining=remaining, kem_remaining=kem_remaining))
            for owners_outlet in self._outlets_of(owner):
                owners_outlet.push(low)

    async def _check_room(self, user: str, frame: F.PublishKeys) -> None:
        for held, new, limit, what in (
            (
                self.store.one_time_prekey_count,
                frame.one_time_prekeys,
                MAX_ONE_TIME_PREKEYS_HELD,
                "one-time prekeys",
            ),
            (
                self.store.one_time_kem_prekey_count,
                frame.one_time_kem_prekeys,
                MAX_ONE_TIME_KEM_PREKEYS_HELD,
                "one-time KEM prekeys",
            ),
        ):
            already = 0 if frame.replace_one_time else await held(user)
            if already + len(new) > limit:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE, f"the directory holds at most {limit} {what} per user"
                )

    async def publish_key_packages(
        self, outlet: Outlet, user: str, frame: G.PublishKeyPackages
    ) -> None:
        held = await self.store.key_package_counts(user)
        if frame.device not in held and len(held) >= MAX_KEY_PACKAGE_DEVICES:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"the directory holds key packages of at most {MAX_KEY_PACKAGE_DEVICES} devices"
                " per user",
            )
        already = 0 if frame.replace else held.get(frame.device, 0)
        if already + len(frame.key_packages) > MAX_KEY_PACKAGES_HELD:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"the directory holds at most {MAX_KEY_PACKAGES_HELD} one-time key packages"
                " per device",
            )
        count = await self.store.publish_key_packages(
            user, frame.device, frame.key_packages, frame.last_resort, replace=frame.replace
        )
        outlet.push(encode_str(F.Done(rid=frame.rid)))
        if count < KEY_PACKAGES_LOW_WATER:
            outlet.push(encode_str(G.KeyPackagesLow(device=frame.device, remaining=count)))

    async def fetch_key_packages(self, outlet: Outlet, frame: G.FetchKeyPackages) -> None:
        """One package per device of each user; owners running low are told."""
        users = list(dict.fromkeys(normalise_username(user) for user in frame.users))
        handed = await self.store.fetch_key_packages(users)
        found = {package.user for package in handed}
        outlet.push(
            encode_str(
                G.KeyPackages(
                    rid=frame.rid,
                    packages=[
                        G.KeyPackageEntry(
                            user=package.user,
                            device=package.device,
                            key_package=package.key_package,
                            last_resort=package.last_resort,
                        )
                        for package in handed
                    ],
                    missing=[user for user in users if user not in found],
                )
            )
        )
        for package in handed:
            if package.remaining < KEY_PACKAGES_LOW_WATER:
                low = encode_str(
                    G.KeyPackagesLow(device=package.device, remaining=package.remaining)
                )
                for owners_outlet in self._outlets_of(package.user):
                    owners_outlet.push(low)
