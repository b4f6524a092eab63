"""The exception tree shared by every layer.

    SecureChatError                  a failure with a sentence a person can act on
    ├── ProtocolError                a frame that breaks the wire protocol (code + message)
    ├── ConfigError                  a bad flag, variable or TOML value
    ├── StoreError                   the server or client store could not do its job
    │   └── StorageFullError         the disk is full or read-only
    ├── ClientError                  the headless client core (code: a ClientErrorCode)
    │   ├── ConnectionLost           the relay went away; the outbox keeps what is unsent
    │   ├── ServerRejected           the relay answered with an error frame (code + message)
    │   ├── VaultBehind              the relay takes a password this device's vault does not
    │   ├── SessionError             a refused request: no usable session, no such file...
    │   └── TransferError            a file could not be sent or received (client/transfers)
    └── CryptoError                  raised by securechat.crypto (see crypto/errors.py)

Each error carries a message meant for the user; the code travels separately
so that clients can react to it without parsing prose: the relay's
`protocol.errors.ErrorCode` for a `ServerRejected`, a `ClientErrorCode` for
every other `ClientError` (what `securechat-cli --json` and the daemon report).
`str()` is the sentence alone: a person has no use for `(not_found)`, and
`explain(exc, debug=True)` adds the code where it helps (`--debug`, reports).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class SecureChatError(Exception):
    """Base of every error securechat raises on purpose."""


class ProtocolError(SecureChatError):
    """A frame that cannot be accepted; `code` is one of protocol.errors.ErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """The relay is busy or its disk is full: the same request may succeed later."""
        return self.code in {"unavailable", "rate_limited", "internal"}


class ConfigError(SecureChatError):
    """Configuration that cannot be used as given."""


class StoreError(SecureChatError):
    """A store operation failed for a reason other than bad input."""


class StorageFullError(StoreError):
    """The data directory is full or read-only."""


class ClientErrorCode(StrEnum):
    """Stable codes of the client's own refusals: scripts branch on these, never on prose.

    Like the relay's codes, a code may be added but never renamed or reused.
    """

    NOT_SIGNED_IN = "not_signed_in"
    NO_VAULT = "no_vault"
    """No vault for that user on this device."""
    VAULT_EXISTS = "vault_exists"
    VAULT_DAMAGED = "vault_damaged"
    VAULT_BEHIND = "vault_behind"
    """An operator reset: the vault needs the previous password or the recovery code."""
    UNREACHABLE = "unreachable"
    NO_KEY = "no_key"
    """No key is pinned for the peer yet (`sharekey` first)."""
    KEY_CHANGED = "key_changed"
    """The peer's key changed: `verify`, then `reject` or `trust`, first."""
    KEY_UNCHANGED = "key_unchanged"
    INVALID_KEYS = "invalid_keys"
    """The peer's published keys do not verify."""
    NO_SESSION = "no_session"
    SESSION_PENDING = "session_pending"
    """The peer has not answered the session set-up yet."""
    SELF = "self"
    INVALID_MESSAGE = "invalid_message"
    """Empty, or longer than a message may be."""
    NO_FILE = "no_file"
    TRANSFER_FAILED = "transfer_failed"
    E2E = "e2e"
    """A message from a peer could not be opened and was dropped (an event, not a raise)."""
    NO_GROUP = "no_group"
    """No group with that id on this device (never joined, or left)."""
    NOT_ADMIN = "not_admin"
    """The group's policy lets only its admins do that."""
    NOT_ALLOWED = "not_allowed"
    """The group's policy forbids it otherwise (the only admin leaving, a non-member)."""
    GROUP_BUSY = "group_busy"
    """A change of ours awaits the relay's answer: try again once it is confirmed."""
    QUEUE_FULL = "queue_full"
    """A group message reached the others but not the members named: their queue on the
    relay is full (an event, not a raise)."""


class ClientError(SecureChatError):
    """Base for failures surfaced by the headless client core; `code` says which."""

    default_code: ClassVar[str] = ""

    def __init__(self, message: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = self.default_code if code is None else code


class ConnectionLost(ClientError):
    """The connection to the relay dropped."""

    default_code = ClientErrorCode.UNREACHABLE


class ServerRejected(ClientError):
    """The relay answered a request with an error frame; `code` is the relay's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)
        self.message = message

    @property
    def transient(self) -> bool:
        """The relay is busy or its disk is full: the same request may succeed later."""
        return self.code in {"unavailable", "rate_limited", "internal"}


class SessionError(ClientError):
    """The client refuses a request: no usable session with that peer, no such file..."""

    default_code = ClientErrorCode.NO_SESSION


class VaultBehind(ClientError):
    """The relay accepted a password the vault does not open: an operator reset.

    An operator's token cannot open the vault (by design), so the vault is still
    wrapped under the previous password; the UI asks for it or the recovery code.
    """

    default_code = ClientErrorCode.VAULT_BEHIND


def explain(exc: BaseException, debug: bool = False) -> str:
    """The sentence to show for `exc`; with `debug`, followed by its wire code if it has one."""
    code = getattr(exc, "code", "")
    text = str(exc) or type(exc).__name__
    return f"{text} ({code})" if debug and isinstance(code, str) and code else text
