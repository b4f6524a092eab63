"""Message protection (RFC 9420 §6): signing and MACing PublicMessages, encrypting
PrivateMessages under the secret tree and the sender-data key.
"""

from __future__ import annotations

from securechat.crypto.mls import labels
from securechat.crypto.mls.suite import CipherSuite


def sender_data_key_nonce(
    suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """The key and nonce hiding a PrivateMessage's sender (§6.3.2), bound to its ciphertext."""
    sample = ciphertext[: suite.nh]
    return (
        labels.expand_with_label(suite, sender_data_secret, b"key", sample, suite.aead.nk),
        labels.expand_with_label(suite, sender_data_secret, b"nonce", sample, suite.aead.nn),
    )
