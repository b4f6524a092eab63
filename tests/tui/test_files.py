"""File sharing in the TUI: `send` with a progress bar, received files, and `download`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar

from securechat.errors import ServerRejected
from securechat.tui.widgets.chat_line import FileLine, MessageLine
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.transfers import TransferPanel
from tests.tui.conftest import Harness, feedback, main_screen, settle, sign_in, type_line, until
from tests.tui.test_main import secured


def lines(pilot: Pilot[None]) -> list[str]:
    return [str(line.content) for line in pilot.app.screen.query(MessageLine)]


def bars(pilot: Pilot[None]) -> dict[str, float | None]:
    """Label -> percentage of every transfer bar on screen."""
    panel = pilot.app.screen.query_one(TransferPanel)
    return {label: bar.percentage for label, bar in panel.bars().values()}


async def submit(pilot: Pilot[None], text: str) -> None:
    """Types a line without waiting for its workers (a held transfer would never end)."""
    line = pilot.app.screen.query_one("#input", Input)
    line.focus()
    line.value = text
    await pilot.press("enter")


def report(tmp_path: Path, size: int = 2000) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%" * size)
    return path


async def with_received_files(pilot: Pilot[None], harness: Harness, tmp_path: Path) -> None:
    """An active chat with bob in which bob sent two files; downloads go to tmp_path."""
    await secured(pilot, harness)
    harness.client.downloads_dir = tmp_path / "downloads"
    harness.client.receive_file("bob", "report.pdf", b"%PDF" * 500)
    harness.client.receive("bob", "and the photo")
    harness.client.receive_file("bob", "photo.jpg", b"\xff\xd8" * 10)
    await settle(pilot)


async def test_send_shows_progress_then_the_file_in_the_chat(
    harness: Harness, tmp_path: Path
) -> None:
    """A bar follows the upload; afterwards the file is in the chat and the bar is gone."""
    source = report(tmp_path)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.transfer_gate = asyncio.Event()
        await submit(pilot, f"/send {source}")
        await until(pilot, lambda: bars(pilot) == {"⇡ report.pdf to bob": 0.5}, "half way")
        harness.client.transfer_gate.set()
        await settle(pilot)
        assert bars(pilot) == {}
        assert harness.client.uploads == [("bob", "report.pdf")]
        assert "report.pdf sent to bob" in feedback(pilot)
        assert "📎 report.pdf (2.0 kB)  ✓ sent" in lines(pilot)[-1]
        assert not pilot.app.screen.query(FileLine), "your own file is not a download"


async def test_send_without_session_is_refused(harness: Harness, tmp_path: Path) -> None:
    """With nothing open or no session, nothing is uploaded and the line says what to do."""
    source = report(tmp_path)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        await type_line(pilot, f"/send {source}")
        assert "no conversation is open" in feedback(pilot)
        await type_line(pilot, "/open bob")
        await type_line(pilot, f"/send {source}")
        assert harness.client.uploads == [] and bars(pilot) == {}
        assert "report.pdf was not sent: no secure session with bob" in feedback(pilot)
        assert "talk bob" in feedback(pilot)


async def test_send_too_large_is_refused(harness: Harness, tmp_path: Path) -> None:
    """A file over 25 MB is refused with its size and the limit."""
    big = tmp_path / "big.iso"
    with open(big, "wb") as handle:
        handle.truncate(25_000_001)
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, f"/send {big}")
        assert "big.iso was not sent: big.iso is 25.0 MB; files are limited to 25 MB" in (
            feedback(pilot)
        )
        assert harness.client.uploads == []


async def test_send_missing_file_expands_the_home_directory(harness: Harness) -> None:
    """`~` means the home directory; a missing file is named in full."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        await type_line(pilot, "/send ~/no-such-file-here.txt")
        expected = f"cannot read {Path.home() / 'no-such-file-here.txt'}"
        assert expected in feedback(pilot) and "No such file" in feedback(pilot)


