"""The vector loader fails under CI when a file is missing, so CI cannot pass by skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crypto.mls import vectors


def test_missing_vector_file_fails_under_ci_and_skips_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "MLS_VECTORS", tmp_path)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="not found"):
        vectors.load("tree-math.json")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        vectors.load("tree-math.json")


def test_a_suite_missing_from_a_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.json").write_text('[{"cipher_suite": 1}]')
    monkeypatch.setattr(vectors, "MLS_VECTORS", tmp_path)
    assert vectors.by_suite("x.json", 1) == [{"cipher_suite": 1}]
    with pytest.raises(AssertionError, match="no case for cipher suite 2"):
        vectors.by_suite("x.json", 2)
