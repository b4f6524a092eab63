"""Bounds shared by the relay and the client, so both reject the same input.

Sizes are in bytes of the decoded value unless stated otherwise.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1
SUBPROTOCOL = "securechat.v1"

MAX_FRAME_BYTES = 1 << 20
"""Largest websocket message the relay reads."""

MAX_BODY_BYTES = 512 * 1024
"""An envelope body: base64 inflates it by 4/3 and it must fit in one frame."""

USERNAME_PATTERN = r"^[a-z0-9_.\-]{3,32}$"
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
MAX_TOKEN_CHARS = 128
MAX_ENVELOPE_ID_CHARS = 64
ENVELOPE_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
MAX_KEY_BLOB_BYTES = 8 * 1024
MAX_ONE_TIME_PREKEYS = 200
MAX_ONE_TIME_KEM_PREKEYS = 100
"""One-time ML-KEM-768 prekeys in one `publish_keys` (about 1.6 KB each)."""
MAX_WATCH_USERS = 1000
MAX_ACK_IDS = 1000
MAX_DELIVER_BATCH = 256
MAX_FILE_RECIPIENTS = 32
FILE_CHUNK_BYTES = 64 * 1024
MAX_FILE_CHUNK_BLOB = FILE_CHUNK_BYTES + 64
MAX_FILE_PLAINTEXT_BYTES = 25 * 1000 * 1000
MAX_SCAN_PREFIXES = 64
MAX_URL_CHARS = 8192
MAX_REQUEST_ID = 2**53 - 1

OPERATOR_TOKEN_PREFIX = "op-"  # noqa: S105 (a prefix, not a secret)
"""How an operator's reset token starts; anything else in a reset is a recovery code."""