async def test_interrupted_upload_says_it_resumes_and_then_appears(
    harness: Harness, tmp_path: Path
) -> None:
    """A dropped connection is not an error: the upload resumes and the file shows up."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.interrupt_uploads = True
        await type_line(pilot, f"/send {report(tmp_path)}")
        assert "⏸ the upload of report.pdf was interrupted; it resumes" in feedback(pilot)
        assert "-error" not in pilot.app.screen.query_one("#feedback").classes
        assert bars(pilot) == {} and harness.client.uploads == []
        harness.client.resume_uploads(finish=False)
        await settle(pilot)
        assert bars(pilot) == {"⇡ report.pdf (resumed upload)": 0.5}
        harness.client.resume_uploads()
        await settle(pilot)
        assert bars(pilot) == {}
        assert "report.pdf is uploaded: the upload resumed" in feedback(pilot)
        assert "📎 report.pdf (2.0 kB)  ✓ sent" in lines(pilot)[-1]


async def test_received_files_are_numbered_links(harness: Harness, tmp_path: Path) -> None:
    """Each received file shows its number, name, size and securechat:// link."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        files = [str(f.content) for f in pilot.app.screen.query(FileLine)]
        assert files[0].endswith(
            "bob: [1] 📎 report.pdf (2.0 kB) securechat://file/in0001BBBBBBBBBBBBBBBBBBBBBBBBBB"
        )
        assert "[2] 📎 photo.jpg (20 B)" in files[1]
        assert "Enter on it" in feedback(pilot)
        titles = [title for title, _, _ in main_screen(pilot).palette_entries()]
        assert "Download [1] report.pdf" in titles and "Send a file…" in titles


async def test_download_by_number_shows_progress_and_where_it_went(
    harness: Harness, tmp_path: Path
) -> None:
    """`download 1` saves the file, with a bar meanwhile, and says where."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        harness.client.transfer_gate = asyncio.Event()
        await submit(pilot, "/download 1")
        await until(pilot, lambda: bars(pilot) == {"⇣ report.pdf": 0.5}, "half way")
        harness.client.transfer_gate.set()
        await settle(pilot)
        saved = tmp_path / "downloads" / "report.pdf"
        assert saved.read_bytes() == b"%PDF" * 500
        assert f"✓ report.pdf verified and saved to {saved}" in feedback(pilot)
        assert f"✓ saved to {saved}" in str(pilot.app.screen.query(FileLine)[0].content)
        assert bars(pilot) == {}


async def test_download_with_enter_and_with_a_click(harness: Harness, tmp_path: Path) -> None:
    """F3 selects the newest file, Up the one before, Enter saves it; a click saves too."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        await pilot.press("f3")
        assert pilot.app.focused is pilot.app.screen.query(FileLine)[1]
        await pilot.press("up", "enter")
        await settle(pilot)
        assert [p.name for p in (tmp_path / "downloads").iterdir()] == ["report.pdf"]
        assert pilot.app.focused is pilot.app.screen.query_one("#input")
        await pilot.click(pilot.app.screen.query(FileLine)[1], offset=(30, 0))
        await settle(pilot)
        assert (tmp_path / "downloads" / "photo.jpg").exists()
        await type_line(pilot, "/download 1")
        assert "report.pdf is already saved to" in feedback(pilot)


async def test_download_by_id_or_link_and_unknown_numbers(harness: Harness, tmp_path: Path) -> None:
    """The id or pasted link works like the number; a number not shown lists those that are."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        blob_id = pilot.app.screen.query(FileLine)[1].file_id
        await type_line(pilot, f"/download securechat://file/{blob_id}")
        assert (tmp_path / "downloads" / "photo.jpg").exists()
        await type_line(pilot, "/download 7")
        assert "there is no file [7] in this conversation; the files here are [1], [2]" in (
            feedback(pilot)
        )
        await type_line(pilot, "/download report.pdf")
        assert "not a file number or id" in feedback(pilot)


async def test_tampered_file_is_refused_and_nothing_saved(harness: Harness, tmp_path: Path) -> None:
    """A file that fails authentication is reported as altered and never saved."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        harness.client.tampered.add(pilot.app.screen.query(FileLine)[0].file_id)
        await type_line(pilot, "/download 1")
        assert "⚠ report.pdf was not saved: The file was altered" in feedback(pilot)
        assert "-error" in pilot.app.screen.query_one("#feedback").classes
        assert not (tmp_path / "downloads").exists() and bars(pilot) == {}


