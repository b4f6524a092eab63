"""Relay configuration and operations commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tools import config_docs

from securechat.errors import ConfigError
from securechat.server.app import RelayServer
from securechat.server.config import FIELDS, load_config, resolve
from tests.conftest import REPO
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
        ("[server]\nport = 'many'\n", r"relay.toml:2: port = 'many' is not allowed: Expected"),
        ("[server]\n\nbogus = 1\n", r"relay.toml:3: unknown setting `bogus`"),
        ("[server\n", "not valid TOML"),
        ("[server]\ncommit_delay = 5\n", r"commit_delay = 5 is not allowed: Expected `float` <="),
        ("[server]\nfile_quota_files = 0\n", "file_quota_files = 0 is not allowed"),
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
    assert out.returncode == 2 and "does not exist" in out.stderr


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "securechat.server.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


BAD_FILES = {
    "misspelled table": ("[srv]\nport = 1\n", "relay.toml:1: unknown table [srv]"),
    "port out of range": ("[server]\nport = 99999\n", "relay.toml:2: port = 99999"),
    "unknown log level": (
        '[server]\nlog_level = "verbose"\n',
        "log_level = 'verbose' is not allowed: use one of DEBUG, INFO, WARNING, ERROR",
    ),
    "malformed store port": (
        '[server]\nstore = "postgresql://u@127.0.0.1:notaport/db"\n',
        "relay.toml:2: store = 'postgresql://u@127.0.0.1:notaport/db' is not allowed: the port",
    ),
    "missing certificate": (
        '[server]\ntls_cert = "{tmp}/missing.pem"\n',
        "relay.toml:2: tls_cert {tmp}/missing.pem does not exist",
    ),
    "data dir under a file": (
        '[server]\ndata_dir = "{tmp}/a-file/data"\n',
        "relay.toml:2: data_dir {tmp}/a-file/data: {tmp}/a-file is not a directory",
    ),
    "key outside the table": ("port = 1\n", "relay.toml:1: `port` is outside any table"),
    "misspelled key": ("[server]\nprot = 1\n", "did you mean `port`?"),
}


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_one_line_and_exit_2(tmp_path: Path, case: str, command: str) -> None:
    """Whether starting or checking, each mistake is one line naming file, line and setting."""
    text, expected = (part.replace("{tmp}", str(tmp_path)) for part in BAD_FILES[case])
    (tmp_path / "a-file").write_text("")
    toml = tmp_path / "relay.toml"
    toml.write_text(text)
    args = ["config", "check", str(toml)] if command == "check" else ["run", "--config", str(toml)]
    out = _cli(*args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert expected in out.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {"SECURECHAT_PORT": "99999"}, "SECURECHAT_PORT: port = '99999' is not allowed"),
        ((), {"SECURECHAT_BUS": "redis://h:x/0"}, "SECURECHAT_BUS: bus = 'redis://h:x/0'"),
        (("--port", "70000"), {}, "--port: port = 70000 is not allowed"),
        (("--log-level", "verbose"), {}, "invalid choice: 'verbose'"),
        (("--metrics-listen", "nope"), {}, "--metrics-listen: metrics_listen = 'nope' is not"),
        (("--tls-cert", "/nonexistent/c.pem"), {}, "--tls-cert: tls_cert /nonexistent/c.pem"),
    ],
)
def test_bad_variable_or_flag_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    """Variables and flags are checked like the file, and say which one was wrong."""
    out = _cli("run", "--data-dir", str(tmp_path), *args, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert expected in out.stderr.splitlines()[-1]


def test_config_show_names_each_source_and_hides_passwords(tmp_path: Path) -> None:
    """`config show` is pasteable TOML; each line says which source won; no password shows."""
    toml = tmp_path / "relay.toml"
    toml.write_text("[server]\nport = 9000\nbcrypt_cost = 10\n")
    out = _cli(
        "config",
        "show",
        "--config",
        str(toml),
        "--port",
        "9001",
        env={"SECURECHAT_BCRYPT_COST": "11", "SECURECHAT_STORE": "postgresql://u:hunter2@db/x"},
    )
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" = ", 1) for line in out.stdout.splitlines()[1:])
    assert lines["port"] == "9001  # --port"
    assert lines["bcrypt_cost"] == "11  # SECURECHAT_BCRYPT_COST"
    assert lines["queue_max_count"] == "10000  # default"
    assert "hunter2" not in out.stdout and "u:***@db" in lines["store"]
    shown = tomllib.loads(re.sub(r"  # .*", "", out.stdout))["server"]
    assert shown["port"] == 9001 and set(shown) == set(FIELDS)


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from ServerConfig: regenerate it after a change."""
    assert (REPO / "docs" / "configuration.md").read_text() == config_docs.render()
    for name in FIELDS:
        assert f"| `{name}` |" in config_docs.render()


def test_example_configuration_validates() -> None:
    """examples/relay.toml, which operators copy, passes the same checks as any file."""
    loaded = resolve(REPO / "examples" / "relay.toml", env={})
    assert loaded.config.port == 8765 and loaded.sources["port"].endswith("relay.toml:7")


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
