"""The load generator: many raw-protocol clients in one process, apart from the server.

Reads a JSON spec on stdin and writes a JSON result on stdout (progress on
stderr). Modes:

- `register`: creates the accounts `users` with `password`.
- `chat`: logs `users` in, then client i sends to client i+1 (`peers`
  "fixed", one-to-one) or each message to a peer drawn at random (`peers`
  "random": every client writes to many contacts) or to its group (`peers`
  "group": consecutive clients form groups of `group_size`, made with a
  `group_commit` at epoch 0 and one adding the others at epoch 1; every
  message is a `group_send`, a copy to each other member), either as fast as
  the server accepts (`flood`, `window` unaccepted sends per client) or at
  `rate` messages a second in total (delivered copies, for groups).
  Recipients answer every `deliver` (and `group_deliver`) with one `ack`
  (rid 0), as `client/relay_client.py` does. With `plain` (the plain
  forwarder, bench/plain.py) the server forwards the `send` frame itself:
  its arrival is the delivery and the sender's `accepted`, and nothing is
  acknowledged; a group message goes to it as one `send` naming every other
  member in `to`, which it writes to each. After `warmup` seconds it measures for `duration`
  (and, with `storm`, alternates quiet periods with bursts of concurrent
  logins), then stops sending and waits for what is in flight.
- `idle`: logs `users` in, reports, waits for a line on stdin, closes.

Latency is from the write of `send` to the arrival of its `deliver`, both
in this process, so one clock serves both ends. Server CPU comes from
/proc/<server_pid> at the window boundaries.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bench.common import percentile, run_queue_seconds, tree_cpu_seconds
from bench.wsclient import WsClient, connect


class _Env(msgspec.Struct):
    sid: int
    eid: str


class _Frame(msgspec.Struct):
    type: str
    rid: int | None = None
    envelopes: list[_Env] | None = None
    eid: str | None = None
    """Set on a `send` frame that the plain forwarder passed on."""
    code: str | None = None
    message: str | None = None


_decode = msgspec.json.Decoder(_Frame).decode


def _raise_fd_limit(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, count + 256))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@dataclass
class Window:
    label: str
    start: float
    end: float = 0.0
    server_cpu: float = 0.0
    server_wait: float = 0.0
    own_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Load:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        # A cluster run spreads clients over several nodes (`ports`) and sums their CPU.
        self.ports = [int(p) for p in spec.get("ports") or [spec["port"]]]
        self.server_pids = [int(p) for p in spec.get("server_pids") or [spec["server_pid"]]]
        self.body = base64.b64encode(os.urandom(int(spec.get("body_bytes", 256))))
        self.run = secrets.token_hex(3)
        self.counter = 0
        self.sent_at: dict[str, float] = {}
        self.samples: list[tuple[float, float]] = []
        """(sent at, latency) of every delivered message."""
        self.delivered_at: list[float] = []
        self.accepted_at: list[float] = []
        """When each `accepted` arrived (the plain forwarder: each passed-on `send`). A relay
        that falls behind accepts more than it delivers within a window, and the CPU spent
        on the difference shows up per delivered message."""
        self.errors: dict[str, int] = {}
        self.clients: list[WsClient] = []
        self.targets: dict[WsClient, bytes] = {}
        self.random_peers = spec.get("peers", "fixed") == "random"
        self.group_size = int(spec.get("group_size", 10)) if spec.get("peers") == "group" else 0
        self.groups: dict[WsClient, tuple[bytes, bytes]] = {}
        """Group mode: a client's group id (base64) and the other members (a JSON list)."""
        self.copies_left: dict[str, int] = {}
        """Group mode: copies of a message still to arrive."""
        self.names: list[bytes] = []
        self.index: dict[WsClient, int] = {}
        self.plain = bool(spec.get("plain"))
        self.sender_of: dict[str, WsClient] = {}
        """Plain forwarder: who sent an eid, whose window its arrival frees."""
        self.inflight: dict[WsClient, int] = {}
        self.flooding = False
        self.waiters: dict[tuple[WsClient, int], asyncio.Future[_Frame]] = {}
        self.rid = 0

    # --- frames in -----------------------------------------------------------------

    def on_message(self, client: WsClient, data: bytes) -> None:
        frame = _decode(data)
        kind = frame.type
        if kind == "deliver" or kind == "group_deliver":
            now = time.perf_counter()
            sids = []
            for env in frame.envelopes or ():
                sids.append(env.sid)
                self.arrived(env.eid, now)
            client.send_text(b'{"type":"ack","rid":0,"sids":%s}' % _ints(sids))
        elif kind == "accepted":
            self.accepted_at.append(time.perf_counter())
            self.inflight[client] -= 1
            if self.flooding:
                self.send(client)
        elif kind == "send" and frame.eid is not None:
            now = time.perf_counter()
            self.arrived(frame.eid, now)
            sender = self.sender_of.pop(frame.eid, None)
            if sender is not None:
                self.accepted_at.append(now)
                self.inflight[sender] -= 1
                if self.flooding:
                    self.send(sender)
        else:
            if kind == "error":
                key = f"{frame.code}: {frame.message}"
                self.errors[key] = self.errors.get(key, 0) + 1
                if client in self.inflight and frame.rid and frame.rid >= 1 << 40:
                    self.inflight[client] -= 1
            waiter = self.waiters.pop((client, frame.rid or -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(frame)

    def arrived(self, eid: str, now: float) -> None:
        """One copy of `eid` arrived: a latency sample; the message is done with its last."""
        sent = self.sent_at.get(eid)
        if sent is None:
            return  # not ours (a group's Welcome), or a copy delivered again
        self.samples.append((sent, now - sent))
        self.delivered_at.append(now)
        left = self.copies_left.pop(eid, 1) - 1
        if left:
            self.copies_left[eid] = left
        else:
            del self.sent_at[eid]

    # --- frames out ----------------------------------------------------------------

    def send(self, client: WsClient) -> None:
        self.counter += 1
        eid = f"{self.run}{self.counter}"
        self.inflight[client] += 1
        self.sent_at[eid] = time.perf_counter()
        if self.plain:
            self.sender_of[eid] = client
        if self.group_size:
            self.copies_left[eid] = self.group_size - 1
            group, others = self.groups[client]
            rid = (1 << 40) + self.counter
            if self.plain:
                frame = b'{"type":"send","rid":%d,"to":%s,"eid":"%s","body":"%s"}' % (
                    rid,
                    others,
                    eid.encode(),
                    self.body,
                )
            else:
                frame = (
                    b'{"type":"group_send","rid":%d,"group":"%s","epoch":2,"eid":"%s","body":"%s"}'
                    % (rid, group, eid.encode(), self.body)
                )
            client.send_text(frame)
            return
        if self.random_peers:
            # Anyone but itself: a draw over the others, shifted past its own index.
            pick = random.randrange(len(self.names) - 1)
            target = self.names[pick + (pick >= self.index[client])]
        else:
            target = self.targets[client]
        client.send_text(
            b'{"type":"send","rid":%d,"to":"%s","eid":"%s","body":"%s"}'
            % ((1 << 40) + self.counter, target, eid.encode(), self.body)
        )

    async def call(self, client: WsClient, frame: dict[str, Any]) -> _Frame:
        self.rid += 1
        rid = self.rid
        future: asyncio.Future[_Frame] = asyncio.get_running_loop().create_future()
        self.waiters[(client, rid)] = future
        client.send_text(json.dumps({**frame, "rid": rid}).encode())
        await asyncio.wait(
            [future, client.closed], timeout=120, return_when=asyncio.FIRST_COMPLETED
        )
        if not future.done():
            future.cancel()
            why = "closed the connection" if client.closed.done() else "did not answer in 120 s"
            raise RuntimeError(f"{frame['type']}: the server {why}")
        return future.result()

    async def open_session(self, user: str, password: str, index: int = 0) -> WsClient:
        client = await connect(self.ports[index % len(self.ports)], self.on_message)
        answer = await self.call(client, {"type": "login", "username": user, "password": password})
        if answer.type != "session":
            raise RuntimeError(f"login of {user} failed: {answer}")
        return client

    async def log_in_all(self, users: list[str], password: str, parallel: int = 64) -> float:
        gate = asyncio.Semaphore(parallel)
        start = time.perf_counter()

        async def one(index: int, user: str) -> WsClient:
            async with gate:
                return await self.open_session(user, password, index)

        self.clients = list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))
        self.names = [u.encode() for u in users]
        for i, client in enumerate(self.clients):
            self.targets[client] = users[(i + 1) % len(users)].encode()
            self.index[client] = i
            self.inflight[client] = 0
        return time.perf_counter() - start

    async def form_groups(self) -> None:
        """Consecutive clients, `group_size` at a time, each group made by its first member
        (the plain forwarder keeps no groups: the members are named in every message)."""
        size = self.group_size
        if len(self.clients) % size:
            raise RuntimeError(f"{len(self.clients)} clients do not make groups of {size}")
        founders = []
        for start in range(0, len(self.clients), size):
            members = self.clients[start : start + size]
            names = [name.decode() for name in self.names[start : start + size]]
            group = base64.b64encode(bytes.fromhex(self.run) + start.to_bytes(13, "big"))
            for member, name in zip(members, names, strict=True):
                others = [other for other in names if other != name]
                self.groups[member] = (group, json.dumps(others).encode())
            founders.append((members[0], group.decode(), names[1:]))
        if self.plain:
            return

        gate = asyncio.Semaphore(16)

        async def make(founder: WsClient, group: str, others: list[str]) -> None:
            async with gate:
                for epoch, changes in (
                    (0, {}),
                    (1, {"added": others, "welcome": self.body.decode()}),
                ):
                    answer = await self.call(
                        founder,
                        {
                            "type": "group_commit",
                            "group": group,
                            "epoch": epoch,
                            "eid": f"{self.run}c{epoch}",
                            "commit": self.body.decode(),
                            **changes,
                        },
                    )
                    if answer.type != "group_accepted":
                        raise RuntimeError(f"group_commit at epoch {epoch}: {answer}")

        await asyncio.gather(*(make(*founder) for founder in founders))

    # --- windows -------------------------------------------------------------------

    def server_cpu(self) -> float:
        return sum(tree_cpu_seconds(pid) for pid in self.server_pids)

    def server_wait(self) -> float:
        return sum(run_queue_seconds(pid) for pid in self.server_pids)

    def open_window(self, label: str) -> Window:
        return Window(
            label,
            time.perf_counter(),
            server_cpu=self.server_cpu(),
            server_wait=self.server_wait(),
            own_cpu=time.process_time(),
        )

    def close_window(self, window: Window) -> None:
        window.end = time.perf_counter()
        window.server_cpu = self.server_cpu() - window.server_cpu
        window.server_wait = self.server_wait() - window.server_wait
        window.own_cpu = time.process_time() - window.own_cpu

    def summarise(self, window: Window) -> dict[str, Any]:
        span = window.end - window.start
        latencies = [lat for sent, lat in self.samples if window.start <= sent < window.end]
        delivered = sum(1 for t in self.delivered_at if window.start <= t < window.end)
        accepted = sum(1 for t in self.accepted_at if window.start <= t < window.end)
        return {
            "label": window.label,
            "seconds": round(span, 3),
            "delivered": delivered,
            "throughput": delivered / span,
            "server_cpu_s": window.server_cpu,
            "server_cpu_util": window.server_cpu / span,
            "cpu_us_per_msg": 1e6 * window.server_cpu / delivered if delivered else None,
            "accepted": accepted,
            "server_wait_share": window.server_wait / (span * len(self.server_pids)),
            "loadgen_cpu_util": window.own_cpu / span,
            "latency_samples": len(latencies),
            "p50_ms": 1000 * percentile(latencies, 50) if latencies else None,
            "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
            "max_ms": 1000 * max(latencies) if latencies else None,
            **window.extra,
        }


