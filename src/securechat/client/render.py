"""How an event reads to a script (JSON fields) and to a person (one line of text).

`securechat-cli receive --json` and the daemon's `receive` notifications print
the same fields, so a script moves from one to the other unchanged. Messages and
file offers carry `id`, the vault's message id: the cursor a daemon client
resumes from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from securechat.client.events import (
    ConversationChanged,
    ConversationState,
    DeliveryChanged,
    ErrorRaised,
    Event,
    FileOffered,
    GroupChanged,
    GroupInvited,
    GroupKeyChanged,
    KeyChanged,
    KeyKept,
    KeyShared,
    MessageReceived,
    MessagesMissing,
    PresenceChanged,
)


@dataclass(frozen=True, slots=True)
class Described:
    fields: dict[str, Any]
    text: str


def describe(event: Event, group_name: Callable[[str], str] | None = None) -> Described | None:
    """The event as JSON fields and as a line for a person; None for events scripts skip.

    A group's message or file offer also names the group: `group` (its id) and,
    when `group_name` can tell it (only members know it), `group_name`.
    """
    described = _describe(event)
    conversation = getattr(event, "conversation", None)
    if described is None or conversation is None or conversation.is_direct:
        return described
    name = group_name(conversation.name) if group_name is not None else ""
    fields = {**described.fields, "group": conversation.name, "group_name": name}
    return Described(fields, printable(f"[{name or conversation.name[:8]}] ") + described.text)


def _describe(event: Event) -> Described | None:
    fields: dict[str, Any]
    match event:
        case FileOffered():
            fields = {
                "type": "file",
                "conversation": event.conversation.key,
                "from": event.sender,
                "file_id": event.file_id,
                "name": event.name,
                "size": event.size,
                "id": event.message_id,
            }
            text = (
                f"{event.sender} offers {event.name} ({event.size} bytes): download {event.file_id}"
            )
        case MessageReceived():
            fields = {
                "type": "message",
                "conversation": event.conversation.key,
                "from": event.sender,
                "text": event.text,
                "ts": event.ts,
                "received_ts": event.received_ts,
                "clocks_disagree": event.clocks_disagree,
                "id": event.message_id,
            }
            text = f"{event.sender}: {event.text}"
            if event.clocks_disagree:
                text += (
                    f"  [sent {_clock(event.ts)}, relay says received {_clock(event.received_ts)}]"
                )
        case MessagesMissing():
            fields = {"type": "missing", "from": event.peer, "count": event.count}
            text = event.text
        case KeyShared():
            fields = {"type": "key", "from": event.peer, "fingerprint": event.fingerprint}
            text = f"{event.peer} shared their key {event.fingerprint}"
        case KeyChanged():
            fields = {
                "type": "key_changed",
                "peer": event.peer,
                "pinned": event.pinned_fingerprint,
                "offered": event.offered_fingerprint,
            }
            text = (
                f"WARNING: {event.peer}'s key changed; run `verify {event.peer}`, then "
                f"`reject {event.peer}` or `trust {event.peer}`"
            )
        case KeyKept():
            fields = {
                "type": "key_kept",
                "peer": event.peer,
                "pinned": event.pinned_fingerprint,
                "rejected": event.rejected_fingerprint,
                "by_peer": event.by_peer,
            }
            who = (
                f"{event.peer} shared their pinned key again"
                if event.by_peer
                else f"you kept {event.peer}'s pinned key"
            )
            text = (
                f"WARNING: {who}; the different key {event.rejected_fingerprint} "
                f"offered for {event.peer} is rejected"
            )
        case ConversationChanged():
            fields = {"type": "session", "peer": event.peer, "state": event.state.value}
            text = f"session with {event.peer}: {event.state.value}"
            if event.state == ConversationState.JAMMED:
                text = (
                    f"WARNING: the session with {event.peer} is stuck (they sent more than "
                    f"the skip limit ahead); run `talk {event.peer}` to start a new one"
                )
        case DeliveryChanged():
            fields = {
                "type": "delivery",
                "peer": event.peer,
                "eid": event.eid,
                "state": event.state.value,
            }
            text = f"message {event.eid} to {event.peer}: {event.state.value}"
        case PresenceChanged():
            fields = {"type": "presence", "user": event.user, "state": event.state}
            text = f"{event.user} is {event.state}"
        case ErrorRaised():
            fields = {"type": "error", "message": event.message, "code": event.code}
            text = f"error: {event.message}"
        case GroupChanged():
            fields = {
                "type": "group_change",
                "change": event.change.value,
                "by": event.by,
                "subject": event.subject,
                "id": event.message_id,
            }
            text = event.text
        case GroupInvited():
            fields = {
                "type": "group_invite",
                "by": event.by,
                "fingerprint": event.fingerprint,
                "pinned": event.pinned,
                "name": event.name,
                "topic": event.topic,
                "members": list(event.members),
            }
            text = f"{event.by} added you to {event.name} with {', '.join(event.members)}"
            if not event.pinned:
                text += f"; {event.by}'s key, first seen here: {event.fingerprint}"
        case GroupKeyChanged():
            fields = {
                "type": "group_key_changed",
                "user": event.user,
                "pinned": event.pinned_fingerprint,
                "offered": event.offered_fingerprint,
            }
            text = (
                f"WARNING: {event.user}'s key changed; nothing is sent to this group until "
                f"you run `verify {event.user}`, then `reject {event.user}` or `trust {event.user}`"
            )
        case _:
            return None
    return Described(fields, printable(text))


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def printable(text: str) -> str:
    """Control characters from other users never reach the terminal as escapes."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
