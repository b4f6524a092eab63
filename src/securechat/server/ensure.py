"""Used by `make run`: start a relay in the background unless one already answers.

The relay keeps running after the TUI quits (so a second terminal can join);
its log goes to `relay.log` in the relay's data directory.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

from securechat import paths


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    if _listening(args.host, args.port):
        print(f"relay already listening on {args.host}:{args.port}")
        return 0
    data = paths.server_dir()
    log_path = data / "relay.log"
    with open(log_path, "ab") as log_file:
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "securechat.server.cli",
                "run",
                "--host",
                args.host,
                "--port",
                str(args.port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _listening(args.host, args.port):
            print(f"relay started on {args.host}:{args.port} (log: {log_path})")
            return 0
        time.sleep(0.1)
    print(f"the relay did not start; see {log_path}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
