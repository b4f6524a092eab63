"""Print `name==minimum` for every direct dependency in pyproject.toml, for `make test-oldest`.

A `>=` minimum is a promise to users; pinning each one to exactly that release
and running the tests is the only way to know the promise holds.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")
MINIMUM = re.compile(r">=\s*([0-9][^,;\s]*)")


def minimums(pyproject: dict[str, object]) -> dict[str, str]:
    """Every direct requirement's lower bound, the build backend's too; none is an error."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    build = pyproject.get("build-system", {})
    assert isinstance(build, dict)
    requirements: list[str] = [*build.get("requires", []), *project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    found: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        name, _extras, spec = match.groups()
        if name == project["name"]:
            continue
        bound = MINIMUM.search(spec)
        if bound is None:
            raise SystemExit(f"{name} has no >= minimum in pyproject.toml: add one")
        found[name.lower()] = bound.group(1)
    return found


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    for name, version in sorted(minimums(tomllib.loads(path.read_text())).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
