"""The built wheel works on its own: installed into a fresh venv away from the source tree.

An editable install hides packaging mistakes (package data left out, an entry point
that imports from the tree), which users of `pip install securechat` would meet first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat import __version__
from tests.procs import free_port

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("securechat-server", "securechat-tui", "securechat-cli")


class Installed:
    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.bin = root / "venv" / "bin"
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(root / "home"),
            "SECURECHAT_BCRYPT_COST": "4",
        }

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("securechat-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    venv_pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--quiet"]
    lock = REPO / "requirements" / "run.lock"
    subprocess.run(
        [*venv_pip, "install", "--require-hashes", "--no-deps", "-r", str(lock)],
        check=True,
        timeout=600,
    )
    subprocess.run([*venv_pip, "install", "--no-deps", str(wheel)], check=True, timeout=120)
    (root / "home").mkdir()
    yield Installed(root, wheel)


def test_wheel_carries_package_data_and_license(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "securechat/tui/app.tcss" in names
    assert "securechat/protocol/common_passwords.txt" in names
    assert "securechat/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_installed_dependencies_are_consistent(installed: Installed) -> None:
    check = installed.run(str(installed.bin / "python"), "-m", "pip", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_installed_package_is_not_the_source_tree(installed: Installed) -> None:
    where = installed.run(
        str(installed.bin / "python"), "-c", "import securechat; print(securechat.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert str(installed.root / "venv") in where.stdout
    assert str(REPO) not in where.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_answer_help_and_version(installed: Installed, command: str) -> None:
    help_run = installed.run(str(installed.bin / command), "--help")
    assert help_run.returncode == 0, help_run.stderr
    assert f"usage: {command}" in help_run.stdout
    version_run = installed.run(str(installed.bin / command), "--version")
    assert version_run.returncode == 0, version_run.stderr
    assert version_run.stdout.strip() == f"{command} {__version__}"


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("securechat", "securechat"),
        ("securechat.server", "securechat-server"),
        ("securechat.tui", "securechat-tui"),
        ("securechat.client", "securechat-cli"),
    ],
)
def test_python_dash_m_runs_the_matching_command(
    installed: Installed, module: str, command: str
) -> None:
    result = installed.run(str(installed.bin / "python"), "-m", module, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{command} {__version__}"


def test_the_tui_stylesheet_loads_from_the_wheel(installed: Installed) -> None:
    result = installed.run(
        str(installed.bin / "python"),
        "-c",
        "from importlib.resources import files;"
        "from securechat.tui.app import SecureChatApp;"
        "print(files('securechat.tui').joinpath(SecureChatApp.CSS_PATH).read_text())",
    )
    assert result.returncode == 0, result.stderr
    assert "Screen" in result.stdout


def test_installed_relay_starts_and_answers_healthz(installed: Installed) -> None:
    port, metrics_port = free_port(), free_port()
    data = installed.root / "relay-data"
    relay = subprocess.Popen(
        [
            str(installed.bin / "securechat-server"),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
        ],
        cwd=installed.root,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = _healthz(metrics_port, relay, deadline=time.monotonic() + 30)
        assert body.strip() == "ok"
    finally:
        relay.terminate()
        output, _ = relay.communicate(timeout=30)
    assert relay.returncode == 0, output
    assert (data / "relay.db").exists() or any(data.iterdir())


def _healthz(port: int, relay: subprocess.Popen[str], deadline: float) -> str:
    url = f"http://127.0.0.1:{port}/healthz"
    while True:
        if relay.poll() is not None:
            raise AssertionError(f"relay exited: {relay.communicate()[0][-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
