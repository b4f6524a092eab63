"""Wire protocol v1: every frame the relay and the client exchange.

Frames are JSON text messages with a `type` tag; binary values travel as
base64 strings (msgspec does this for `bytes` fields). The protocol version is
negotiated once per connection through the websocket subprotocol
`securechat.v1`, so frames don't repeat it.

Client frames are parsed strictly: an unknown `type`, a missing field, a
field of the wrong type, a value out of bounds or an *extra* field is a
`bad_request`, because a client that sends fields we don't know is either
buggy or probing. Server frames are parsed leniently by clients (unknown
fields ignored) so that a relay can add information within v1.

Requests carry `rid`, chosen by the client and echoed in the answer (a
result frame or an `error`). Pushes from the relay (`deliver`, `presence`,
...) carry no `rid`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from securechat.protocol import limits as L
from securechat.protocol.frame_base import (
    Body,
    ChunkBlob,
    ChunkIndex,
    EnvelopeId,
    FileId,
    HashPrefix,
    KeyBlob,
    Password,
    RecoveryToken,
    ServerId,
    Token,
    Url,
    Username,
    _ClientFrame,
    _ServerFrame,
)
from securechat.protocol.group_frames import (
    GROUP_REQUEST_TYPES,
    GroupClientFrame,
    GroupServerFrame,
)

# --- accounts ------------------------------------------------------------------


class Register(_ClientFrame, tag="register", frozen=True):
    username: Username
    password: Password
    recovery_token: RecoveryToken
    """The server half of the recovery code (HKDF-derived on the client); stored hashed."""


class Login(_ClientFrame, tag="login", frozen=True, omit_defaults=True):
    username: Username
    password: Password
    replaces: Token | None = None
    """The session token this device held: the relay ends that session.

    Left out of the JSON when None, so a login without it is the first v1
    `login` byte for byte; relays from before the field refuse it (`bad_request`
    naming `replaces`), and the client then logs in without it.
    """


class Resume(_ClientFrame, tag="resume", frozen=True):
    token: Token


class Logout(_ClientFrame, tag="logout", frozen=True):
    pass


class ResetPassword(_ClientFrame, tag="reset_password", frozen=True):
    username: Username
    token: Token
    """An operator reset token, or the hex of the server half of a recovery code."""
    new_password: Password
    new_recovery_token: RecoveryToken | None = None
    """Replaces a consumed recovery code; required when `token` was one."""


class DeleteAccount(_ClientFrame, tag="delete_account", frozen=True):
    password: Password


# --- relay ---------------------------------------------------------------------


class Send(_ClientFrame, tag="send", frozen=True):
    to: Username
    eid: EnvelopeId
    """Chosen by the sender; re-sending the same (sender, eid) is idempotent."""
    body: Body


class Ack(_ClientFrame, tag="ack", frozen=True):
    """Confirms delivered envelopes so the relay deletes them. Not answered."""

    sids: Annotated[list[ServerId], msgspec.Meta(min_length=1, max_length=L.MAX_ACK_IDS)]


class Watch(_ClientFrame, tag="watch", frozen=True):
    """Subscribes to the presence of these users (answered with current states)."""

    users: Annotated[list[Username], msgspec.Meta(max_length=L.MAX_WATCH_USERS)]


class DeleteConversation(_ClientFrame, tag="delete_conversation", frozen=True):
    """Drops what the relay still holds between the caller and `peer`."""

    peer: Username


# --- key directory -------------------------------------------------------------


class PublishKeys(_ClientFrame, tag="publish_keys", frozen=True, omit_defaults=True):
    """Opaque to the relay: identity key, signed prekeys and one-time prekeys.

    `one_time_kem_prekeys` (one-time ML-KEM-768 prekeys) is left out when empty, so a
    relay that predates it, which refuses unknown fields, still takes the frame.
    """

    identity: KeyBlob
    signed_prekey: KeyBlob
    kem_prekey: KeyBlob
    one_time_prekeys: Annotated[list[KeyBlob], msgspec.Meta(max_length=L.MAX_ONE_TIME_PREKEYS)]
    replace_one_time: bool = False
    one_time_kem_prekeys: Annotated[
        list[KeyBlob], msgspec.Meta(max_length=L.MAX_ONE_TIME_KEM_PREKEYS)
    ] = msgspec.field(default_factory=list)


class FetchBundle(_ClientFrame, tag="fetch_bundle", frozen=True):
    user: Username


# --- files ---------------------------------------------------------------------


class FileBegin(_ClientFrame, tag="file_begin", frozen=True):
    """Reserves a blob for `size` bytes of ciphertext readable by `recipients`."""

    size: Annotated[int, msgspec.Meta(ge=0, le=2**40)]
    recipients: Annotated[
        list[Username], msgspec.Meta(min_length=1, max_length=L.MAX_FILE_RECIPIENTS)
    ]


class FileChunk(_ClientFrame, tag="file_chunk", frozen=True):
    file_id: FileId
    index: ChunkIndex
    data: ChunkBlob


class FileStatus(_ClientFrame, tag="file_status", frozen=True):
    """Asks how many chunks of an upload the relay holds (to resume)."""

    file_id: FileId


class FileGet(_ClientFrame, tag="file_get", frozen=True, omit_defaults=True):
    """`binary`: answer with a binary `file_data` message (raw bytes, not base64). Left out
    when false, so relays that predate it (strict about fields) still understand the frame."""

    file_id: FileId
    index: ChunkIndex
    binary: bool = False


class FileDone(_ClientFrame, tag="file_done", frozen=True):
    """A recipient confirms it has the whole file; the last one frees the blob."""

    file_id: FileId


class FileCancel(_ClientFrame, tag="file_cancel", frozen=True):
    """The owner withdraws a file (a send that failed, finished or not); its space is freed."""

    file_id: FileId


# --- URL scanning --------------------------------------------------------------


class ScanPrefixes(_ClientFrame, tag="scan_prefixes", frozen=True):
    """Private mode: only hash prefixes of the canonical URL's expressions."""

    prefixes: Annotated[
        list[HashPrefix], msgspec.Meta(min_length=1, max_length=L.MAX_SCAN_PREFIXES)
    ]


