"""Transcript hashes (RFC 9420 §8.2).

The confirmed hash covers each Commit up to its signature; the interim hash adds
the confirmation tag, so a Commit's tag is bound into the next epoch's transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

from securechat.crypto.mls.codec import opaque, uint16
from securechat.crypto.mls.errors import InvalidMessage
from securechat.crypto.mls.framing import AuthenticatedContent, ContentType
from securechat.crypto.mls.suite import CipherSuite


@dataclass(frozen=True)
class TranscriptHashes:
    confirmed: bytes
    interim: bytes


def update(
    suite: CipherSuite, interim_before: bytes, commit: AuthenticatedContent
) -> TranscriptHashes:
    """The hashes after `commit`, which must carry a Commit and its confirmation tag."""
    tag = commit.auth.confirmation_tag
    if commit.content.content_type != ContentType.COMMIT or tag is None:
        raise InvalidMessage("Only a Commit advances the transcript hash.")
    confirmed_input = (
        uint16(commit.wire_format) + commit.content.encode() + opaque(commit.auth.signature)
    )
    confirmed = suite.kdf.hash(interim_before + confirmed_input)
    return TranscriptHashes(confirmed, suite.kdf.hash(confirmed + opaque(tag)))
