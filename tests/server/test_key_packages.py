"""MLS key packages: one per device, each one-time package handed out once, the
last-resort one when none is left, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

from securechat.server.app import RelayServer
from securechat.server.directory import MAX_KEY_PACKAGES_HELD
from securechat.server.store import Store
from tests.wire import b64, signed_up


async def test_one_package_per_device_oldest_first_then_the_last_resort(store: Store) -> None:
    """Devices are served independently; the last-resort package is kept, and replaced."""
    assert await store.publish_key_packages("alice", "d1", [b"a1", b"a2"], b"last1") == 2
    assert await store.publish_key_packages("alice", "d2", [b"b1"], None) == 1
    first = await store.fetch_key_packages(["alice", "bob"])
    assert [(p.device, p.key_package, p.last_resort, p.remaining) for p in first] == [
        ("d1", b"a1", False, 1),
        ("d2", b"b1", False, 0),
    ]
    second = await store.fetch_key_packages(["alice"])
    assert [(p.device, p.key_package) for p in second] == [("d1", b"a2")]
    assert await store.publish_key_packages("alice", "d1", [], b"last2") == 0
    for _ in range(2):
        again = await store.fetch_key_packages(["alice"])
        assert [(p.device, p.key_package, p.last_resort) for p in again] == [("d1", b"last2", True)]
    assert await store.key_package_counts("alice") == {"d1": 0}


async def test_a_refresh_replaces_the_devices_one_time_packages_only(store: Store) -> None:
    """A device whose packages near the end of their lifetime publishes new ones in
    their place: the stale ones are never handed out again, other devices keep theirs."""
    await store.publish_key_packages("alice", "d1", [b"old1", b"old2"], b"last1")
    await store.publish_key_packages("alice", "d2", [b"other"], None)
    assert await store.publish_key_packages("alice", "d1", [b"new1"], b"last2", replace=True) == 1
    handed = [await store.fetch_key_packages(["alice"]) for _ in range(3)]
    assert [[(p.device, p.key_package) for p in h] for h in handed] == [
        [("d1", b"new1"), ("d2", b"other")],
        [("d1", b"last2")],
        [("d1", b"last2")],
    ]


async def test_concurrent_fetchers_never_get_the_same_one_time_package(store: Store) -> None:
    """Twenty fetches at once (several connections on PostgreSQL) for ten packages:
    each one-time package goes to exactly one fetcher, the rest get the last-resort one."""
    packages = [f"kp{i}".encode() for i in range(10)]
    await store.publish_key_packages("alice", "d1", packages, b"last")
    results = await asyncio.gather(*(store.fetch_key_packages(["alice"]) for _ in range(20)))
    handed = [p for result in results for p in result]
    one_time = [p.key_package for p in handed if not p.last_resort]
    assert sorted(one_time) == sorted(packages)
    assert [p.key_package for p in handed if p.last_resort] == [b"last"] * (20 - len(one_time))
    assert await store.key_package_counts("alice") == {"d1": 0}


async def test_the_relay_serves_key_packages_and_warns_the_owner(relay: RelayServer) -> None:
    """Published packages reach a fetcher once; the owner hears `key_packages_low` on
    publish and on every fetch below the low-water mark; unknown users are `missing`."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    bob = await signed_up(url, "bob")
    answer = await alice.call(
        "publish_key_packages", device="d1", key_packages=[b64(b"kp1")], last_resort=b64(b"kl")
    )
    assert answer["type"] == "done"
    assert await alice.next_push("key_packages_low") == {
        "type": "key_packages_low",
        "device": "d1",
        "remaining": 1,
    }
    answer = await bob.call("fetch_key_packages", users=["alice", "nobody"])
    assert answer["packages"] == [
        {"user": "alice", "device": "d1", "key_package": b64(b"kp1"), "last_resort": False}
    ]
    assert answer["missing"] == ["nobody"]
    assert (await alice.next_push("key_packages_low"))["remaining"] == 0
    answer = await bob.call("fetch_key_packages", users=["alice"])
    assert answer["packages"][0]["last_resort"] is True
    hundred = [b64(b"k%d" % i) for i in range(100)]
    for _ in range(MAX_KEY_PACKAGES_HELD // 100):
        answer = await alice.call("publish_key_packages", device="d1", key_packages=hundred)
        assert answer["type"] == "done"
    refused = await alice.call("publish_key_packages", device="d1", key_packages=hundred[:1])
    assert refused["code"] == "too_large" and "200 one-time key packages" in refused["message"]
    assert (await alice.call("fetch_key_packages", users=["bob"]))["missing"] == ["bob"]
    for wire in (alice, bob):
        await wire.close()
