"""The password rules, shared by the relay (which enforces them) and the clients.

The sign-in screen shows the same rules before anything is typed and ticks
them off as the password is typed, so a person learns them up front instead
of from a refusal. The relay still decides: a client is free to skip them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from securechat.protocol.limits import MIN_PASSWORD_CHARS

MIN_DISTINCT_CHARS = 4


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("securechat.protocol").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as a person reads it, and whether `password` meets it."""

    text: str
    met: bool


def password_rules(password: str, username: str) -> list[Rule]:
    """Every rule with its state, in the order they are shown."""
    lowered = password.lower()
    return [
        Rule(f"at least {MIN_PASSWORD_CHARS} characters", len(password) >= MIN_PASSWORD_CHARS),
        Rule(
            "not containing your username",
            bool(password) and not (username and username.lower() in lowered),
        ),
        Rule(
            "not a common password, nor a few characters repeated",
            bool(password)
            and lowered not in _common_passwords()
            and len(set(password)) >= MIN_DISTINCT_CHARS,
        ),
    ]


def password_problem(password: str, username: str) -> str | None:
    """Why `password` is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"choose a password of at least {MIN_PASSWORD_CHARS} characters"
    lowered = password.lower()
    if lowered in _common_passwords():
        return "that password is on the list of commonly used passwords; choose another"
    if len(set(password)) < MIN_DISTINCT_CHARS:
        return "that password repeats too few characters; choose another"
    if username and username.lower() in lowered:
        return "the password must not contain the username"
    return None
