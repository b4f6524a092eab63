"""The policy and metadata GroupContext extensions: exact bytes, strict decoding."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.crypto.mls.codec import decode
from securechat.crypto.mls.group_context import Extension
from securechat.crypto.mls.validation import required_capabilities
from securechat.groups.errors import InvalidGroupData
from securechat.groups.extensions import (
    GROUP_METADATA,
    GROUP_POLICY,
    GroupMetadata,
    GroupPolicy,
    group_extensions,
    metadata_of,
    policy_of,
)

usernames = st.from_regex(r"\A[a-z0-9_.\-]{3,32}\Z")


def test_policy_bytes() -> None:
    """version 1, then a vector of opaque usernames in sorted order."""
    encoded = GroupPolicy(frozenset({"bob", "alice"})).encode()
    assert encoded == bytes.fromhex("0001 0a 05616c696365 03626f62")


def test_metadata_bytes() -> None:
    assert GroupMetadata("team", "x").encode() == bytes.fromhex("0001 047465616d 0178")


@settings(deadline=None)
@given(st.frozensets(usernames, max_size=20))
def test_policy_round_trip(admins: frozenset[str]) -> None:
    policy = GroupPolicy(admins)
    assert policy_of((policy.extension(),)) == policy


@settings(deadline=None)
@given(st.text(min_size=1, max_size=64).filter(str.isprintable), st.text(max_size=100))
def test_metadata_round_trip(name: str, topic: str) -> None:
    if not topic.isprintable():
        with pytest.raises(InvalidGroupData):
            GroupMetadata(name, topic)
        return
    metadata = GroupMetadata(name, topic)
    assert metadata_of((metadata.extension(),)) == metadata


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("0002 00"),  # version 2
        bytes.fromhex("0001 0a 03626f62 05616c696365"),  # not sorted
        bytes.fromhex("0001 08 03626f62 03626f62"),  # twice
        bytes.fromhex("0001 04 03626f62 00"),  # trailing byte
        bytes.fromhex("0001 03 02ffff"),  # not UTF-8
        bytes.fromhex("0001 03 02 6162"),  # not a username
    ],
)
def test_malformed_policies_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidGroupData):
        policy_of((Extension(GROUP_POLICY, data),))


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidGroupData):
        GroupMetadata(name)


@settings(deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_invalid_group_data(data: bytes) -> None:
    for kind, read in ((GROUP_POLICY, policy_of), (GROUP_METADATA, metadata_of)):
        with contextlib.suppress(InvalidGroupData):
            read((Extension(kind, data),))


def test_missing_extensions_are_refused() -> None:
    with pytest.raises(InvalidGroupData, match="no policy"):
        policy_of(())
    with pytest.raises(InvalidGroupData, match="no metadata"):
        metadata_of(())


def test_group_extensions_require_both() -> None:
    """required_capabilities names both types, so MLS refuses a leaf lacking them."""
    extensions = group_extensions(GroupPolicy(frozenset({"alice"})), GroupMetadata("t"))
    assert required_capabilities(extensions).extension_types == (GROUP_POLICY, GROUP_METADATA)
    assert decode(extensions[1].extension_data, GroupPolicy.read).admins == {"alice"}
