"""A 25 MB file sent and received through the relay, against a plain copy through a websocket.

securechat: `ChatClient.send_file` (seal 64 KiB chunks and upload them, 16 in
flight, while a thread seals the file once more for the manifest's digest; then
the offer inside the session) then `ChatClient.download` (fetch 16 in flight,
open, write, digest over the chunk tags, fsync, rename). Baseline: the same
bytes as 64 KiB binary messages to the bare server (appended to one file) and
back (written and fsynced), 8 in flight. Client and server peak RSS
growth (VmHWM reset before each transfer) are reported for both.

The relay's frame limit (200 a second, bursts of 400) is lifted here: a 25 MB
upload is 382 `file_chunk` frames, and on loopback the client sends them
faster than 200 a second, so with the production limit the first upload
already fails with `rate_limited` (the client does not retry file chunks).
See README.md, "Findings".

Run: .venv/bin/python -m bench files
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.bench_relay import UNLIMITED
from bench.common import REPO, Row, Server, log, row, scratch

NAME = "files"
SIZE = 25_000_000


def _client(spec: dict[str, Any]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.files_client"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    for line in done.stderr.decode(errors="replace").splitlines()[-20:]:
        log("client: " + line)
    if done.returncode != 0:
        raise RuntimeError("file client failed")
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else 5
    size = 5_000_000 if quick else SIZE
    with scratch("files") as tmp:
        source = tmp / "payload.bin"
        source.write_bytes(os.urandom(size))
        results: dict[str, list[dict[str, Any]]] = {}
        for kind, mode in (("bare", "bare"), ("relay", "securechat")):
            with Server(kind, tmp / kind, env=UNLIMITED) as server:
                log(f"{mode}: {repeats} x {size / 1e6:.0f} MB")
                (tmp / f"{mode}-client").mkdir()
                results[kind] = _client(
                    {
                        "mode": mode,
                        "url": server.url,
                        "server_pid": server.pid,
                        "file": str(source),
                        "dir": str(tmp / f"{mode}-client"),
                        "repeats": repeats,
                    }
                )
    return _rows(results["relay"], results["bare"], size)


def _rows(relay: list[dict[str, Any]], bare: list[dict[str, Any]], size: int) -> list[Row]:
    def col(runs: list[dict[str, Any]], key: str) -> list[float]:
        return [float(r[key]) for r in runs]

    mb = f"{size / 1e6:.0f} MB"
    total = col(relay, "total_s")
    ratios = sorted(r / b for r, b in zip(total, col(bare, "total_s"), strict=True))
    rows = [
        row(NAME, f"{mb} send (send_file)", col(relay, "send_s"), "s", col(bare, "send_s")),
        row(NAME, f"{mb} receive (download)", col(relay, "receive_s"), "s", col(bare, "receive_s")),
        row(
            NAME,
            f"{mb} send + receive",
            total,
            "s",
            col(bare, "total_s"),
            target="≤ 2x bare",
            met=ratios[len(ratios) // 2] <= 2,
        ),
    ]
    for side in ("client", "server"):
        key = f"{side}_peak_growth_mib"
        growth = col(relay, key)
        rows.append(
            row(
                NAME,
                f"{side} peak RSS growth during {mb} send + receive",
                growth,
                "MiB",
                col(bare, key),
                target="< 32 MiB",
                met=max(growth) < 32,
                note="client: both ChatClients (sender and receiver) in one process"
                if side == "client"
                else "",
                digits=1,
            )
        )
    return rows
