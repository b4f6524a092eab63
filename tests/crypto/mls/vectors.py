"""Loads the MLS working group's test vectors from ../shared/testvectors/mls.

The files are read at test time, never copied into the repository. A missing file
skips the test on a developer machine but fails it when CI is set, so a broken
checkout cannot pass by running nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
MLS_VECTORS = REPO.parent / "shared" / "testvectors" / "mls"

SUITES = range(1, 8)


def require(path: Path) -> Path:
    """`path`, or a skip (a failure under CI) naming what is missing."""
    if not path.is_file():
        reason = f"{path} not found (expected ../shared beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def load(name: str) -> Any:
    """The parsed JSON of one vector file."""
    return json.loads(require(MLS_VECTORS / name).read_text())


def by_suite(name: str, suite: int) -> list[dict[str, Any]]:
    """Every case of a per-suite file for `suite`; a file with none for it is an error."""
    cases = [case for case in load(name) if case["cipher_suite"] == suite]
    assert cases, f"{name} holds no case for cipher suite {suite}"
    return cases
