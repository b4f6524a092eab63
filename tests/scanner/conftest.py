"""Scanner fixtures live in fakes.py; importing them here makes them visible to pytest."""

from __future__ import annotations

from tests.scanner.fakes import fake_otx, fake_vt

__all__ = ["fake_otx", "fake_vt"]
