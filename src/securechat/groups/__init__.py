"""Group conversations on MLS, pure: no I/O, no clock, no asyncio.

    credentials   a member's MLS credential bound to their identity key
    extensions    the policy and metadata GroupContext extensions
    policy        who may change a group: checked on every Commit
    device        this device's signing key, credential and key packages
    outputs       intents, actions and events of a group session
    session       one group conversation as a state machine
    stored        a session as versioned bytes, for the vault

The client core drives `GroupSession` and carries out its actions; the relay's
frames for groups are in protocol/group_frames.py. See docs/architecture.md.
"""