def _ints(values: list[int]) -> bytes:
    return ("[" + ",".join(map(str, values)) + "]").encode()


async def pace(load: Load, rate: float, stop: asyncio.Event, lag: list[float]) -> None:
    """Sends `rate` messages a second in total, round robin over the clients."""
    clients, count = load.clients, len(load.clients)
    start, sent = time.perf_counter(), 0
    while not stop.is_set():
        now = time.perf_counter()
        due = int((now - start) * rate)
        if due - sent > 1:
            lag.append(now - (start + (sent + 1) / rate))
        while sent < due:
            load.send(clients[sent % count])
            sent += 1
        await asyncio.sleep(0.0005)


async def storm(load: Load, users: list[str], password: str) -> dict[str, Any]:
    """Concurrent logins, each on its own new connection, closed once logged in."""
    start = time.perf_counter()
    clients = await asyncio.gather(*(load.open_session(u, password) for u in users))
    took = time.perf_counter() - start
    for client in clients:
        client.close()
    return {"logins": len(clients), "storm_s": round(took, 3)}


async def chat(spec: dict[str, Any]) -> dict[str, Any]:
    load = Load(spec)
    users: list[str] = spec["users"]
    password: str = spec["password"]
    _raise_fd_limit(len(users) + 64)
    login_s = await load.log_in_all(users, password)
    print(f"{len(users)} clients logged in in {login_s:.1f} s", file=sys.stderr)
    rate = float(spec.get("rate", 0))
    if load.group_size:
        await load.form_groups()
        await asyncio.sleep(0.5)  # the Welcomes are delivered and acknowledged
        rate /= load.group_size - 1  # `rate` counts copies
    stop = asyncio.Event()
    lag: list[float] = []
    pacer = None
    # From the first send until what was sent has arrived: a relay that falls further
    # behind than a window is long spends the window's CPU on what it delivers after it.
    whole = load.open_window("whole run")
    if spec.get("flood"):
        load.flooding = True
        for client in load.clients:
            for _ in range(int(spec.get("window", 4))):
                load.send(client)
    else:
        pacer = asyncio.create_task(pace(load, rate, stop, lag))
    await asyncio.sleep(float(spec.get("warmup", 1.0)))
    windows: list[Window] = []
    storm_spec = spec.get("storm")
    if storm_spec:
        for cycle in range(int(storm_spec["cycles"])):
            quiet = load.open_window(f"quiet{cycle}")
            await asyncio.sleep(float(spec["duration"]))
            load.close_window(quiet)
            loud = load.open_window(f"storm{cycle}")
            loud.extra = await storm(load, storm_spec["users"], storm_spec["password"])
            load.close_window(loud)
            windows += [quiet, loud]
    else:
        window = load.open_window("measure")
        await asyncio.sleep(float(spec["duration"]))
        load.close_window(window)
        windows.append(window)
    load.flooding = False
    stop.set()
    if pacer is not None:
        await pacer
    deadline = time.perf_counter() + 10
    while load.sent_at and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    load.close_window(whole)
    for client in load.clients:
        client.close()
    await asyncio.sleep(0.2)
    return {
        "clients": len(users),
        "login_s": round(login_s, 2),
        "windows": [load.summarise(w) for w in windows],
        "whole": load.summarise(whole),
        "undelivered": len(load.sent_at),
        "errors": load.errors,
        "pacer_lag_p99_ms": 1000 * percentile(lag, 99) if lag else 0.0,
    }