async def test_gone_file_is_explained(harness: Harness, tmp_path: Path) -> None:
    """The relay no longer holding a file reads as a sentence, not an error code."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)

        async def gone(blob_id: str, directory: object = None) -> Path:
            raise ServerRejected("not_found", "no such file")

        harness.client.download = gone  # type: ignore[method-assign]
        await type_line(pilot, "/download 2")
        assert "photo.jpg is no longer on the relay" in feedback(pilot)


async def test_file_for_another_conversation_notifies(harness: Harness) -> None:
    """A file from someone not in view raises the usual notification, with its name."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive_file("carol", "plan.txt", b"x" * 1500)
        await settle(pilot)
        assert any("📎 plan.txt (1.5 kB)" in n.message for n in pilot.app._notifications)
        assert not pilot.app.screen.query(FileLine)


async def test_numbers_stay_when_older_pages_load(harness: Harness, tmp_path: Path) -> None:
    """Loading older history keeps the numbers already shown; older files get new ones."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await sign_in(pilot)
        harness.client.receive_file("bob", "old.txt", b"old")
        harness.client.add_history("bob", [f"message {i}" for i in range(60)])
        harness.client.receive_file("bob", "new.txt", b"new")
        await settle(pilot)
        await type_line(pilot, "/open bob")
        chat = pilot.app.screen.query_one(ChatLog)
        assert [(f.number, f.file_name) for f in chat.files()] == [(1, "new.txt")]
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert [(f.number, f.file_name) for f in chat.files()] == [(1, "new.txt"), (2, "old.txt")]


async def test_hostile_file_name_stays_text_in_chat_and_palette(harness: Harness) -> None:
    """A name made of markup and escapes is shown as typed, in the chat and the palette."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await secured(pilot, harness)
        harness.client.receive_file("bob", "[b]loud[/b]\x1b[2J.txt", b"x")
        await settle(pilot)
        shown = str(pilot.app.screen.query(FileLine)[0].content)
        assert "[1] 📎 [b]loud[/b]␛[2J.txt (1 B)" in shown
        await pilot.press("ctrl+p")
        await pilot.press(*"download [1]")
        await pilot.pause(0.3)
        prompts = [str(o.prompt) for o in pilot.app.screen.query_one(OptionList).options]
        assert any("[b]loud[/b]" in p for p in prompts), prompts


async def test_a_saved_file_shows_its_location_after_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    """The vault remembers where a download went; reopening the chat shows it again."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        blob_id = pilot.app.screen.query(FileLine)[0].file_id
        saved = tmp_path / "kept" / "report.pdf"
        saved.parent.mkdir()
        saved.write_bytes(b"%PDF")
        harness.client.saved[blob_id] = saved  # what an earlier run's download left
        await type_line(pilot, "/open carol")
        await type_line(pilot, "/open bob")
        shown = str(pilot.app.screen.query(FileLine)[0].content)
        assert f"✓ saved to {saved}" in shown


async def test_a_bar_appears_after_half_a_second_and_stays_to_be_read(
    harness: Harness, tmp_path: Path
) -> None:
    """No flicker for quick transfers; a slow one's bar shows, ends full, then goes."""
    async with harness.app.run_test(size=(100, 30)) as pilot:
        await with_received_files(pilot, harness, tmp_path)
        panel = pilot.app.screen.query_one(TransferPanel)
        harness.client.transfer_gate = asyncio.Event()
        await submit(pilot, "/download 1")
        assert bars(pilot) and not panel.display  # running, not drawn yet
        await until(pilot, lambda: panel.display, "the bar to show", timeout=5)
        shown = panel.query_one(ProgressBar)
        assert shown.percentage == 0.5
        harness.client.transfer_gate.set()
        await settle(pilot)
        assert bars(pilot) == {} and panel.display and shown.percentage == 1.0
        await until(pilot, lambda: not panel.display, "the bar to go", timeout=5)
        harness.client.transfer_gate = None
        await submit(pilot, "/download 2")
        await pilot.pause(TransferPanel.SHOW_AFTER + 0.2)
        assert not panel.display and "photo.jpg verified and saved" in feedback(pilot)
