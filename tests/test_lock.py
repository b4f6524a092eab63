"""The lock files agree with pyproject.toml, so `make test` installs what pyproject promises.

A dependency added or raised in pyproject.toml without `make lock` would otherwise be
tested against the old release, or not installed at all until `pip check` trips.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tools.oldest_constraints import minimums

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")


def _locked(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    lines = (REPO / "requirements" / name).read_text().splitlines()
    for number, line in enumerate(lines):
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
            assert "--hash=sha256:" in lines[number + 1], f"{name}: {line} has no hash"
    return pins


def _requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        found += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return [req for req in found if canonicalize_name(req.name) != project["name"]]


@pytest.mark.parametrize(("lock", "extras"), [("run.lock", ()), ("dev.lock", ("dev", "cluster"))])
def test_every_direct_dependency_is_locked_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _locked(lock)
    for requirement in _requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from requirements/{lock}: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_the_runtime_lock_matches_the_dev_lock() -> None:
    dev = _locked("dev.lock")
    for name, version in _locked("run.lock").items():
        assert dev.get(name) == version, f"{name}: run.lock {version}, dev.lock {dev.get(name)}"


def test_the_build_backend_is_locked() -> None:
    backend = Requirement(PYPROJECT["build-system"]["requires"][0])
    pins = _locked("run.lock")
    assert backend.specifier.contains(pins[canonicalize_name(backend.name)])


def test_oldest_constraints_pin_every_minimum() -> None:
    found = minimums(PYPROJECT)
    assert found["cryptography"] == "48"
    direct = {canonicalize_name(req.name) for req in _requirements("dev", "cluster")}
    assert set(found) == direct | {"setuptools"}
    assert found["setuptools"] == "77.0.1"


def test_oldest_constraints_refuse_a_requirement_without_a_minimum() -> None:
    project = {"name": "x", "dependencies": ["websockets<18"]}
    with pytest.raises(SystemExit, match="websockets has no >= minimum"):
        minimums({"project": project})
