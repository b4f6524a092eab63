"""The main screen's commands about one user: keys, sessions, search, deletions."""

from __future__ import annotations

from textual import work

from securechat.client.events import ConversationState
from securechat.client.records import StoredMessage
from securechat.client.trust import short_fingerprint
from securechat.errors import SecureChatError
from securechat.tui.messages import SignedOut
from securechat.tui.screens.chat_view import ChatView
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.safety import Choice, SafetyNumberScreen
from securechat.tui.screens.search import SearchScreen


class PeopleCommands(ChatView):
    """The commands about one user; each says what happened on the feedback line."""

    @work(group="command")
    async def sharekey(self, user: str) -> None:
        try:
            fingerprint = await self.client.sharekey(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(
            f"your key went to {user} (your fingerprint {short_fingerprint(fingerprint)}). "
            f"Once {user} shares theirs, `talk {user}`."
        )
        if self.current is None:
            self._open(user)
        else:
            self._refresh()

    @work(group="command")
    async def talk(self, user: str) -> None:
        try:
            state = await self.client.talk(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            self._refresh()
            return
        self._open(user)
        # The answer may have come already (both online): then the set-up line would be stale.
        if ConversationState.ACTIVE in (state, self.client.conversation_state(user)):
            self._say(f"🔒 the end-to-end session with {user} is active")
        else:
            self._awaiting_session.add(user)
            self._say(f"session set-up sent to {user}; it turns 🔒 when {user}'s client answers")

    def verify(self, user: str) -> None:
        try:
            numbers = self.client.verify(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return

        def chosen(choice: Choice | None) -> None:
            if choice == "accept":
                self.trust(user)
            elif choice == "keep":
                self.reject(user)
            elif choice == "verified":
                self._mark_verified(user)

        self.app.push_screen(SafetyNumberScreen(numbers), chosen)

    def _mark_verified(self, user: str) -> None:
        try:
            fingerprint = self.client.mark_verified(user)
        except SecureChatError as exc:
            self._say(str(exc), error=True)
            return
        self._say(
            f"✓ {user}'s key {short_fingerprint(fingerprint)} is marked verified; "
            "a key change clears the mark"
        )
        self._refresh()

    def reject(self, user: str) -> None:
        """Keeps the pinned key; the KeyKept event shows the stored warning."""
        try:
            fingerprint = self.client.reject(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(
            f"you kept {user}'s key {short_fingerprint(fingerprint)}; the new key is rejected"
        )
        self._refresh()

    def trust(self, user: str) -> None:
        try:
            fingerprint = self.client.trust(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        short = short_fingerprint(fingerprint)
        self._say(f"you trust {user}'s key {short}; `talk {user}` starts a new session")
        self._refresh()

    def search(self, query: str) -> None:
        results = self.client.search(query)

        def chosen(message: StoredMessage | None) -> None:
            if message is not None:
                self._open(message.record.peer, jump_to=message.id)
                self.query_one("#input").focus()

        self.app.push_screen(
            SearchScreen(query, results, self.services.time_format, self._title), chosen
        )

    def delete_conversation(self, user: str) -> None:
        def chosen(answer: str | None) -> None:
            if answer is not None:
                self._delete(user)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete the conversation with {user}?",
                f"This removes every message with {user} from this device and whatever the "
                "relay still holds for it. It cannot be undone. The end-to-end session "
                f"stays, so {user} can still write to you.",
                "Delete conversation",
            ),
            chosen,
        )

    @work(group="command")
    async def _delete(self, user: str) -> None:
        try:
            await self.client.delete_conversation(user)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self._say(f"the conversation with {user} is deleted")
        if self.current == user:
            self._open(None)
        else:
            self._refresh()

    def delete_account(self) -> None:
        def chosen(password: str | None) -> None:
            if password:
                self._delete_account_now(password)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete the account {self.me}?",
                "The relay forgets your account and this device's vault is wiped: every "
                "key and message is gone for good. Type your password to confirm.",
                "Delete my account",
                ask_password=True,
            ),
            chosen,
        )

    @work(exclusive=True, group="account")
    async def _delete_account_now(self, password: str) -> None:
        try:
            await self.client.delete_account(password)
        except SecureChatError as exc:
            self._say(f"the account was not deleted: {self.services.explain(exc)}", error=True)
            return
        self.post_message(SignedOut(f"the account {self.me} was deleted"))
