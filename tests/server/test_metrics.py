"""Prometheus metrics: the format a scraper expects, on a listener of their own."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from securechat.server.app import RelayServer
from securechat.server.metrics import Timings
from tests.conftest import fast_config
from tests.wire import PASSWORD, Wire, b64, signed_up


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_parse_with_help_type_labels_histograms_and_process(
    relay: RelayServer,
) -> None:
    """A scrape after a message and two logins parses, documents every family, and counts them."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    bob = await signed_up(url, "bob")
    stranger = await Wire.open(url)
    assert (await stranger.call("login", username="alice", password=PASSWORD + "x"))[
        "type"
    ] == "error"
    assert (await alice.call("send", to="bob", eid="m1", body=b64(b"x")))["type"] == "accepted"
    await bob.next_push("deliver")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"http://127.0.0.1:{relay.metrics_port}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = answer.text
    families = list(text_string_to_metric_families(text))
    assert len(families) > 15
    for family in families:
        # The text format names a counter's family with its _total suffix; the parser drops it.
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"# HELP {name} " in text, name
        assert f"# TYPE {name} {family.type}" in text, name
    samples = _samples(text)
    assert samples[("securechat_logins_total", (("result", "ok"),))] == 2
    assert samples[("securechat_logins_total", (("result", "failed"),))] == 1
    assert samples[("securechat_connections", ())] == 3
    assert samples[("securechat_envelopes_accepted_total", ())] == 1
    for stage in ("persist", "deliver"):
        labels = (("le", "+Inf"), ("stage", stage))
        assert samples[("securechat_relay_latency_seconds_bucket", labels)] == 1, stage
    assert samples[("securechat_login_seconds_count", ())] == 3
    assert samples[("securechat_store_up", ())] == 1
    assert samples[("securechat_bus_up", ())] == 1
    assert samples[("process_cpu_seconds_total", ())] > 0
    assert samples[("process_resident_memory_bytes", ())] > 0


async def test_metrics_stay_off_the_public_port_unless_asked(tmp_path: Path) -> None:
    """By default anyone who reaches the chat port cannot read metrics; `public` allows it."""
    for listen, status in (("127.0.0.1:0", 404), ("public", 200)):
        server = RelayServer(
            fast_config(tmp_path / listen.replace(":", "_"), metrics_listen=listen)
        )
        await server.start()
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{server.port}/metrics")
            assert answer.status_code == status, listen
            assert (server.metrics_port is None) == (listen == "public")
        finally:
            await server.stop()


def test_timings_buckets_are_cumulative_and_inclusive() -> None:
    """An observation equal to a bound falls in that bound's bucket (Prometheus' `le`)."""
    timings = Timings((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        timings.observe(seconds)
    assert timings.cumulative() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert timings.total == 3.65


@pytest.mark.parametrize("order", ["longest wait first", "shortest wait first", "shuffled"])
def test_timings_observe_many_files_each_wait_as_observe_does(order: str) -> None:
    """A write batch filed at once: the buckets and sum of an `observe` per wait, bounds too."""
    bounds = (0.001, 0.005, 0.01, 0.1)
    waits = [0.0, 0.001, 0.001, 0.0049, 0.005, 0.0051, 0.01, 0.02, 0.1, 0.5, 7.0]
    rng = random.Random(22)
    waits += [rng.uniform(0, 0.2) for _ in range(200)]
    one_by_one = Timings(bounds)
    for seconds in waits:
        one_by_one.observe(seconds)
    batch = sorted(waits, reverse=order == "longest wait first")
    if order == "shuffled":
        rng.shuffle(batch)
    filed = Timings(bounds)
    filed.observe_many(batch[:3])  # a handful, filed one by one
    filed.observe_many([])
    filed.observe_many(batch[3:])
    assert filed.counts == one_by_one.counts
    assert filed.total == pytest.approx(one_by_one.total, rel=1e-12)


async def test_a_write_batch_times_each_envelope_from_its_own_receipt(
    relay: RelayServer,
) -> None:
    """Four envelopes in one commit: each in the bucket of its own wait, the sum theirs."""
    url = f"ws://127.0.0.1:{relay.port}"
    alice = await signed_up(url, "alice")
    await signed_up(url, "bob")
    # Receipt times for the four sends, then the commit's: waits of 1/64, 1/64, 3/256
    # and 1/128 s (exact in binary), so 0.01 < wait <= 0.025 for three, <= 0.01 for one.
    ticks = iter([64.0, 64.0, 64.0 + 1 / 256, 64.0 + 1 / 128])
    relay.relay.clock = lambda: next(ticks, 64.0 + 1 / 64)
    relay.relay.commit_delay = 0.5  # one write batch, however slowly the four are read
    for i in range(4):
        alice.rid += 1
        frame = {"type": "send", "rid": alice.rid, "to": "bob", "eid": f"m{i}", "body": b64(b"x")}
        await alice.ws.send(json.dumps(frame))
    assert [(await alice.recv())["type"] for _ in range(4)] == ["accepted"] * 4
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{relay.metrics_port}/metrics")).text
    samples = _samples(text)

    def persist(le: str) -> float:
        return samples[
            ("securechat_relay_latency_seconds_bucket", (("le", le), ("stage", "persist")))
        ]

    assert [persist(le) for le in ("0.005", "0.01", "0.025", "+Inf")] == [0, 1, 4, 4]
    stage = (("stage", "persist"),)
    assert samples[("securechat_relay_latency_seconds_sum", stage)] == 2 / 64 + 3 / 256 + 1 / 128
