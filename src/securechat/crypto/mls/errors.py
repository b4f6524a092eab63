"""Errors raised by securechat.crypto.mls (RFC 9420).

    MLSError                       base: securechat.crypto.errors.CryptoError
    ├── DecodeError                bytes that are not the TLS encoding of the structure expected
    ├── UnsupportedCipherSuite     a cipher suite this build does not implement
    ├── MissingPrimitive           the installed `cryptography` lacks a primitive the suite needs
    ├── InvalidMLSSignature        a SignWithLabel signature does not verify (also InvalidSignature)
    ├── MLSAuthenticationFailed    an AEAD, HPKE or MAC check failed (also AuthenticationFailed)
    ├── InvalidMessage             a well-formed message that breaks a protocol rule
    │   ├── WrongGroup             the message belongs to another group
    │   ├── WrongEpoch             the message belongs to another epoch of this group
    │   ├── InvalidLeafNode        a leaf node or key package fails validation (§7.3, §10.1)
    │   │   └── CredentialRejected the application's credential validator refused it
    │   ├── InvalidProposalList    a Commit's proposals break §12.2 (or one is unknown)
    │   └── NotAMember             we are not (or no longer) in the group this state names
    ├── InvalidState               group state bytes that are not a state this version reads
    └── GenerationUnavailable      a ratchet key already used and deleted, or too far ahead

Messages never contain key material or plaintext.
"""

from __future__ import annotations

from securechat.crypto.errors import AuthenticationFailed, CryptoError, InvalidSignature


class MLSError(CryptoError):
    """Base of every failure raised by the MLS core."""


class DecodeError(MLSError):
    """The bytes do not decode as the structure expected (RFC 9420 §2.1)."""


class UnsupportedCipherSuite(MLSError):
    """The cipher suite is unknown to this build."""


class MissingPrimitive(MLSError):
    """The installed cryptography library cannot provide a primitive the suite needs."""


class InvalidMLSSignature(MLSError, InvalidSignature):
    """A signature over labelled MLS content does not verify."""


class MLSAuthenticationFailed(MLSError, AuthenticationFailed):
    """A ciphertext or MAC was altered, or checked with the wrong key."""


class InvalidMessage(MLSError):
    """The message decodes but breaks a rule of the protocol."""


class WrongGroup(InvalidMessage):
    """The message names another group."""


class WrongEpoch(InvalidMessage):
    """The message is for an epoch other than the state's current one."""


class InvalidLeafNode(InvalidMessage):
    """A leaf node or key package breaks a validation rule of §7.3 or §10.1."""


class CredentialRejected(InvalidLeafNode):
    """The application's credential validator did not accept a credential."""


class InvalidProposalList(InvalidMessage):
    """A Commit's proposal list is invalid (§12.2) or names a proposal we do not hold."""


class NotAMember(InvalidMessage):
    """This state's member is not in the group (removed, or never joined)."""


class InvalidState(MLSError):
    """Serialised group state that is corrupt or of an unknown version."""


class GenerationUnavailable(MLSError):
    """The key for that generation was already consumed or lies outside the window."""
