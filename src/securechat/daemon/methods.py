"""The daemon's methods: one params Struct and one handler each, over the client's `ChatAPI`.

Names and shapes follow signal-cli's daemon (`send` with `recipient` and
`message`, `listContacts`, `receive` notifications) so scripts written for it
need little change. Connection state (`subscribe`, `auth`) belongs to the
server; it reaches the handlers as the small `Subscriptions` interface.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import msgspec

from securechat import __version__
from securechat.client.api import ChatAPI
from securechat.client.conversation import ConversationId
from securechat.client.payloads import MAX_TEXT_CHARS
from securechat.client.records import StoredMessage
from securechat.crypto.errors import WrongPassword
from securechat.daemon.rpc import INTERNAL_ERROR, LOCKED, REFUSED, UNREACHABLE, RpcError
from securechat.errors import ConnectionLost, SecureChatError, ServerRejected
from securechat.protocol.limits import MAX_URL_CHARS, USERNAME_PATTERN

log = logging.getLogger("securechat.daemon")

User = Annotated[str, msgspec.Meta(pattern=USERNAME_PATTERN)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=200)]
MessageId = Annotated[int, msgspec.Meta(ge=0)]
Path = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every method's params: a field nobody defined is an error, not ignored."""


class NoParams(Params, frozen=True):
    pass


class SendParams(Params, frozen=True):
    recipient: User
    message: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)] = ""
    attachment: Path | None = None


class ReceiptParams(Params, frozen=True):
    recipient: User
    type: Literal["read"] = "read"


class PeerParams(Params, frozen=True):
    recipient: User


class HistoryParams(Params, frozen=True):
    peer: User
    before: MessageId | None = None
    after: MessageId | None = None
    limit: Limit = 50


class SearchParams(Params, frozen=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    limit: Limit = 50


class ScanParams(Params, frozen=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_CHARS)]
    full: bool = False
    submit: bool = False


