"""Counters exported at GET /metrics in Prometheus' text format."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Metrics:
    connections_open: int = 0
    connections_accepted: int = 0
    frames_received: int = 0
    frames_rejected: int = 0
    envelopes_accepted: int = 0
    envelopes_delivered: int = 0
    logins_ok: int = 0
    logins_failed: int = 0
    rate_limited: int = 0

    _GAUGES = frozenset({"connections_open"})

    def render(self) -> str:
        lines = []
        for f in fields(self):
            kind = "gauge" if f.name in self._GAUGES else "counter"
            name = f"securechat_{f.name}" + ("" if kind == "gauge" else "_total")
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name} {getattr(self, f.name)}")
        return "\n".join(lines) + "\n"
