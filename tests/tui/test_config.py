"""Settings come from config.toml, then the environment, then flags; bad values are explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.errors import ConfigError
from securechat.tui.cli import build_parser
from securechat.tui.config import TuiConfig, load_config


def test_layers_override_in_order(tmp_path: Path) -> None:
    """File < environment < flags, and None flags leave the value alone."""
    (tmp_path / "config.toml").write_text(
        '[tui]\nserver = "ws://file:1"\nbell = false\ntheme = "nord"\n'
    )
    env = {"SECURECHAT_SERVER": "ws://env:2", "SECURECHAT_DESKTOP_NOTIFICATIONS": "yes"}
    config = load_config(tmp_path, env, server=None, theme="gruvbox")
    assert config == TuiConfig(
        server="ws://env:2", bell=False, desktop_notifications=True, theme="gruvbox"
    )


def test_full_link_checks_from_file_environment_and_flag(tmp_path: Path) -> None:
    """Off by default; the [tui] table, the environment and --full-link-checks turn it on."""
    assert load_config(tmp_path, {}).full_link_checks is False
    (tmp_path / "config.toml").write_text("[tui]\nfull_link_checks = true\n")
    assert load_config(tmp_path, {}).full_link_checks is True
    env = {"SECURECHAT_FULL_LINK_CHECKS": "no"}
    assert load_config(tmp_path, env).full_link_checks is False
    flag = build_parser().parse_args(["--full-link-checks"]).full_link_checks
    assert load_config(tmp_path, env, full_link_checks=flag).full_link_checks is True
    assert build_parser().parse_args([]).full_link_checks is None


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[tui]\nbell = 3\n", "true or false"),
        ("[tui]\ncolour = 1\n", "unknown setting"),
        ("[tui", "not valid TOML"),
    ],
)
def test_bad_config_is_explained(tmp_path: Path, toml: str, needle: str) -> None:
    """A typo in config.toml names the file and the setting."""
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path, {})


def test_cli_flags() -> None:
    """The documented flags parse, and --no-bell turns the bell off."""
    args = build_parser().parse_args(
        ["--server", "ws://127.0.0.1:8765", "--data-dir", "/tmp/x", "--user", "al", "--no-bell"]
    )
    assert (args.server, args.data_dir, args.user, args.bell) == (
        "ws://127.0.0.1:8765",
        "/tmp/x",
        "al",
        False,
    )


def test_brands_from_file_and_environment(tmp_path: Path) -> None:
    """`brands` extends the protected brands: a TOML list, or comma-separated in the env."""
    assert load_config(tmp_path, {}).brands == ()
    (tmp_path / "config.toml").write_text('[tui]\nbrands = ["MyBank.co.uk", "bücher.de"]\n')
    assert load_config(tmp_path, {}).brands == ("mybank.co.uk", "xn--bcher-kva.de")
    env = {"SECURECHAT_BRANDS": "employer.com, mybank.co.uk"}
    assert load_config(tmp_path, env).brands == ("employer.com", "mybank.co.uk")


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[tui]\nbrands = ["mybank.com", 7]\n', "must be a domain such as mybank.com, not 7"),
        ("[tui]\nbrands = 3\n", "must be a list of domains"),
        ('[tui]\nbrands = ["co.uk"]\n', "must be a registrable domain"),
        ('[tui]\nbrands = ["www.mybank.com"]\n', "such as mybank.com"),
        ('[tui]\nbrands = ["my bank"]\n', "is not a domain name"),
    ],
)
def test_bad_brands_are_explained(tmp_path: Path, toml: str, needle: str) -> None:
    """A wrong `brands` entry names the file, the setting and the entry."""
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path, {})
