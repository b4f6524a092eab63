"""Where the relay's time goes per message: py-spy on the relay subprocess under load.

Not part of `python -m bench` (it needs py-spy and ptrace): run it by hand

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.profile_relay [--clients 100] [--rate 2000 | --flood]

It starts a relay, registers the clients, attaches `py-spy record` (sampling,
non-blocking) for the measured window of one load-generator run, and prints
inclusive and self time of the relay's functions, as a share of all samples
of the event-loop thread. `--out FILE` keeps the collapsed stacks (for
flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.bench_relay import BODY_BYTES, UNLIMITED
from bench.common import PASSWORD, Server, run_loadgen, scratch, users

GROUPS = {
    "websockets receive (read, parse frames, assemble)": (
        "_SelectorSocketTransport._read_ready ",
        "Assembler.get ",
    ),
    "parse + validate (msgspec)": ("parse_client_frame ",),
    "rate limit": ("TokenBucket.take ",),
    "Relay.submit (queue usage, sid, early delivery)": ("Relay.submit ",),
    "SQLite sid reservation (reserve_sid)": (".reserve_sid ",),
    "write batch: Relay._write_batch": ("Relay._write_batch ",),
    "of which the store's write_batch": (".write_batch ",),
    "build and encode frames (encode_str)": ("encode_str ",),
    "websockets send (framing + transport.write)": ("RelaySocket.write_frames ",),
    "latency histograms (Timings.observe)": ("Timings.observe ",),
}


def _spy(pid: int, seconds: float, out: Path, fmt: str = "raw") -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            fmt,
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise(collapsed: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or "bcrypt" in stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples of the relay's threads (bcrypt pool left out)", "", "groups:"]
    for label, needles in GROUPS.items():
        hits = sum(
            c
            for line_stack, c in _stacks(collapsed)
            if any(n in f for f in line_stack for n in needles)
        )
        lines.append(f"  {100 * hits / total:5.1f} %  {label}")
    lines += ["", "inclusive (top):"]
    for frame, count in inclusive.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {frame}")
    lines += ["", "self (top):"]
    for frame, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f} %  {frame}")
    return "\n".join(lines)


def _stacks(collapsed: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and "bcrypt" not in stack:
            out.append((stack.split(";"), int(count_text)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--flood", action="store_true")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--peers", choices=("fixed", "random", "group"), default="fixed")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--svg", type=Path, help="write py-spy's flame graph (SVG) here instead of the tables"
    )
    args = parser.parse_args()
    names = users("p", args.clients)
    with scratch("profile") as tmp, Server("relay", tmp / "relay", env=UNLIMITED) as relay:
        run_loadgen(
            {
                "mode": "register",
                "port": relay.port,
                "server_pid": relay.pid,
                "users": names,
                "password": PASSWORD,
            }
        )
        out = args.out or tmp / "relay.collapsed"
        warmup = 2.0
        spec = {
            "mode": "chat",
            "port": relay.port,
            "server_pid": relay.pid,
            "users": names,
            "password": PASSWORD,
            "body_bytes": BODY_BYTES,
            "warmup": warmup,
            "duration": args.seconds,
            "flood": args.flood,
            "rate": args.rate,
            "window": 4,
            "peers": args.peers,
        }
        spy: list[subprocess.Popen[bytes]] = []
        timer = threading.Timer(
            warmup + 1.0,
            lambda: spy.append(
                _spy(
                    relay.pid,
                    args.seconds - 1,
                    args.svg or out,
                    "flamegraph" if args.svg else "raw",
                )
            ),
        )
        timer.start()
        result = run_loadgen(spec)
        timer.join()
        spy[0].wait(60)
        window = result["windows"][0]
        print(
            f"{window['throughput']:.0f} msg/s, {window['cpu_us_per_msg']:.1f} µs CPU/msg, "
            f"server at {100 * window['server_cpu_util']:.0f} %, p99 {window['p99_ms']:.2f} ms"
        )
        if not args.svg:
            print(summarise(out))


if __name__ == "__main__":
    main()
