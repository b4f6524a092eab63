"""The fake VirusTotal serves the relay's scanner tests too."""

from __future__ import annotations

from tests.scanner.fakes import fake_vt  # noqa: F401 (a fixture)