class DownloadParams(Params, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    to: Path | None = None


class SubscribeParams(Params, frozen=True):
    after: MessageId = 0
    """The last message id the client handled: everything received after it is replayed."""


class AuthParams(Params, frozen=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class Subscriptions(Protocol):
    def subscribe(self, after: int) -> None: ...

    def unsubscribe(self) -> None: ...


Handler = Callable[[ChatAPI, Subscriptions, Any], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Method:
    params: type[Params]
    handler: Handler


async def _version(client: ChatAPI, conn: Subscriptions, p: NoParams) -> object:
    return {"version": __version__}


async def _send(client: ChatAPI, conn: Subscriptions, p: SendParams) -> object:
    if not p.message and p.attachment is None:
        raise RpcError(REFUSED, "give a message, an attachment or both", "empty")
    answer: dict[str, str] = {}
    if p.message:
        answer["id"] = await client.send_text(p.recipient, p.message)
    if p.attachment is not None:
        answer["file_id"] = await client.send_file(p.recipient, p.attachment)
    return answer


async def _send_receipt(client: ChatAPI, conn: Subscriptions, p: ReceiptParams) -> object:
    client.mark_read(p.recipient)
    return {}


async def _conversations(client: ChatAPI, conn: Subscriptions, p: NoParams) -> object:
    return [
        {"peer": c.peer, "last_ts": c.last_ts, "unread": c.unread} for c in client.conversations()
    ]


async def _history(client: ChatAPI, conn: Subscriptions, p: HistoryParams) -> object:
    page = client.history(p.peer, p.before, p.limit, p.after)
    return {"messages": [message_fields(m) for m in page]}


async def _search(client: ChatAPI, conn: Subscriptions, p: SearchParams) -> object:
    return {"messages": [message_fields(m) for m in client.search(p.query, p.limit)]}


async def _sharekey(client: ChatAPI, conn: Subscriptions, p: PeerParams) -> object:
    return {"fingerprint": await client.sharekey(p.recipient)}


async def _talk(client: ChatAPI, conn: Subscriptions, p: PeerParams) -> object:
    return {"state": (await client.talk(p.recipient)).value}


async def _verify(client: ChatAPI, conn: Subscriptions, p: PeerParams) -> object:
    numbers = client.verify(p.recipient)
    return {"peer": numbers.peer, "pinned": numbers.pinned, "offered": numbers.offered}


async def _trust(client: ChatAPI, conn: Subscriptions, p: PeerParams) -> object:
    return {"fingerprint": client.trust(p.recipient)}


async def _contacts(client: ChatAPI, conn: Subscriptions, p: NoParams) -> object:
    contacts = []
    for conversation in client.conversations():
        if not ConversationId.parse(conversation.peer).is_direct:
            continue  # a group: its members are contacts, not the group
        key = client.pinned_key(conversation.peer)
        contacts.append(
            {
                "peer": conversation.peer,
                "state": client.conversation_state(conversation.peer).value,
                "fingerprint": key.fingerprint_hex() if key else None,
            }
        )
    return contacts


async def _scan(client: ChatAPI, conn: Subscriptions, p: ScanParams) -> object:
    return msgspec.to_builtins(await client.scan(p.url, full=p.full, submit=p.submit))


async def _download(client: ChatAPI, conn: Subscriptions, p: DownloadParams) -> object:
    return {"path": str(await client.download(p.id, p.to))}


async def _subscribe(client: ChatAPI, conn: Subscriptions, p: SubscribeParams) -> object:
    conn.subscribe(p.after)
    return {"after": p.after}


async def _unsubscribe(client: ChatAPI, conn: Subscriptions, p: NoParams) -> object:
    conn.unsubscribe()
    return {}


METHODS: dict[str, Method] = {
    "version": Method(NoParams, _version),
    "send": Method(SendParams, _send),
    "sendReceipt": Method(ReceiptParams, _send_receipt),
    "listConversations": Method(NoParams, _conversations),
    "history": Method(HistoryParams, _history),
    "search": Method(SearchParams, _search),
    "sharekey": Method(PeerParams, _sharekey),
    "talk": Method(PeerParams, _talk),
    "verify": Method(PeerParams, _verify),
    "trust": Method(PeerParams, _trust),
    "listContacts": Method(NoParams, _contacts),
    "scan": Method(ScanParams, _scan),
    "download": Method(DownloadParams, _download),
    "subscribe": Method(SubscribeParams, _subscribe),
    "unsubscribe": Method(NoParams, _unsubscribe),
}
PARAMS: dict[str, type[msgspec.Struct]] = {
    **{name: method.params for name, method in METHODS.items()},
    "auth": AuthParams,
}


def message_fields(message: StoredMessage) -> dict[str, Any]:
    record = message.record
    return {
        "id": message.id,
        "peer": record.peer,
        "conversation": record.conversation,
        "sender": record.sender,
        "outgoing": record.outgoing,
        "kind": record.kind,
        "text": record.text,
        "ts": record.ts,
        "received_ts": record.received,
        "state": record.state,
        "eid": record.eid,
        "file_id": record.file_id,
    }


def as_rpc_error(exc: BaseException) -> RpcError:
    """The stable code for a failure; a bug's details stay in the log, not on the socket."""
    match exc:
        case RpcError():
            return exc
        case ConnectionLost() | TimeoutError():
            return RpcError(UNREACHABLE, "the relay cannot be reached; try again", "unreachable")
        case WrongPassword():
            return RpcError(LOCKED, str(exc), "locked")
        case ServerRejected():
            return RpcError(REFUSED, exc.message, exc.code)
        case SecureChatError():
            return RpcError(REFUSED, str(exc), getattr(exc, "code", "") or "refused")
        case _:
            log.error("method failed: %s", type(exc).__name__)
            return RpcError(INTERNAL_ERROR, "internal error")
