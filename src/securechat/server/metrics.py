"""The relay's Prometheus metrics: plain counters on the hot path, prometheus-client to expose them.

Relaying a message must not pay for a lock or an allocation per counter, so the
code that relays updates plain attributes of `Metrics` (and `Timings`, a
histogram that is a list of bucket counts). Only a scrape turns them into
metric families, through `RelayCollector`; prometheus-client writes the text
format (HELP, TYPE, content negotiation) and adds the process metrics.
Everything runs on the event loop, so a scrape sees each number whole.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    ProcessCollector,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

RELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: a write batch waits 5 ms by default, so most of the mass sits around there."""
LOGIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: bcrypt at cost 12 takes about 0.25 s, longer when logins queue for a worker."""


class Timings:
    """A histogram as plain counts: `observe` is a bisect and two additions, no lock;
    `observe_many` files a whole write batch with a few bisects."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def observe_many(self, seconds: list[float]) -> None:
        """Observes each of `seconds`, sorting the list in place: what a write batch calls.

        A batch times up to hundreds of envelopes against one clock reading.
        Sorted, each bucket takes a run of them, found with one bisect per
        bucket the batch reaches (a few) instead of a call and a bisect
        per envelope. A batch lists its envelopes oldest first, so the waits
        are already in (descending) order and the sort is one pass."""
        if len(seconds) < 8:
            for one in seconds:  # a handful: a call each costs less than sort and bisects
                self.observe(one)
            return
        seconds.sort()
        counts, bounds = self.counts, self.bounds
        done = 0
        bucket = bisect_left(bounds, seconds[0])
        while done < len(seconds):
            upto = (
                bisect_right(seconds, bounds[bucket], done)
                if bucket < len(bounds)
                else len(seconds)
            )
            counts[bucket] += upto - done
            done = upto
            bucket += 1
        self.total += sum(seconds)

    def cumulative(self) -> list[tuple[str, float]]:
        """Buckets as Prometheus wants them: cumulative, ending with +Inf."""
        running = 0
        out = []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


@dataclass
class Metrics:
    connections_open: int = 0
    connections_accepted: int = 0
    frames_received: int = 0
    frames_rejected: int = 0
    envelopes_accepted: int = 0
    envelopes_delivered: int = 0
    group_messages_accepted: int = 0
    group_commits_accepted: int = 0
    group_copies_withheld: int = 0
    logins_ok: int = 0
    logins_failed: int = 0
    rate_limited: int = 0
    persist: Timings = field(default_factory=lambda: Timings(RELAY_BUCKETS))
    """From receipt to the commit that stored it."""
    deliver: Timings = field(default_factory=lambda: Timings(RELAY_BUCKETS))
    """From receipt to the frame handed to the recipient's socket (live deliveries only).
    Measured from receipt, not from the commit: on SQLite a live recipient gets the
    envelope before the commit (docs/architecture.md), so "after persist" would be negative."""
    login: Timings = field(default_factory=lambda: Timings(LOGIN_BUCKETS))


@dataclass(frozen=True)
class Health:
    """What the readiness check and the gauges read, asked at scrape time."""

    store_ok: Callable[[], bool]
    bus_ok: Callable[[], bool]
    commit_backlog: Callable[[], int]


class RelayCollector(Collector):
    def __init__(self, metrics: Metrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        yield _gauge("securechat_connections", "Open client connections.", m.connections_open)
        yield _counter(
            "securechat_connections_accepted",
            "Client connections accepted.",
            m.connections_accepted,
        )
        yield _counter("securechat_frames_received", "Frames received.", m.frames_received)
        yield _counter(
            "securechat_frames_rejected", "Frames answered with an error.", m.frames_rejected
        )
        yield _counter(
            "securechat_envelopes_accepted",
            "Envelopes stored for a recipient.",
            m.envelopes_accepted,
        )
        yield _counter(
            "securechat_envelopes_delivered",
            "Envelopes written to a recipient's connection.",
            m.envelopes_delivered,
        )
        yield _counter(
            "securechat_group_messages_accepted",
            "Group messages stored (each once, whatever the group's size).",
            m.group_messages_accepted,
        )
        yield _counter(
            "securechat_group_commits_accepted",
            "Group Commits accepted (one per group and epoch).",
            m.group_commits_accepted,
        )
        yield _counter(
            "securechat_group_copies_withheld",
            "Copies of group messages not stored because the member's queue was full.",
            m.group_copies_withheld,
        )
        logins = CounterMetricFamily(
            "securechat_logins", "Password logins by result.", labels=["result"]
        )
        logins.add_metric(["ok"], m.logins_ok)
        logins.add_metric(["failed"], m.logins_failed)
        yield logins
        yield _counter(
            "securechat_rate_limited",
            "Frames refused by the per-connection rate limit.",
            m.rate_limited,
        )
        latency = HistogramMetricFamily(
            "securechat_relay_latency_seconds",
            "Per-envelope time on the relay: stage=persist is receipt to its write batch's commit, "
            "stage=deliver is receipt to the recipient's socket (live recipients).",
            labels=["stage"],
        )
        for stage, timings in (("persist", m.persist), ("deliver", m.deliver)):
            latency.add_metric([stage], timings.cumulative(), timings.total)
        yield latency
        login = HistogramMetricFamily(
            "securechat_login_seconds", "Time to answer a password login (bcrypt included)."
        )
        login.add_metric([], m.login.cumulative(), m.login.total)
        yield login
        yield _gauge(
            "securechat_commit_backlog",
            "Envelopes received and waiting for the next write batch.",
            self.health.commit_backlog(),
        )
        yield _gauge(
            "securechat_store_up",
            "1 while the store commits, 0 while it fails.",
            self.health.store_ok(),
        )
        yield _gauge(
            "securechat_bus_up",
            "1 while the bus (Redis) is reachable or not used.",
            self.health.bus_ok(),
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def registry_for(metrics: Metrics, health: Health) -> CollectorRegistry:
    """A registry per relay (not the global one), so several relays in a process stay apart."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(metrics, health))
    registry.register(ProcessCollector(registry=None))
    registry.register(PLATFORM_COLLECTOR)
    registry.register(GC_COLLECTOR)
    return registry


def exposition(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The body and content type the scraper asked for (text format 0.0.4 by default)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
