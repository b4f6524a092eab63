"""`securechat-tui`: parse flags, load the configuration, run the app."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from securechat import __version__, paths
from securechat.errors import ConfigError
from securechat.tui.app import make_app
from securechat.tui.config import CONFIG_FILE, load_config
from securechat.tui.state import STATE_FILE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securechat-tui", description="End-to-end encrypted chat in the terminal."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--server", help="relay address, like ws://127.0.0.1:8765")
    parser.add_argument("--data-dir", help="where vaults live (default: the platform data dir)")
    parser.add_argument("--config-dir", help="where config.toml lives")
    parser.add_argument("--user", default="", help="username to fill in on the sign-in screen")
    parser.add_argument("--pin", help="SHA-256 of the relay's TLS certificate, to pin it")
    parser.add_argument("--theme", help="a Textual theme name (Ctrl+P lists them)")
    parser.add_argument(
        "--bell", action=argparse.BooleanOptionalAction, default=None, help="ring on new messages"
    )
    parser.add_argument(
        "--desktop-notifications",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="desktop notifications through OSC 9 / OSC 777, or notify-send",
    )
    parser.add_argument(
        "--notification-text",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the message text in desktop notifications, not only the sender",
    )
    parser.add_argument(
        "--full-link-checks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="check links with VirusTotal/OTX through the relay (sends the URLs there)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the relay's error codes after error messages"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_dir = paths.config_dir(args.config_dir)
    try:
        config = load_config(
            config_dir,
            server=args.server,
            theme=args.theme,
            bell=args.bell,
            desktop_notifications=args.desktop_notifications,
            notification_text=args.notification_text,
            full_link_checks=args.full_link_checks,
        )
    except ConfigError as exc:
        print(f"securechat-tui: {exc}", file=sys.stderr)
        return 2
    app = make_app(
        data_dir=args.data_dir,
        user=args.user,
        pin_sha256=args.pin,
        config=config,
        debug=args.debug,
        state_path=paths.data_dir(args.data_dir) / STATE_FILE,
        config_path=config_dir / CONFIG_FILE,
    )
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