class ScanUrl(_ClientFrame, tag="scan_url", frozen=True):
    """Full lookup: the relay (and its providers) learn the URL."""

    url: Url
    submit: bool = False


ClientFrame = (
    Register
    | Login
    | Resume
    | Logout
    | ResetPassword
    | DeleteAccount
    | Send
    | Ack
    | Watch
    | DeleteConversation
    | PublishKeys
    | FetchBundle
    | FileBegin
    | FileChunk
    | FileStatus
    | FileGet
    | FileDone
    | FileCancel
    | ScanPrefixes
    | ScanUrl
    | GroupClientFrame
)

# --- server frames ---------------------------------------------------------------


class Error(_ServerFrame, tag="error", frozen=True):
    code: str
    message: str
    rid: int | None = None
    retry_after: float | None = None


class Done(_ServerFrame, tag="done", frozen=True):
    """Success of a request that returns nothing else."""

    rid: int


class Registered(_ServerFrame, tag="registered", frozen=True):
    rid: int
    username: str


class Session(_ServerFrame, tag="session", frozen=True):
    """Answer to `login` and `resume`: the token resumes without the password."""

    rid: int
    username: str
    token: str
    expires_at: float
    one_time_prekeys: int
    """How many of the user's one-time prekeys the directory still holds."""
    one_time_kem_prekeys: int | None = None
    """The same for one-time ML-KEM prekeys; None from a relay that predates them."""
    binary_files: bool = False
    """The relay takes `file_chunk` and answers `file_get` as binary messages."""
    online_scanners: tuple[str, ...] | None = None
    """The online scanners a full lookup asks (`virustotal`, `otx`): those the relay has
    API keys for, never the keys. None from a relay that predates the field."""


class Accepted(_ServerFrame, tag="accepted", frozen=True, omit_defaults=True):
    """The envelope is persisted: it will be delivered even if the relay crashes."""

    rid: int
    eid: str
    full: list[str] = msgspec.field(default_factory=list)
    """A `group_send`'s members whose queue on the relay was full: they get no copy.
    Left out when empty (always, for a `send`), so older clients read the frame as before."""


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    sid: int
    sender: str
    """Stamped by the relay from the authenticated connection, never from the client."""
    eid: str
    body: bytes
    ts: float


class Deliver(_ServerFrame, tag="deliver", frozen=True):
    """One or more envelopes, oldest first; the client answers with `ack`."""

    envelopes: list[Envelope]


class Presence(_ServerFrame, tag="presence", frozen=True):
    user: str
    state: str
    """`online`, `offline` or `deleted` (the account is gone)."""
    rid: int | None = None


class PresenceList(_ServerFrame, tag="presence_list", frozen=True):
    rid: int
    states: dict[str, str]


class Bundle(_ServerFrame, tag="bundle", frozen=True):
    rid: int
    user: str
    identity: bytes
    signed_prekey: bytes
    kem_prekey: bytes
    one_time_prekey: bytes | None = None
    one_time_kem_prekey: bytes | None = None
    """Used instead of `kem_prekey` when present (PQXDH prefers one-time KEM prekeys)."""


class PrekeysLow(_ServerFrame, tag="prekeys_low", frozen=True):
    remaining: int
    kem_remaining: int | None = None


class FileReady(_ServerFrame, tag="file_ready", frozen=True):
    """Answer to `file_begin` and `file_status`: chunks [0, next_index) are stored."""

    rid: int
    file_id: str
    next_index: int
    size: int
    complete: bool


class FileData(_ServerFrame, tag="file_data", frozen=True):
    rid: int
    file_id: str
    index: int
    data: bytes
    last: bool


class HashMatch(msgspec.Struct, frozen=True, kw_only=True):
    full_hash: bytes
    verdict: str
    """`malicious` or `suspicious`: the relay only lists what is known to be bad."""
    source: str


class ScanHashes(_ServerFrame, tag="scan_hashes", frozen=True):
    """Every full hash the relay knows that starts with one of the requested prefixes."""

    rid: int
    matches: list[HashMatch]


class ScanVerdict(_ServerFrame, tag="scan_verdict", frozen=True):
    """A full lookup's verdict: rating, reasons and what each provider said."""

    rid: int
    verdict: dict[str, Any]


ServerFrame = (
    Error
    | Done
    | Registered
    | Session
    | Accepted
    | Deliver
    | Presence
    | PresenceList
    | Bundle
    | PrekeysLow
    | FileReady
    | FileData
    | ScanHashes
    | ScanVerdict
    | GroupServerFrame
)

REQUEST_TYPES: Final = (
    frozenset(
        cls.__struct_config__.tag
        for cls in (
            Register,
            Login,
            Resume,
            Logout,
            ResetPassword,
            DeleteAccount,
            Send,
            Ack,
            Watch,
            DeleteConversation,
            PublishKeys,
            FetchBundle,
            FileBegin,
            FileChunk,
            FileStatus,
            FileGet,
            FileDone,
            FileCancel,
            ScanPrefixes,
            ScanUrl,
        )
    )
    | GROUP_REQUEST_TYPES
)
