"""Members asking for changes at once, submitted to the relay in any order: every
member that stays ends in the same epoch with the same roster, name and admins."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from securechat.groups.errors import GroupBusy, PolicyViolation
from securechat.groups.outputs import (
    AddMembers,
    Intent,
    MakeAdmin,
    Output,
    RemoveMember,
    Rename,
    SetTopic,
)
from tests.groups.keys import identities
from tests.groups.test_session import make_group
from tests.groups.world import NOW, World

USERS = ("alice", "bob", "carol", "dave", "erin")


def _ask(world: World, data: st.DataObject) -> tuple[str, tuple[Output, ...]] | None:
    """One member asks for one change; None when its session refuses the request."""
    name = data.draw(st.sampled_from(world.current_members()))
    client = world.clients[name]
    members = {m.username for m in client.s.members}
    kind = data.draw(st.sampled_from(["rename", "topic", "promote", "add", "remove", "leave"]))
    intent: Intent
    try:
        if kind == "leave":
            client.session, outputs = client.s.leave()
            return name, outputs
        if kind == "rename":
            intent = Rename(data.draw(st.sampled_from(["a", "b", "c"])))
        elif kind == "topic":
            intent = SetTopic(data.draw(st.sampled_from(["", "x"])))
        elif kind == "promote":
            intent = MakeAdmin(data.draw(st.sampled_from(sorted(members))))
        elif kind == "remove":
            intent = RemoveMember(data.draw(st.sampled_from(sorted(members - {name}) or [name])))
        else:
            outside = [
                u
                for u in USERS
                if u not in members
                and u not in world.relay.members
                and (u not in world.clients or world.relay.key_packages[u])
            ]
            if not outside:
                return None
            user = data.draw(st.sampled_from(outside))
            intent = AddMembers(((user, world.fetch_key_package(user)),))
        client.session, outputs = client.s.request(intent, now=NOW, pins=client.pinned)
    except (PolicyViolation, GroupBusy):
        return None
    return name, outputs


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_concurrent_changes_converge(data: st.DataObject) -> None:
    world = make_group(identities(), "bob", "carol")
    for _ in range(data.draw(st.integers(1, 3))):
        asked = [a for _ in range(data.draw(st.integers(2, 4))) if (a := _ask(world, data))]
        for name, outputs in data.draw(st.permutations(asked)):
            world.run(name, outputs)
        world.deliver()
    event(f"conflicts: {min(world.conflicts, 3)}")
    members = world.current_members()
    world.members_agree(*members)
    sessions = [world.clients[n].s for n in members]
    assert len({(s.metadata, s.admins) for s in sessions}) == 1
    assert {m.username for m in sessions[0].members} == set(members)
    assert all(s.pending is None and not s.intents and not s.lost for s in sessions)