async def register(spec: dict[str, Any]) -> dict[str, Any]:
    load = Load(spec)
    gate = asyncio.Semaphore(int(spec.get("parallel", 16)))
    start = time.perf_counter()

    async def one(user: str) -> None:
        async with gate:
            client = await connect(load.ports[0], load.on_message)
            answer = await load.call(
                client,
                {
                    "type": "register",
                    "username": user,
                    "password": spec["password"],
                    "recovery_token": base64.b64encode(os.urandom(32)).decode(),
                },
            )
            client.close()
            if answer.type != "registered" and answer.code != "conflict":
                raise RuntimeError(f"register {user}: {answer}")

    await asyncio.gather(*(one(u) for u in spec["users"]))
    return {"registered": len(spec["users"]), "seconds": time.perf_counter() - start}


async def idle(spec: dict[str, Any]) -> dict[str, Any]:
    load = Load(spec)
    users: list[str] = spec["users"]
    _raise_fd_limit(len(users) + 64)
    login_s = await load.log_in_all(users, spec["password"], parallel=int(spec.get("parallel", 64)))
    print(json.dumps({"ready": len(load.clients), "login_s": round(login_s, 2)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for client in load.clients:
        client.close()
    await asyncio.sleep(0.2)
    return {"closed": len(load.clients)}


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    mode = {"chat": chat, "register": register, "idle": idle}[spec["mode"]]
    result = asyncio.run(mode(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
