"""A verdict as people read it, for `securechat-cli scan` and `securechat-server scan`."""

from __future__ import annotations

from securechat.scanner.verdict import Verdict


def format_verdict(verdict: Verdict) -> str:
    lines = [f"{verdict.rating.upper()}: {verdict.url}"]
    lines += [f"  - {reason}" for reason in verdict.reasons]
    for report in verdict.providers:
        rating = f", {report.rating}" if report.rating else ""
        detail = f": {report.detail}" if report.detail else ""
        lines.append(f"  {report.provider}: {report.status}{rating}{detail}")
    return "\n".join(lines)
