"""A seeded generator and mutator of client frames, for fuzzing a live relay.

Every frame type starts valid (see docs/protocol.md) and is then broken one
way or several: fields dropped, retyped, oversized or added, numbers out of
any range, unicode edge cases, truncated or deeply nested JSON, random bytes,
binary frames. A seed reproduces a run exactly.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from typing import Any

Frame = str | bytes
"""What goes on the wire: text frames as str, binary frames as bytes."""

UNICODE_EDGES = [
    "\u0000",
    "\\ud800",  # a lone surrogate, written as the JSON escape (valid UTF-8 on the wire)
    "\\udfff\\ud800",
    "\ufeff",
    "\u202e",  # right-to-left override
    "\u2028",
    "\u0301" * 50,  # combining marks
    "\U0001f600",
    "\uffff",
    "\U0010ffff",
    "аlice",  # Cyrillic a
    "ALICE",
    "a\u200bb",  # zero-width space
    "\x7f",
    "İ",  # lower-cases to two code points
]

HUGE_NUMBERS = [
    "-1",
    "0",
    "-0",
    "9007199254740991",
    "9007199254740992",
    "18446744073709551616",
    "-9223372036854775809",
    "1e308",
    "1e400",
    "-1e400",
    "1.5",
    "0.000000001",
    "1" * 400,
    "NaN",
    "Infinity",
    "true",
]


class FrameFactory:
    """Frames for one fuzzing run; `users` are names that exist on the relay."""

    def __init__(
        self, seed: int, users: list[str], max_depth: int = 5000, fatal: bool = True
    ) -> None:
        self.rng = random.Random(seed)
        self.fatal = fatal  # whether to make frames that end the connection (over 1 MiB)
        # Past about 1,000 levels the JSON decoder recurses too deep; the relay must
        # answer bad_request (test_deeply_nested_json_is_a_bad_request).
        self.max_depth = max_depth
        self.users = users
        self.rid = 0
        self._templates: dict[str, Callable[[], dict[str, Any]]] = {
            "register": lambda: {
                "username": self._name(),
                "password": self._text(12, 40),
                "recovery_token": self._b64(32),
            },
            "login": lambda: {"username": self._user(), "password": self._text(10, 30)},
            "resume": lambda: {"token": self._text(10, 60)},
            "logout": lambda: {},
            "reset_password": lambda: {
                "username": self._user(),
                "token": self.rng.choice(
                    ["op-" + self._text(10, 40), self.rng.randbytes(32).hex()]
                ),
                "new_password": self._text(12, 30),
                "new_recovery_token": self._b64(32),
            },
            "delete_account": lambda: {"password": self._text(10, 30)},
            "send": lambda: {
                "to": self._user(),
                "eid": self._eid(),
                "body": self._b64(self.rng.randint(1, 200)),
            },
            "ack": lambda: {"sids": [self.rng.randint(1, 10**6) for _ in range(self._n(5))]},
            "watch": lambda: {"users": [self._user() for _ in range(self._n(4))]},
            "delete_conversation": lambda: {"peer": self._user()},
            "publish_keys": lambda: {
                "identity": self._b64(32),
                "signed_prekey": self._b64(64),
                "kem_prekey": self._b64(64),
                "one_time_prekeys": [self._b64(32) for _ in range(self._n(5))],
                "replace_one_time": self.rng.random() < 0.5,
            },
            "fetch_bundle": lambda: {"user": self._user()},
            "file_begin": lambda: {
                "size": self.rng.randint(0, 200_000),
                "recipients": [self._user() for _ in range(1 + self._n(2))],
            },
            "file_chunk": lambda: {
                "file_id": self._file_id(),
                "index": self.rng.randint(0, 4),
                "data": self._b64(self.rng.randint(0, 300)),
            },
            "file_status": lambda: {"file_id": self._file_id()},
            "file_get": lambda: {"file_id": self._file_id(), "index": self.rng.randint(0, 3)},
            "file_done": lambda: {"file_id": self._file_id()},
            "scan_prefixes": lambda: {
                "prefixes": [self._b64(self.rng.randint(4, 32)) for _ in range(1 + self._n(3))]
            },
            "scan_url": lambda: {
                "url": self.rng.choice(["https://example.test/", "http://", "x" * 50]),
                "submit": False,
            },
        }
        self._structural = [self._drop_field, self._retype_field, self._extra_field]
        self._mutators: list[Callable[[dict[str, Any]], Frame]] = [
            self._drop_field,
            self._retype_field,
            self._oversize_field,
            self._extra_field,
            self._huge_number,
            self._unicode_edge,
            self._truncated,
            self._deep_nesting,
            self._random_bytes,
            self._binary,
            self._duplicate_keys,
            self._wrong_tag,
            self._not_an_object,
        ]

    @property
    def types(self) -> list[str]:
        return list(self._templates)

    # --- values ----------------------------------------------------------------------

    def _n(self, most: int) -> int:
        return self.rng.randint(0, most)

    def _text(self, low: int, high: int) -> str:
        return "".join(
            self.rng.choices(string.ascii_letters + string.digits, k=self.rng.randint(low, high))
        )

    def _name(self) -> str:
        return "fz" + "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789_.-", k=8))

    def _user(self) -> str:
        return self.rng.choice(self.users) if self.rng.random() < 0.8 else self._name()

    def _eid(self) -> str:
        return "".join(
            self.rng.choices(string.ascii_letters + string.digits + "_-", k=self.rng.randint(1, 64))
        )

    def _b64(self, n: int) -> str:
        return base64.b64encode(self.rng.randbytes(n)).decode()

    def _file_id(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(24)).decode()

    def _random_json(self, depth: int = 0) -> Any:
        kind = self.rng.randrange(8 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.random() < 0.5
        if kind == 2:
            return self.rng.randint(-(2**70), 2**70)
        if kind == 3:
            return self.rng.uniform(-1e300, 1e300)
        if kind == 4:
            return self._text(0, 20)
        if kind == 5:
            return self.rng.choice(UNICODE_EDGES)
        if kind == 6:
            return [self._random_json(depth + 1) for _ in range(self._n(4))]
        return {self._text(1, 8): self._random_json(depth + 1) for _ in range(self._n(4))}

    # --- frames ----------------------------------------------------------------------

    def valid(self, type_: str | None = None) -> dict[str, Any]:
        type_ = type_ or self.rng.choice(self.types)
        self.rid += 1
        return {"type": type_, "rid": self.rid, **self._templates[type_]()}

    def frame(self, authenticated: bool) -> Frame:
        """One frame: valid one time in ten, otherwise broken one to three ways."""
        frame = self.valid()
        if authenticated and frame["type"] == "logout":
            # A real logout revokes the session this connection resumed with.
            frame["why"] = "fuzz"
        if self.rng.random() < 0.1:
            return json.dumps(frame)
        # Up to two breakages of the structure, then one of the wire form (which may
        # be just the JSON of the broken structure).
        for _ in range(self.rng.randint(0, 2)):
            self.rng.choice(self._structural)(frame)
        return self.rng.choice(self._mutators)(frame)

    # --- mutations (each returns the wire form) ---------------------------------------

    def _dump(self, frame: dict[str, Any]) -> str:
        return json.dumps(frame)

    def _drop_field(self, frame: dict[str, Any]) -> Frame:
        if frame:
            frame.pop(self.rng.choice(list(frame)))
        return self._dump(frame)

    def _retype_field(self, frame: dict[str, Any]) -> Frame:
        if frame:
            frame[self.rng.choice(list(frame))] = self._random_json()
        return self._dump(frame)

    def _oversize_field(self, frame: dict[str, Any]) -> Frame:
        key = self.rng.choice(list(frame) or ["type"])
        roll = self.rng.random()
        if roll < 0.002 and self.fatal:
            size = self.rng.randint(1 << 20, 3 << 20)  # over the 1 MiB frame limit
        elif roll < 0.01:
            size = self.rng.randint(8_000, 700_000)  # around the body and key limits
        else:
            size = self.rng.randint(65, 5_000)  # around the name and id limits
        if isinstance(frame.get(key), list):
            frame[key] = [frame[key][0] if frame[key] else "a"] * min(size, 5_000)
        else:
            frame[key] = self.rng.choice(["a", "A/+=", "é"]) * (size // 4)
        return self._dump(frame)

    def _extra_field(self, frame: dict[str, Any]) -> Frame:
        key = self.rng.choice(
            ["sender", "admin", "__proto__", "", "ŧÿþé", "rid ", self._text(1, 20)]
        )
        frame[key] = self._random_json()
        return self._dump(frame)

    def _huge_number(self, frame: dict[str, Any]) -> Frame:
        key = self.rng.choice(["rid", "size", "index", "sids", *list(frame)])
        marker = "\u0001HUGE\u0001"
        frame[key] = [marker] if key == "sids" else marker
        return self._dump(frame).replace(json.dumps(marker), self.rng.choice(HUGE_NUMBERS))

    def _unicode_edge(self, frame: dict[str, Any]) -> Frame:
        strings = [k for k, v in frame.items() if isinstance(v, str)] or ["username"]
        key = self.rng.choice(strings)
        edge = self.rng.choice(UNICODE_EDGES)
        value = str(frame.get(key, ""))
        cut = self.rng.randint(0, len(value))
        frame[key] = value[:cut] + "\u0001EDGE\u0001" + value[cut:]
        # json.dumps always escapes control characters, so the marker is found as written.
        text = json.dumps(frame, ensure_ascii=self.rng.random() < 0.5)
        return text.replace("\\u0001EDGE\\u0001", edge)

    def _truncated(self, frame: dict[str, Any]) -> Frame:
        text = self._dump(frame)
        return text[: self.rng.randint(0, max(0, len(text) - 1))]

    def _deep_nesting(self, frame: dict[str, Any]) -> Frame:
        depth = self.rng.choice([2, 64, 500, self.max_depth])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        key = self.rng.choice(list(frame) or ["x"])
        frame[key] = "\u0001DEEP\u0001"
        nested = opener * depth + "1" + closer * depth
        return self._dump(frame).replace(json.dumps("\u0001DEEP\u0001"), nested)

    def _random_bytes(self, frame: dict[str, Any]) -> Frame:
        raw = self.rng.randbytes(self.rng.randint(0, 2_000))
        if self.rng.random() < 0.5:
            return raw
        return raw.decode("latin-1")

    def _binary(self, frame: dict[str, Any]) -> Frame:
        text = self._dump(frame)
        return self.rng.choice(
            [
                text.encode(),
                b"\xef\xbb\xbf" + text.encode(),
                text.encode("utf-16"),
                text.encode()[:-1] + b"\xff",
                text.encode().replace(b'"', b'"\xc0\x80', 1),  # overlong NUL
            ]
        )

    def _duplicate_keys(self, frame: dict[str, Any]) -> Frame:
        text = self._dump(frame)
        dup = self.rng.choice(['"type": "send"', '"rid": -1', '"type": "login"', '"rid": 1'])
        return "{" + dup + ", " + text[1:] if text.startswith("{") else text

    def _wrong_tag(self, frame: dict[str, Any]) -> Frame:
        frame["type"] = self.rng.choice(
            [
                "Send",
                "send ",
                "SEND",
                "",
                None,
                7,
                ["send"],
                "deliver",
                "error",
                "accepted",
                self._text(1, 12),
            ]
        )
        return self._dump(frame)

    def _not_an_object(self, frame: dict[str, Any]) -> Frame:
        return self.rng.choice(
            [
                "[]",
                "null",
                "0",
                '""',
                "true",
                "[" + self._dump(frame) + "]",
                '"' + "x" * 100 + '"',
                " ",
                "",
            ]
        )
