"""The README's scripted walkthrough runs as written."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.procs import free_port


def _walkthrough() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Scripted walkthrough", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_readme_walkthrough(tmp_path: Path) -> None:
    """Each command exits 0 and bob finally reads alice's message; only port and /tmp change."""
    port = str(free_port())
    lines = [
        line.replace("8765", port).replace("/tmp/", f"{tmp_path}/").replace(".venv/bin/", "")
        for line in _walkthrough()
    ]
    server_cmd = lines[0].removesuffix("&").strip()
    env = {**os.environ, "SECURECHAT_BCRYPT_COST": "4"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    for name, value in re.findall(r"(\w+)=('[^']*'|\S+)", lines[1].removeprefix("export ")):
        env[name] = shlex.split(value)[0]
    relay = subprocess.Popen(shlex.split(server_cmd), env=env)
    try:
        deadline = time.monotonic() + 15
        while socket.socket().connect_ex(("127.0.0.1", int(port))) != 0:
            assert time.monotonic() < deadline, "relay did not start"
            time.sleep(0.05)
        outputs = []
        for line in lines[2:]:
            done = subprocess.run(
                shlex.split(line), env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, (line, done.stderr)
            outputs.append(done.stdout)
        assert '"text": "hello bob"' in outputs[-2]
        assert len(outputs[-1].splitlines()) > 1
    finally:
        relay.terminate()
        assert relay.wait(15) == 0
