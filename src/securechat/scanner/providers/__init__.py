"""Online reputation providers behind one small interface (see base.Provider)."""

from __future__ import annotations

from securechat.scanner.providers.base import HttpProvider, Provider
from securechat.scanner.providers.otx import OTXProvider
from securechat.scanner.providers.virustotal import VirusTotalProvider

__all__ = ["HttpProvider", "OTXProvider", "Provider", "VirusTotalProvider"]
