"""Errors raised by securechat.crypto.mls (RFC 9420).

    MLSError                       base: securechat.crypto.errors.CryptoError
    ├── DecodeError                bytes that are not the TLS encoding of the structure expected
    ├── UnsupportedCipherSuite     a cipher suite this build does not implement
    ├── MissingPrimitive           the installed `cryptography` lacks a primitive the suite needs
    ├── InvalidMLSSignature        a SignWithLabel signature does not verify (also InvalidSignature)
    ├── MLSAuthenticationFailed    an AEAD, HPKE or MAC check failed (also AuthenticationFailed)
    ├── InvalidMessage             a well-formed message that breaks a protocol rule
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


class GenerationUnavailable(MLSError):
    """The key for that generation was already consumed or lies outside the window."""
