"""History search over 100,000 messages in a client Vault, against a plain substring scan.

The messages are 3-25 words drawn from a Zipf-distributed vocabulary of
5,000 words (English function words first, then made-up words), so the most
common word is in about a third of the messages, as "the" would be. The
vault is filled in transactions of 2,000 messages (what `add_message` does
per message, batched) and then searched for a common, a medium, a rare and
an absent word and a two-word query, `Vault.search(query)` with its default
limit of 50. Baseline: scanning the same 100,000 case-folded strings in
memory for the word (`word in text`), the floor of any search with no index.

Run: .venv/bin/python -m bench search
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

from bench.common import Row, log, row, scratch
from securechat.client.records import MessageRecord
from securechat.client.vault_messages import words
from securechat.client.vault_store import Vault
from securechat.crypto import generate_recovery_code

NAME = "search"
COMMON = [
    "the",
    "to",
    "and",
    "a",
    "i",
    "you",
    "it",
    "of",
    "in",
    "is",
    "that",
    "for",
    "on",
    "be",
    "have",
    "with",
    "this",
    "we",
    "my",
    "not",
    "are",
    "at",
    "do",
    "but",
    "so",
    "me",
    "can",
    "just",
    "what",
    "was",
    "all",
    "if",
    "get",
    "about",
    "will",
    "your",
    "like",
    "no",
    "out",
    "up",
    "know",
    "one",
    "they",
    "there",
    "when",
    "think",
    "time",
    "how",
    "good",
    "now",
    "see",
    "how",
    "here",
    "today",
    "tomorrow",
    "meeting",
    "call",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "ze",
    "pa",
    "do",
    "ri",
    "mu",
    "ge",
    "la",
    "fo",
    "si",
    "te",
]
BATCH = 2000


def vocabulary(size: int, rng: random.Random) -> list[str]:
    vocab = list(dict.fromkeys(COMMON))
    seen = set(vocab)
    while len(vocab) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab


def messages(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    vocab = vocabulary(5000, rng)
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(vocab))]
    texts = []
    for _ in range(count):
        chosen = rng.choices(vocab, weights, k=rng.randint(3, 25))
        texts.append(" ".join(chosen).capitalize() + rng.choice([".", "!", "?", ""]))
    return texts


def fill(vault: Vault, texts: list[str]) -> float:
    peers = [f"friend{i}" for i in range(20)]
    start = time.perf_counter()
    now = time.time() - len(texts)
    for first in range(0, len(texts), BATCH):
        with vault._tx() as db:
            for i in range(first, min(first + BATCH, len(texts))):
                record = MessageRecord(
                    peer=peers[i % len(peers)],
                    outgoing=i % 2 == 0,
                    text=texts[i],
                    ts=now + i,
                    eid=f"e{i}",
                )
                vault._add_message(db, record, unread=not record.outgoing)
        if first and first % 20_000 == 0:
            log(f"  {first:,} messages stored")
    return time.perf_counter() - start


def _time(call: object, repeats: int) -> list[float]:
    assert callable(call)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def run(quick: bool = False) -> list[Row]:
    count = 10_000 if quick else 100_000
    repeats = 3 if quick else 5
    texts = messages(count)
    folded = [t.casefold() for t in texts]
    counts = Counter(w for t in texts for w in words(t))
    by_count = sorted(counts.items(), key=lambda kv: -kv[1])
    common = by_count[0][0]
    medium = min(by_count, key=lambda kv: abs(kv[1] - count / 100))[0]
    rare = min(by_count, key=lambda kv: abs(kv[1] - 3))[0]
    queries = {
        "common": common,
        "medium": medium,
        "rare": rare,
        "absent": "zzyzx",
        "two words": f"{common} {medium}",
    }
    rows: list[Row] = []
    with scratch("search") as tmp:
        vault = Vault.create(Path(tmp) / "vault", "benchmark password", generate_recovery_code())
        try:
            log(f"filling a vault with {count:,} messages")
            took = fill(vault, texts)
            log(f"  {count / took:,.0f} messages/s ({took:.0f} s)")
            size = sum(p.stat().st_size for p in (Path(tmp) / "vault").iterdir()) / 2**20
            for label, query in queries.items():
                wanted = words(query)
                found = len(vault.search(query))  # warm the page cache once
                times = _time(lambda q=query: vault.search(q), repeats)  # type: ignore[misc]
                scan = _time(
                    lambda w=wanted: [t for t in folded if all(x in t for x in w)],  # type: ignore[misc]
                    repeats,
                )
                matching = sum(1 for t in texts if wanted <= words(t))
                log(f"{label} {query!r}: {statistics_text(times)} vs scan {statistics_text(scan)}")
                rows.append(
                    row(
                        NAME,
                        f"search {label} word ({matching:,} of {count:,} messages match)"
                        if label != "two words"
                        else f"search two words ({matching:,} match)",
                        times,
                        "ms",
                        scan,
                        target="< 200 ms",
                        met=sorted(times)[len(times) // 2] < 200,
                        note=f"returned {found} (limit 50); vault {size:.0f} MiB, "
                        f"filled at {count / took:,.0f} msg/s",
                        digits=2,
                    )
                )
        finally:
            vault.close()
    return rows


def statistics_text(times: list[float]) -> str:
    return f"{sorted(times)[len(times) // 2]:.2f} ms"
