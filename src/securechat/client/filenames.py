"""Safe names for received files: the sender chooses the name, so it is untrusted."""

from __future__ import annotations

import re
import unicodedata

_WINDOWS_DEVICES = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
MAX_NAME_CHARS = 200


def sanitise_filename(name: str) -> str:
    """A plain file name: no directories, no hidden or device names, no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cf", "Cc"})
    if not name:
        return "download"
    stem, dot, _ = name.partition(".")
    if stem.lower() in _WINDOWS_DEVICES:
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        keep_ext = ("." + name.rsplit(".", 1)[1])[:16] if dot else ""
        name = name[: MAX_NAME_CHARS - len(keep_ext)] + keep_ext
    return name


def numbered(name: str, n: int) -> str:
    """`report.pdf` -> `report (2).pdf`: the name to try when `name` is taken."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"
