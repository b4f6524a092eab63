"""Settings come from config.toml, then the environment, then flags; bad values are explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.errors import ConfigError
from securechat.tui.cli import build_parser
from securechat.tui.config import TuiConfig, load_config, save_setting, with_setting


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


def test_with_setting_edits_one_line_and_keeps_the_rest() -> None:
    """A changed setting replaces its line, or joins the [tui] table; comments stay."""
    text = '# mine\n[tui]\nbell = true  # loud\ntheme = "nord"\n\n[keymap]\nhelp = "f5"\n'
    assert with_setting(text, "bell", False) == (
        '# mine\n[tui]\nbell = false\ntheme = "nord"\n\n[keymap]\nhelp = "f5"\n'
    )
    assert with_setting(text, "desktop_notifications", True) == (
        '# mine\n[tui]\nbell = true  # loud\ntheme = "nord"\ndesktop_notifications = true\n'
        '\n[keymap]\nhelp = "f5"\n'
    )
    assert with_setting("", "theme", 'a"b') == '[tui]\ntheme = "a\\"b"\n'
    assert with_setting('[keymap]\nhelp = "f5"\n', "bell", False) == (
        '[keymap]\nhelp = "f5"\n\n[tui]\nbell = false\n'
    )


def test_save_setting_round_trips_and_refuses_to_damage(tmp_path: Path) -> None:
    """What is saved loads back; a file this cannot edit safely is left untouched."""
    save_setting(tmp_path / "config.toml", "theme", "gruvbox")
    save_setting(tmp_path / "config.toml", "bell", False)
    assert load_config(tmp_path, {}) == TuiConfig(theme="gruvbox", bell=False)
    odd = tmp_path / "odd" / "config.toml"
    odd.parent.mkdir()
    odd.write_text("tui = { bell = true }\n")
    with pytest.raises(ConfigError, match="cannot edit"):
        save_setting(odd, "bell", False)
    assert odd.read_text() == "tui = { bell = true }\n"


def test_keymap_table_is_read_and_checked(tmp_path: Path) -> None:
    """`[keymap]` maps known binding ids to keys; an unknown id names the known ones."""
    (tmp_path / "config.toml").write_text('[keymap]\nhelp = "f5, ctrl+h"\n')
    assert load_config(tmp_path, {}).keymap == (("help", "f5,ctrl+h"),)
    (tmp_path / "config.toml").write_text('[keymap]\nhelpme = "f5"\n')
    with pytest.raises(ConfigError, match=r"unknown binding `helpme`.*known: help"):
        load_config(tmp_path, {})
    (tmp_path / "config.toml").write_text("[keymap]\nhelp = 5\n")
    with pytest.raises(ConfigError, match="must be keys such as"):
        load_config(tmp_path, {})
