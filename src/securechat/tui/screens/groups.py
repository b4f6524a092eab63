"""The main screen's group commands: `/group new`, and changes to the open group.

Every command but `/group new` acts on the group open in the chat; with a
direct conversation (or none) open, it says so rather than guess a group.
Refusals (not an admin, an unknown user, a member whose key changed) come
from the client core as sentences and land on the feedback line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable

from textual import work

from securechat.client.api import GroupInfo
from securechat.client.events import GroupInvited
from securechat.errors import SecureChatError
from securechat.tui.safe_text import one_line
from securechat.tui.screens.chat_view import ChatView
from securechat.tui.screens.confirm import ConfirmScreen
from securechat.tui.screens.invitation import InvitationChoice, InvitationScreen
from securechat.tui.screens.members import MembersScreen
from securechat.tui.widgets.conversation_list import is_group


class GroupCommands(ChatView):
    def _open_group(self, command: str) -> GroupInfo | None:
        """The group open in the chat, or None after saying why the command cannot run."""
        if self.current is None or not is_group(self.current):
            self._say(
                f"`/{command}` works in a group: open one on the left (F2), or start one "
                "with `/group new <name> <user> …`",
                error=True,
            )
            return None
        group = self.groups.get(self.current) or next(
            (g for g in self.client.groups() if g.conversation.key == self.current), None
        )
        if group is None:
            self._say(f"you are no longer in {self._title(self.current)}", error=True)
        return group

    @work(group="command")
    async def new_group(self, name: str, users: tuple[str, ...]) -> None:
        if self.me in users:
            self._say("you are in every group you create: name only the others", error=True)
            return
        try:
            group = await self.client.create_group(name, users)
        except SecureChatError as exc:
            self._say(f"no group created: {self.services.explain(exc)}", error=True)
            return
        self._say(
            f"🔒 {one_line(group.name, 40)} is created with {', '.join(users)}; you are its admin"
        )
        self._open(group.conversation.key)

    async def _change(self, change: Awaitable[object], refused: str, done: str) -> None:
        """Carries out one change to a group and says how it went, either way."""
        try:
            await change
        except SecureChatError as exc:
            self._say(f"{refused}: {self.services.explain(exc)}", error=True)
            return
        self._say(done)
        self._refresh()

    @work(group="command")
    async def invite(self, user: str) -> None:
        if group := self._open_group("invite"):
            await self._change(
                self.client.group_invite(group.group_id, user),
                f"{user} was not added",
                f"{user} is added to {one_line(group.name, 40)}",
            )

    @work(group="command")
    async def remove_member(self, user: str) -> None:
        if user == self.me:
            self._say("to leave the group, type `/leave`", error=True)
        elif group := self._open_group("remove"):
            await self._change(
                self.client.group_remove(group.group_id, user),
                f"{user} was not removed",
                f"{user} is removed from {one_line(group.name, 40)}: they read nothing after this",
            )

    @work(group="command")
    async def make_admin(self, user: str) -> None:
        if group := self._open_group("admin"):
            await self._change(
                self.client.group_make_admin(group.group_id, user),
                f"{user} is not an admin",
                f"{user} is now an admin of {one_line(group.name, 40)}",
            )

    def leave_group(self) -> None:
        group = self._open_group("leave")
        if group is None:
            return
        name = one_line(group.name, 40)

        def chosen(answer: str | None) -> None:
            if answer is not None:
                self._leave(group.group_id, name)

        self.app.push_screen(
            ConfirmScreen(
                f"Leave {name}?",
                f"You stop receiving what is said in {name} and can send nothing more to "
                "it; an admin would have to add you again. The history stays on this device.",
                "Leave group",
            ),
            chosen,
        )

    @work(group="command")
    async def _leave(self, group_id: str, name: str) -> None:
        await self._change(
            self.client.group_leave(group_id),
            f"you are still in {name}",
            f"you left {name}; its history stays on this device",
        )

    def list_members(self) -> None:
        group = self._open_group("members")
        if group is None:
            return
        try:
            members = self.client.group_members(group.group_id)
        except SecureChatError as exc:
            self._say(self.services.explain(exc), error=True)
            return
        self.app.push_screen(
            MembersScreen(one_line(group.name, 60), members, self.me, group.key_changed)
        )

    @work(group="command")
    async def rename_group(self, name: str) -> None:
        if group := self._open_group("rename"):
            await self._change(
                self.client.group_rename(group.group_id, name),
                "not renamed",
                f"the group is now called {one_line(name, 40)}",
            )

    @work(group="command")
    async def set_topic(self, text: str) -> None:
        if group := self._open_group("topic"):
            await self._change(
                self.client.group_set_topic(group.group_id, text),
                "the topic is unchanged",
                f"the topic of {one_line(group.name, 40)} is set",
            )

    def _invited(self, invitation: GroupInvited) -> None:
        """Shows who invited us and who is in the group before it opens.

        Who is in it now: a member offline when invited reads the Welcome with the
        backlog, and the Commits after it (a removal, a topic) may be read before the
        dialog shows. The invitation alone would then name a member already removed.
        """
        key = invitation.conversation.key
        if (group := self.groups.get(key)) is not None:
            invitation = dataclasses.replace(
                invitation,
                name=group.name,
                topic=group.topic,
                members=tuple(m.user for m in group.members),
            )

        def chosen(choice: InvitationChoice | None) -> None:
            if choice == "open":
                self._open(key)
            elif choice == "leave":
                self._leave(invitation.conversation.name, one_line(invitation.name, 40))
            else:
                self._say(f"{invitation.by} invited you to a group: it waits in the list")

        self.app.push_screen(InvitationScreen(invitation, self.me), chosen)
