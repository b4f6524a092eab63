"""Relay configuration and operations commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from securechat.errors import ConfigError
from securechat.server.app import RelayServer
from securechat.server.config import load_config
from tests.wire import logged_in, signed_up


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    """Flags beat SECURECHAT_* variables, which beat the TOML file, which beats defaults."""
    toml = tmp_path / "relay.toml"
    toml.write_text('[server]\nport = 9000\nbcrypt_cost = 10\nlog_level = "WARNING"\n')
    config = load_config(
        toml,
        env={"SECURECHAT_PORT": "9100", "SECURECHAT_BCRYPT_COST": "11"},
        overrides={"port": 9200},
    )
    assert (config.port, config.bcrypt_cost, config.log_level) == (9200, 11, "WARNING")
    assert config.queue_max_count == 10_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 'many'\n", "is not a int"),
        ("[server]\nbogus = 1\n", "unknown setting"),
        ("[server\n", "not valid TOML"),
        ("[server]\ncommit_delay = 5\n", "commit_delay = 5.0 is out of range"),
        ("[server]\nfile_quota_files = 0\n", "would refuse every file"),
    ],
)
def test_bad_configuration_is_explained(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake names the setting or the file."""
    toml = tmp_path / "relay.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(toml, env={})


def test_stats_command(tmp_path: Path) -> None:
    """`securechat-server stats` prints the store's counts as JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "securechat.server.cli", "stats", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["accounts"] == 0


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """The operator learns which file is missing, with a non-zero exit."""
    out = subprocess.run(
        [sys.executable, "-m", "securechat.server.cli", "run", "--config", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "does not exist" in out.stderr


async def test_connections_per_user_are_limited(relay: RelayServer) -> None:
    """A sixth simultaneous connection of one user is refused with the reason."""
    url = f"ws://127.0.0.1:{relay.port}"
    await signed_up(url, "alice")
    for _ in range(relay.config.max_connections_per_user - 1):
        await logged_in(url, "alice")
    from tests.wire import PASSWORD, Wire

    extra = await Wire.open(url)
    answer = await extra.call("login", username="alice", password=PASSWORD)
    assert answer["code"] == "rate_limited" and "too many connections" in answer["message"]
