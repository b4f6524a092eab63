"""Running under systemd: the shipped unit verifies, Type=notify is honoured, directories too."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from securechat.server import logs
from securechat.server.config import resolve
from tests.conftest import REPO
from tests.procs import RelayProcess

UNIT = REPO / "contrib" / "systemd" / "securechat-server.service"


def test_shipped_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning (its ExecStart pointed here)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit cannot be verified here")
    relay = shutil.which("securechat-server") or str(Path(REPO / ".venv/bin/securechat-server"))
    text = UNIT.read_text().replace("/opt/securechat/.venv/bin/securechat-server", relay)
    assert "Type=notify" in text and relay in text
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    out = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_type_notify_ready_once_listening_and_stopping_on_drain(tmp_path: Path) -> None:
    """READY=1 arrives when the port answers; SIGTERM sends STOPPING=1 before the exit."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(15)
        relay = RelayProcess(tmp_path / "relay", NOTIFY_SOCKET=str(path)).start()
        try:
            ready = sock.recv(4096).decode()
            assert ready.splitlines()[0] == "READY=1" and f"port {relay.port}" in ready
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5):
                pass
        finally:
            assert relay.terminate() == 0
        assert sock.recv(4096).decode().splitlines()[0] == "STOPPING=1"


def test_state_and_configuration_directories(tmp_path: Path) -> None:
    """StateDirectory= is the default data_dir, relay.toml in ConfigurationDirectory= is read,
    and an explicit setting still wins."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "relay.toml").write_text("[server]\nport = 9100\n")
    env = {
        "STATE_DIRECTORY": f"{tmp_path}/state:{tmp_path}/other",
        "CONFIGURATION_DIRECTORY": str(tmp_path / "etc"),
    }
    loaded = resolve(env=env)
    assert loaded.config.data_dir == f"{tmp_path}/state"
    assert loaded.sources["data_dir"] == "STATE_DIRECTORY"
    assert loaded.config.port == 9100
    assert loaded.sources["port"] == f"{tmp_path}/etc/relay.toml:2"
    chosen = resolve(env={**env, "SECURECHAT_DATA_DIR": "/srv/relay"})
    assert chosen.config.data_dir == "/srv/relay"


def test_logs_directory_gets_json_lines(tmp_path: Path) -> None:
    """LogsDirectory= gets relay.log in JSON whatever the console format."""
    logs.configure("INFO", "text", io.StringIO(), directory=tmp_path)
    try:
        logging.getLogger("securechat.test").warning("to the file")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    [line] = (tmp_path / "relay.log").read_text().splitlines()
    assert json.loads(line)["msg"] == "to the file"
