"""A message accepted for an epoch, delivered to a member after that member's own Commit
ending the epoch was accepted: issue 20 says every accepted message reaches every
member, so the session keeps the previous epoch's state to open it
(GroupSession.previous).

On one relay this needs the answer to the Commit to overtake a delivery on the
same connection; on a cluster it is ordinary, since the delivery crosses the bus
while the answer does not (tests/client/test_groups_cluster.py met it one run in
three).
"""

from __future__ import annotations

from pathlib import Path

from tests.client.group_relay import DeliveryService, Member
from tests.groups.keys import identities


async def test_a_message_of_the_epoch_the_committer_just_ended_still_opens(
    tmp_path: Path,
) -> None:
    """Bob's message is accepted for epoch 1; alice's rename is accepted next; only then
    does bob's message reach alice. She must still read it."""
    ds, keys = DeliveryService(), identities()
    alice, bob = (Member(tmp_path, name, keys[name], ds) for name in ("alice", "bob"))
    for member in (alice, bob):
        await member.groups.keys.publish()
    gid = (await alice.groups.create("team", ["bob"])).group_id
    await bob.receive()
    await bob.groups.sending.send_text(gid, "sent in epoch 1")
    await alice.groups.rename(gid, "renamed")
    await alice.receive()
    await bob.receive()
    assert ("bob", "sent in epoch 1") in alice.texts(gid)
