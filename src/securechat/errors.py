"""The exception tree shared by every layer.

    SecureChatError                  a failure with a sentence a person can act on
    ├── ProtocolError                a frame that breaks the wire protocol (code + message)
    ├── ConfigError                  a bad flag, variable or TOML value
    ├── StoreError                   the server or client store could not do its job
    │   └── StorageFullError         the disk is full or read-only
    ├── ClientError                  the headless client core
    │   ├── ConnectionLost           the relay went away; the outbox keeps what is unsent
    │   ├── ServerRejected           the relay answered with an error frame (code + message)
    │   ├── VaultBehind              the relay takes a password this device's vault does not
    │   └── SessionError             no usable end-to-end session with that peer
    └── CryptoError                  raised by securechat.crypto (see crypto/errors.py)

Each error carries a message meant for the user; the wire code (when there is
one) travels separately so that clients can react to it without parsing prose.
`str()` is the sentence alone: a person has no use for `(not_found)`, and
`explain(exc, debug=True)` adds the code where it helps (`--debug`, reports).
"""

from __future__ import annotations


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


class ClientError(SecureChatError):
    """Base for failures surfaced by the headless client core."""


class ConnectionLost(ClientError):
    """The connection to the relay dropped."""


class ServerRejected(ClientError):
    """The relay answered a request with an error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """The relay is busy or its disk is full: the same request may succeed later."""
        return self.code in {"unavailable", "rate_limited", "internal"}


class SessionError(ClientError):
    """There is no usable end-to-end session with a peer."""


class VaultBehind(ClientError):
    """The relay accepted a password the vault does not open: an operator reset.

    An operator's token cannot open the vault (by design), so the vault is still
    wrapped under the previous password; the UI asks for it or the recovery code.
    """


def explain(exc: BaseException, debug: bool = False) -> str:
    """The sentence to show for `exc`; with `debug`, followed by its wire code if it has one."""
    code = getattr(exc, "code", "")
    text = str(exc) or type(exc).__name__
    return f"{text} ({code})" if debug and isinstance(code, str) and code else text
