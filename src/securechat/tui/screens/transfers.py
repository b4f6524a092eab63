"""Files on the main screen: `/send`, `/download`, and the bars of transfers in flight.

Files go up one at a time, so the core's `TransferProgress` for a blob id the
screen has not learnt yet belongs to the upload in flight; progress for any
other unknown upload is one the core resumed after a reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work

from securechat.client.conversation import ConversationId
from securechat.client.events import TransferProgress
from securechat.crypto.errors import AuthenticationFailed
from securechat.errors import ConnectionLost, SecureChatError, ServerRejected
from securechat.tui.screens.chat_view import ChatView, home_relative
from securechat.tui.widgets.chat_line import FileLine
from securechat.tui.widgets.chat_log import ChatLog
from securechat.tui.widgets.conversation_list import is_group
from securechat.tui.widgets.transfers import TransferPanel


class FileTransfers(ChatView):
    """`/send`, `/download` and the transfer bars; one upload at a time."""

    def send_file(self, path: str) -> None:
        if self.current is None:
            self._say(
                "no conversation is open: open one (F2 or `/open <user>`), then `/send` the file",
                error=True,
            )
            return
        self._send_file(self.current, path)

    @work(group="send-file")
    async def _send_file(self, peer: str, typed: str) -> None:
        """One upload at a time, so the progress of the one in flight is never mistaken."""
        path = Path(typed).expanduser()
        name = path.name or typed
        panel = self.query_one(TransferPanel)
        async with self._file_lock:
            to = self._title(peer)
            key = panel.start(Text.assemble("⇡ ", (name, "bold"), f" to {to}"))
            self._upload_in_flight = key
            try:
                if is_group(peer):
                    # Uploaded once; the file's key goes to every member in one group message.
                    group_id = ConversationId.parse(peer).name
                    blob_id = await self.client.group_send_file(group_id, path)
                else:
                    blob_id = await self.client.send_file(peer, path)
            except SecureChatError as exc:
                resumes = isinstance(exc.__cause__, ConnectionLost)
                await self._in_event_order(lambda: self._upload_ended(key, name, resumes))
                if resumes:
                    self._say(f"⏸ {self.services.explain(exc)}")
                else:
                    self._say(f"{name} was not sent: {self.services.explain(exc)}", error=True)
                return
            await self._in_event_order(lambda: self._upload_ended(key, name, False))
            self._finished.add(blob_id)
        self._say(f"📎 {name} sent to {to}, encrypted end to end")
        sent = self._stored(peer, lambda m: m.record.file_id == blob_id, kind="file")
        await self._show_arrivals()
        if sent is not None and self._in_view(peer):
            await self.query_one(ChatLog).append(sent)
        self._refresh()

    async def _in_event_order(self, callback: Callable[[], None]) -> None:
        """Runs `callback` once every event the core emitted so far has been handled here.

        The reader posts each event as it takes it off the core's queue, and the
        screen handles its messages in order: a callback queued after the queue
        is empty runs after all of them.
        """
        for _ in range(200):
            if self.client.events.empty():
                break
            await asyncio.sleep(0.005)
        handled = asyncio.Event()

        def run() -> None:
            callback()
            handled.set()

        self.call_later(run)
        await handled.wait()

    def _upload_ended(self, key: int, name: str, resumes: bool) -> None:
        """The bar goes; an upload the core will resume is remembered by its name."""
        self._upload_in_flight = None
        self.query_one(TransferPanel).finish(key)
        blob_id = next((b for b, k in self._transfers.items() if k == key), None)
        if blob_id is None:
            if resumes:
                self._resumable.append(name)
            return
        del self._transfers[blob_id]
        if resumes:
            self._resumed[blob_id] = name
        else:
            self._finished.add(blob_id)

    def download(self, number: int | None, file_id: str) -> None:
        chat = self.query_one(ChatLog)
        line = chat.file_line(number, file_id)
        if line is not None:
            self._file_chosen(FileLine.Chosen(line.file_id, line.file_name))
        elif file_id:
            self._download(file_id, file_id)
        else:
            shown = ", ".join(f"[{f.number}]" for f in chat.files())
            hint = f"the files here are {shown}" if shown else "no received file is shown here"
            self._say(f"there is no file [{number}] in this conversation; {hint}", True)

    @on(FileLine.Chosen)
    def _file_chosen(self, message: FileLine.Chosen) -> None:
        """Back to the input line while it downloads, so typing goes on where it belongs."""
        self.query_one("#input").focus()
        line = self.query_one(ChatLog).file_line(file_id=message.file_id)
        if line is not None and line.saved_to:
            # The relay drops a file once every recipient has it: asking again would fail.
            self._say(f"{message.name} is already saved to {line.saved_to}")
            return
        self._download(message.file_id, message.name)

    @work(group="download")
    async def _download(self, file_id: str, name: str) -> None:
        """Saved only once verified: the core deletes what fails, so no bad file is left."""
        if file_id in self._downloading:
            self._say(f"{name} is already downloading")
            return
        self._downloading.add(file_id)
        self._finished.discard(file_id)
        panel = self.query_one(TransferPanel)
        self._transfers[file_id] = panel.start(Text.assemble("⇣ ", (name, "bold")))
        self._say(f"downloading {name}…")
        try:
            saved = await self.client.download(file_id)
        except AuthenticationFailed as exc:
            self._say(f"⚠ {name} was not saved: {self.services.explain(exc)}", error=True)
        except ServerRejected as exc:
            if exc.code == "not_found":
                self._say(
                    f"{name} is no longer on the relay (already downloaded elsewhere, expired, "
                    "or not shared with you); ask the sender to send it again",
                    error=True,
                )
            else:
                self._say(f"{name} was not saved: {self.services.explain(exc)}", error=True)
        except SecureChatError as exc:
            self._say(f"{name} was not saved: {self.services.explain(exc)}", error=True)
        else:
            where = home_relative(saved)
            self._say(f"✓ {name} verified and saved to {where}")
            self.query_one(ChatLog).mark_saved(file_id, where)
        finally:
            self._downloading.discard(file_id)
            self._finished.add(file_id)
            panel.finish(self._transfers.pop(file_id))

    def _progress(self, event: TransferProgress) -> None:
        panel = self.query_one(TransferPanel)
        key = self._transfers.get(event.file_id)
        if key is None:
            if event.file_id in self._finished or event.direction != "up":
                return
            if self._upload_in_flight is not None:
                key = self._upload_in_flight
            else:
                name = self._resumed.get(event.file_id) or (
                    self._resumable.pop(0) if self._resumable else "a file"
                )
                key = panel.start(Text.assemble("⇡ ", (name, "bold"), " (resumed upload)"))
                self._resumed[event.file_id] = name
            self._transfers[event.file_id] = key
        panel.progress(key, event.done, event.total)
        if event.file_id in self._resumed and event.done >= event.total:
            name = self._resumed.pop(event.file_id)
            self._finished.add(event.file_id)
            panel.finish(self._transfers.pop(event.file_id))
            self._say(f"📎 {name} is uploaded: the upload resumed after the reconnect")
