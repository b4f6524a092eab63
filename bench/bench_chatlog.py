"""The chat view at 40,000 messages in one conversation, against a 100-message account.

Two vaults are filled directly (batched transactions of what `add_message`
does, as in bench_search; a message is `#<n> ` and 3-25 words). Each repeat
runs `bench.chatlog_probe` once per vault, in a fresh process so its memory
is its own, and reports: opening the conversation, Home (the first message on
screen), End (the newest again), the process's RSS after paging back through
the history, and key echo (press until the input line holds the key) while
20 messages a second arrive, once scrolled back and once at the newest.
Paging back is bounded (SCROLL_PAGES PageUps, a few thousand messages) to
keep the run short: the window is full after 200 messages, so further paging
changes nothing the figures measure.

Run: .venv/bin/python -m bench chatlog
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_search import messages
from bench.common import PASSWORD, REPO, Row, log, percentile, row, scratch
from securechat.client.records import MessageRecord
from securechat.client.vault_store import Vault
from securechat.crypto import generate_recovery_code

NAME = "chatlog"
PEER = "friend"
BATCH = 2000


def fill(directory: Path, count: int) -> float:
    """Bulk insert: one transaction per BATCH messages instead of one per message."""
    vault = Vault.create(directory, PASSWORD, generate_recovery_code())
    texts = messages(count)
    start = time.perf_counter()
    now = time.time() - count
    try:
        for first in range(0, count, BATCH):
            with vault._tx() as db:
                for i in range(first, min(first + BATCH, count)):
                    record = MessageRecord(
                        peer=PEER, outgoing=i % 2 == 0, text=f"#{i} {texts[i]}", ts=now + i
                    )
                    vault._add_message(db, record, unread=False)
    finally:
        vault.close()
    return time.perf_counter() - start


def probe(directory: Path, pages: int) -> dict[str, float | list[float]]:
    """On a copy: the probe stores the messages that arrive while it types."""
    with scratch(NAME) as tmp:
        shutil.copytree(directory, tmp / "vault")
        return _probe(tmp / "vault", pages)


def _probe(directory: Path, pages: int) -> dict[str, float | list[float]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench.chatlog_probe", str(directory), PEER, str(pages)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO,
        timeout=900,
    )
    if done.returncode:
        # The probe's traceback says which step never got there; without it a run is lost blind.
        raise RuntimeError(f"the probe failed:\n{done.stderr[-2000:]}")
    result: dict[str, float | list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False) -> list[Row]:
    large_count = 4_000 if quick else 40_000
    repeats = 1 if quick else 3
    pages = 20 if quick else 120
    with scratch(NAME) as tmp:
        small, large = tmp / "small", tmp / "large"
        log("filling a 100-message vault")
        fill(small, 100)
        log(f"filling a {large_count:,}-message vault")
        took = fill(large, large_count)
        log(f"  {large_count / took:,.0f} messages/s ({took:.0f} s)")
        results: dict[str, list[dict[str, float | list[float]]]] = {"small": [], "large": []}
        for i in range(repeats):
            for label, directory in (("small", small), ("large", large)):
                result = probe(directory, pages)
                results[label].append(result)
                log(
                    f"repeat {i + 1} {label}: open {result['open_ms']:.0f} ms, "
                    f"home {result['home_ms']:.0f} ms, end {result['end_ms']:.0f} ms, "
                    f"rss {result['rss_scrolled_mib']:.0f} MiB after paging back "
                    f"{result['paged_back']:.0f} messages, {result['widgets']} lines"
                )
    return rows(results, large_count, pages)


def _values(results: list[dict[str, float | list[float]]], key: str) -> list[float]:
    return [float(r[key]) for r in results]  # type: ignore[arg-type]


def _p95(results: list[dict[str, float | list[float]]], key: str) -> list[float]:
    return [percentile(r[key], 95) for r in results]  # type: ignore[arg-type]


def rows(
    results: dict[str, list[dict[str, float | list[float]]]], count: int, pages: int
) -> list[Row]:
    large, small = results["large"], results["small"]
    scrolled = min(_values(large, "paged_back"))
    rss_large = _values(large, "rss_scrolled_mib")
    rss_small = _values(small, "rss_scrolled_mib")
    extra = statistics.median(a - b for a, b in zip(rss_large, rss_small, strict=True))
    out = [
        row(
            NAME,
            f"open a {count:,}-message conversation",
            _values(large, "open_ms"),
            "ms",
            _values(small, "open_ms"),
            note="from the main screen's mount to the last page shown",
        ),
        row(
            NAME,
            "Home: the first message on screen",
            _values(large, "home_ms"),
            "ms",
            _values(small, "home_ms"),
            target="< 1000 ms",
            met=statistics.median(_values(large, "home_ms")) < 1000,
        ),
        row(
            NAME,
            "End: the newest message on screen",
            _values(large, "end_ms"),
            "ms",
            _values(small, "end_ms"),
        ),
        row(
            NAME,
            f"RSS after paging back {scrolled:,.0f} messages ({pages} PageUp)",
            rss_large,
            "MiB",
            rss_small,
            target="≤ small + 20 MiB",
            met=extra <= 20,
            note=f"{extra:+.1f} MiB over the small account; the small one pages to its top",
            digits=1,
        ),
    ]
    for key, where in (("echo_back_ms", "scrolled back"), ("echo_end_ms", "at the newest")):
        p95 = _p95(large, key)
        out.append(
            row(
                NAME,
                f"key echo p95, 20 incoming/s, {where}",
                p95,
                "ms",
                _p95(small, key),
                target="< 50 ms",
                met=statistics.median(p95) < 50,
                note="median "
                + f"{statistics.median(statistics.median(r[key]) for r in large):.1f} ms",  # type: ignore[arg-type]
                digits=1,
            )
        )
    return out
