"""What every benchmark shares: summaries, /proc readings, and the processes under test.

Each benchmark compares the relay with a baseline measured in the same run on
the same machine, so the ratio means something on any machine even when the
absolute figures do not. Rows are plain dicts (see `row`) so that `bench_crypto`
and the rest land in one table.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if os.environ.get("BENCH_SRC"):
    # Benchmark another checkout's src/ (e.g. a candidate change to the relay): the
    # subprocesses inherit the variable and put it first on their path too.
    sys.path.insert(0, os.environ["BENCH_SRC"])
PASSWORD = "correct horse battery"
"""Every benchmark account uses it: the relay's password policy accepts it."""

Row = dict[str, Any]


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# --- summaries -----------------------------------------------------------------------


def median_spread(values: Sequence[float]) -> tuple[float, float]:
    """Median and spread ((max - min) / median, in %) of repeated runs."""
    med = statistics.median(values)
    spread = 100 * (max(values) - min(values)) / med if med else 0.0
    return med, spread


def timed_ms(op: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock milliseconds of `op`, once per repeat."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        op()
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(
    bench: str,
    name: str,
    values: Sequence[float],
    unit: str,
    baselines: Sequence[float] | None = None,
    *,
    target: str = "",
    met: bool | None = None,
    note: str = "",
    digits: int = 3,
) -> Row:
    """One line of the results table: a figure over repeats, its baseline and their ratio.

    The ratio is the median of per-repeat ratios (relay repeat i over baseline
    repeat i), which cancels drift across the run better than a ratio of medians.
    """
    value, spread = median_spread(values)
    out: Row = {
        "bench": bench,
        "name": name,
        "value": round(value, digits),
        "unit": unit,
        "spread_pct": round(spread, 1),
        "repeats": len(values),
        "samples": [round(v, digits) for v in values],
    }
    if baselines:
        base, base_spread = median_spread(baselines)
        ratios = [v / b for v, b in zip(values, baselines, strict=False) if b]
        out["baseline"] = round(base, digits)
        out["baseline_spread_pct"] = round(base_spread, 1)
        out["ratio"] = float(f"{statistics.median(ratios):.3g}") if ratios else None
    if target:
        out["target"] = target
    if met is not None:
        out["met"] = met
    if note:
        out["note"] = note
    return out


# --- /proc ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) of a process, in nanosecond resolution."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[0]) / 1e9
    except (FileNotFoundError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of every thread of the process: schedstat of the leader counts only itself."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0]) / 1e9
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return total


def run_queue_seconds(pid: int) -> float:
    """Time the process's main thread (the relay's event loop) was runnable but not running:
    over a window, a share near 1 means the machine starved it, whatever its own cost."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[1]) / 1e9
    except (FileNotFoundError, ValueError, IndexError):
        return 0.0


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux: `5` to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- processes -----------------------------------------------------------------------


_PORTS_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before by this process. Servers built one
    after the other (plain, bare, relay) once got the same port: the relay failed to
    bind, and its clients measured bare.py, which was listening there."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _PORTS_HANDED_OUT:
            _PORTS_HANDED_OUT.add(port)
            return port


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} in time")


class Server:
    """The relay (`securechat.server.cli run`), the bare or the plain forwarder, as a subprocess."""

    def __init__(
        self,
        kind: str,
        data_dir: Path,
        env: dict[str, str] | None = None,
        src: Path | None = None,
    ) -> None:
        """`src`: run the relay from that checkout's src/ (bench/ab.py) instead of this one."""
        assert kind in {"relay", "bare", "plain"}
        self.kind = kind
        self.src = src
        self.data_dir = data_dir
        self.port = free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SECURECHAT_BCRYPT_COST": "4",
            "SECURECHAT_LOG_LEVEL": "WARNING",
            "SECURECHAT_METRICS_LISTEN": "127.0.0.1:0",
            **self.extra_env,
        }
        src = str(self.src) if self.src else os.environ.get("BENCH_SRC")
        if src:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
        if self.kind == "relay":
            args = ["-m", "securechat.server.cli", "run", "--data-dir", str(self.data_dir)]
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        else:
            args = [
                "-m",
                f"bench.{self.kind}",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
            ]
        log_path = self.data_dir / f"{self.kind}.log"
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        _wait_listening(self.proc, self.port, log_path)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_loadgen(spec: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Runs `bench.loadgen` in its own process (its own core); returns its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    for line in done.stderr.decode(errors="replace").splitlines():
        log("loadgen: " + line)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory on disk (not tmpfs-specific), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"securechat-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def users(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]
