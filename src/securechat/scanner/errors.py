"""Errors raised by the URL scanner.

    SecureChatError (securechat.errors)
    └── ScannerError                 the scanner could not do what was asked
        └── InvalidURL               the text cannot be read as a checkable web URL

Provider failures (bad key, quota, outage, timeout) are never raised: they are
reported inside the Verdict, so one failing provider cannot hide the others.
"""

from __future__ import annotations

from securechat.errors import SecureChatError


class ScannerError(SecureChatError):
    """Base of the scanner's own errors."""


class InvalidURL(ScannerError):
    """The text is not an http(s) URL that can be canonicalised."""
