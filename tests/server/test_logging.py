"""Log lines an operator's tools can read: one per event, parseable, with what they need."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from securechat.server import logs
from tests.procs import RelayProcess
from tests.wire import PASSWORD, Wire, signed_up


def _log_an_exception(fmt: logs.LogFormat) -> str:
    out = io.StringIO()
    logs.configure("INFO", fmt, out)
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logging.getLogger("securechat.test").exception('boom "quoted"\nsecond line')
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["json", "logfmt", "text"])
def test_an_exception_is_one_line_in_every_format(fmt: logs.LogFormat) -> None:
    """A traceback stays inside its event's line, with a UTC ISO-8601 time first."""
    text = _log_an_exception(fmt)
    assert text.count("\n") == 1 and "ZeroDivisionError" in text
    if fmt == "json":
        event = json.loads(text)
        assert event["level"] == "ERROR" and event["msg"] == 'boom "quoted"\nsecond line'
        assert event["ts"].endswith("Z") and "T" in event["ts"]
        assert "Traceback" in event["exc"]
    elif fmt == "logfmt":
        assert text.startswith("ts=20") and 'msg="boom \\"quoted\\"\\nsecond line"' in text
    else:
        assert text[:4] == "20" + text[2:4] and " ERROR   securechat.test: boom" in text


def test_auto_is_json_off_a_terminal() -> None:
    """A service's stderr is a pipe or the journal: it gets JSON without being asked."""
    out = io.StringIO()
    logs.configure("INFO", "auto", out)
    logging.getLogger("securechat.test").info("hello")
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    assert json.loads(out.getvalue())["msg"] == "hello"


async def test_relay_process_logs_start_failed_login_and_stop_as_json(tmp_path: Path) -> None:
    """Under a supervisor: every line is JSON; the start-up summary, a failed login with the
    address but not the name (for fail2ban), and the shutdown are there."""
    relay = RelayProcess(tmp_path / "relay").start()
    try:
        alice = await signed_up(relay.url, "alice")
        stranger = await Wire.open(relay.url)
        answer = await stranger.call("login", username="alice", password=PASSWORD + "x")
        assert answer["type"] == "error"
        await alice.close()
        await stranger.close()
    finally:
        assert relay.terminate() == 0
    events = [json.loads(line) for line in relay.log.read_text().splitlines()]
    messages = [e["msg"] for e in events]
    [summary] = [m for m in messages if m.startswith("securechat-server ")]
    for part in ("listening on 127.0.0.1:", "(TLS off)", "store sqlite:", "bus none", "data dir"):
        assert part in summary
    [failed] = [m for m in messages if m.startswith("login failed")]
    assert failed == "login failed from 127.0.0.1: unauthorized" and "alice" not in failed
    assert any(m.startswith("relay stopped") for m in messages)
