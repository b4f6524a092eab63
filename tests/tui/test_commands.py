"""The input-line grammar, without Textual: parsing, errors, masking and completion."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.tui import commands as C

CODE = "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/sharekey bob", C.ShareKey("bob")),
        ("/talk bob", C.Talk("bob")),
        ("/TALK bob", C.Talk("bob")),
        ("/open carol", C.Open("carol")),
        ("/verify bob", C.Verify("bob")),
        ("/trust bob", C.Trust("bob")),
        ("/reject bob", C.Reject("bob")),
        ("/send /tmp/a file.txt", C.SendFile("/tmp/a file.txt")),
        ("/send '/tmp/dropped file.pdf'", C.SendFile("/tmp/dropped file.pdf")),
        ("/send ~/notes.txt", C.SendFile("~/notes.txt")),
        ("/download 2", C.Download(number=2)),
        ("/download Zm9vYmFyYmF6cXV4", C.Download(file_id="Zm9vYmFyYmF6cXV4")),
        ("/download securechat://file/Zm9v_bar-baz", C.Download(file_id="Zm9v_bar-baz")),
        ("/scan http://x.example/a", C.Scan("http://x.example/a")),
        ("/scan --full http://x.example/a", C.Scan("http://x.example/a", full=True)),
        ("/search hello world", C.Search("hello world")),
        ("/delete bob", C.Delete("bob")),
        ("/delete-account", C.DeleteAccount()),
        ("/reset bob ABCD-EFGH pass word", C.Reset("bob", "ABCD-EFGH", "pass word")),
        ("/help", C.Help()),
        ("/quit", C.Quit()),
        ("/group new team bob carol", C.NewGroup("team", ("bob", "carol"))),
        ("/GROUP NEW team bob bob", C.NewGroup("team", ("bob",))),
        ("/invite dave", C.Invite("dave")),
        ("/remove bob", C.Remove("bob")),
        ("/leave", C.Leave()),
        ("/admin carol", C.MakeAdmin("carol")),
        ("/members", C.Members()),
        ("/rename the night shift", C.Rename("the night shift")),
        ("/topic rota for [bold]May[/bold]", C.Topic("rota for [bold]May[/bold]")),
        ("invite dave", C.Message("invite dave")),
        ("leave", C.Message("leave")),
        # The first release's three commands, bare, in exactly their shape.
        ("sharekey bob", C.ShareKey("bob")),
        ("talk bob", C.Talk("bob")),
        (f"reset bob {CODE} pass word", C.Reset("bob", CODE, "pass word")),
        ("reset bob op-Zm9vYmFyYmF6 pass", C.Reset("bob", "op-Zm9vYmFyYmF6", "pass")),
        # Sentences that start with a command word are messages.
        ("hello there", C.Message("hello there")),
        ("search for it", C.Message("search for it")),
        ("send my regards", C.Message("send my regards")),
        ("open the door", C.Message("open the door")),
        ("verify bob", C.Message("verify bob")),
        ("help", C.Message("help")),
        ("talk to bob", C.Message("talk to bob")),
        ("talk", C.Message("talk")),
        ("Talk bob", C.Message("Talk bob")),
        ("reset my password please", C.Message("reset my password please")),
        ("talking is fun", C.Message("talking is fun")),
        # A leading space or `//` sends a line as text.
        (" talk bob", C.Message("talk bob")),
        (" /talk bob", C.Message("/talk bob")),
        ("//shrug", C.Message("/shrug")),
    ],
)
def test_parse(text: str, expected: C.Command) -> None:
    """Slash lines are commands, three bare shapes too; anything else is a message."""
    assert C.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/group", "/group new <name> <user> [<user>...] — " + C.NewGroup.summary),
        ("talk bob", C.BARE_HINT),
        (f"reset bob {CODE} x", C.BARE_HINT),
        (" talk bob", None),
        ("talk to bob", None),
        ("hello", None),
        ("//talk bob", None),
        ("verify bob", "sent as a message; start with `/verify` to run the command"),
        ("search for it", "sent as a message; start with `/search` to run the command"),
        ("reset bob NOTATOKEN s3cret", "sent as a message; start with `/reset` to run the command"),
        ("/talk", "/talk <user> — start an end-to-end session with a user"),
        ("/frob", None),
    ],
)
def test_hint_says_what_enter_will_do(text: str, expected: str | None) -> None:
    """The line under the input warns when Enter would run, or not run, a command."""
    assert C.hint(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("/talk", "missing <user>. Usage: /talk <user>"),
        ("/talk bob carol", "too many arguments"),
        ("/talk B@D", "is not a username"),
        ("/reset bob", "missing <token>, <new_password>"),
        ("/search", "missing <text>"),
        ("/send", "missing <path>"),
        ("/download", "missing <n>. Usage: /download <n>"),
        ("/download 0", "numbered from 1"),
        ("/download ../etc/passwd", "not a file number or id"),
        ("/scan", "missing <url>. Usage: /scan [--full] <url>"),
        ("/scan --fast http://x.example", "`/scan` has no option `--fast`"),
        ("/help me", "takes no arguments"),
        ("/group team bob", "`/group` needs `new`. Usage: /group new <name> <user> [<user>...]"),
        ("/group", "`/group` needs `new`"),
        ("/group new team", "missing <user>. Usage: /group new <name> <user> [<user>...]"),
        ("/group new team bob B@D", "`B@D` is not a username"),
        ("/invite", "missing <user>. Usage: /invite <user>"),
        ("/remove bob carol", "too many arguments"),
        ("/leave now", "takes no arguments"),
        ("/rename", "missing <name>"),
        ("/topic", "missing <text>"),
        ("/tlak bob", "Did you mean `/talk`?"),
        ("/frobnicate", "unknown command `/frobnicate`"),
        ("   ", "type a message"),
    ],
)
def test_parse_errors_say_how_to_fix(text: str, needle: str) -> None:
    """Wrong arguments and unknown commands give the usage line, not a traceback."""
    with pytest.raises(C.ParseError, match=None) as caught:
        C.parse(text)
    assert needle in str(caught.value)


def test_reset_password_is_masked_as_typed_and_never_in_repr() -> None:
    """The third `reset` argument is bullets on screen and absent from reprs.

    A bare line that is not a reset (no token, or sent as text) is shown as it will be sent.
    """
    assert C.mask("/reset alice TOKEN") == "/reset alice TOKEN"
    assert C.mask("/reset alice TOKEN s3cret") == "/reset alice TOKEN ••••••"
    assert C.mask("/reset alice TOKEN s3cret pass") == "/reset alice TOKEN •••••••••••"
    assert C.mask(f"reset alice {CODE} s3cret") == f"reset alice {CODE} ••••••"
    assert C.mask("hello alice TOKEN s3cret") == "hello alice TOKEN s3cret"
    assert "s3cret" not in repr(C.parse("/reset alice TOKEN s3cret"))
    assert C.mask("reset my password please") == "reset my password please"
    assert C.mask(" /reset alice TOKEN s3cret") == " /reset alice TOKEN s3cret"
    assert C.is_secret("reset alice") and C.is_secret("/reset") and not C.is_secret("resetting")


def test_completion_of_words_and_usernames() -> None:
    """Tab completes a command word (always with its slash), then a username."""
    assert C.complete("ta", []) == ["/talk "]
    assert C.complete("de", []) == ["/delete ", "/delete-account "]
    assert C.complete("/sh", []) == ["/sharekey "]
    assert C.complete("talk b", ["bob", "carol", "bea"]) == ["talk bea", "talk bob"]
    assert C.complete("/talk b", ["bob"]) == ["/talk bob"]
    assert C.complete("search b", ["bob"]) == []
    assert C.complete("/invite b", ["bob", "carol"]) == ["/invite bob"]
    assert C.complete("/group new team bob c", ["bob", "carol"]) == ["/group new team bob carol"]
    assert C.complete("/group new c", ["carol"]) == []


def test_send_completes_paths(tmp_path: Path) -> None:
    """Tab after `send` completes file names; directories end in `/`, hidden ones wait for a dot."""
    (tmp_path / "report.pdf").write_text("x")
    (tmp_path / "reports").mkdir()
    (tmp_path / ".secret").write_text("x")
    base = str(tmp_path)
    assert C.complete(f"send {base}/rep", [], C.list_paths) == [
        f"send {base}/report.pdf",
        f"send {base}/reports/",
    ]
    assert C.complete(f"send {base}/", [], C.list_paths) == [
        f"send {base}/report.pdf",
        f"send {base}/reports/",
    ]
    assert C.complete(f"send {base}/.s", [], C.list_paths) == [f"send {base}/.secret"]
    assert C.complete(f"send {base}/rep", [], None) == []
    assert C.complete("send ~/", [], lambda partial: ["~/a"]) == ["send ~/a"]


def test_list_paths_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`~/` lists the home directory but keeps the `~` the user typed."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "notes.txt").write_text("x")
    assert C.list_paths("~/no") == ["~/notes.txt"]


def test_suggest_catches_typos_only() -> None:
    """A near-miss first word gets a suggestion; ordinary words do not."""
    assert C.suggest("tlak") == "talk"
    assert C.suggest("hello") is None


class _Recorder:
    """Stands in for the main screen: records which action a command asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *args: self.calls.append((name, args))


RUNS = {
    "/sharekey bob": ("sharekey", ("bob",)),
    "/talk bob": ("talk", ("bob",)),
    "/open bob": ("open_conversation", ("bob",)),
    "/verify bob": ("verify", ("bob",)),
    "/trust bob": ("trust", ("bob",)),
    "/reject bob": ("reject", ("bob",)),
    "/search hi there": ("search", ("hi there",)),
    "/send ~/a b.txt": ("send_file", ("~/a b.txt",)),
    "/download 2": ("download", (2, "")),
    "/scan --full http://x.example/": ("scan", ("http://x.example/", True)),
    "/delete bob": ("delete_conversation", ("bob",)),
    "/delete-account": ("delete_account", ()),
    "/reset bob op-12345678 new pass": ("reset", ("bob", "op-12345678", "new pass")),
    "/group new team bob carol": ("new_group", ("team", ("bob", "carol"))),
    "/invite dave": ("invite", ("dave",)),
    "/remove bob": ("remove_member", ("bob",)),
    "/leave": ("leave_group", ()),
    "/admin carol": ("make_admin", ("carol",)),
    "/members": ("list_members", ()),
    "/rename night shift": ("rename_group", ("night shift",)),
    "/topic rota": ("set_topic", ("rota",)),
    "/help": ("help", ()),
    "/quit": ("quit", ()),
    "hello there": ("message", ("hello there",)),
}


@pytest.mark.parametrize(("line", "expected"), list(RUNS.items()))
def test_each_command_runs_its_own_action(
    line: str, expected: tuple[str, tuple[object, ...]]
) -> None:
    """A command carries what it does: parsed, it asks the screen for one action."""
    recorder = _Recorder()
    C.parse(line).run(recorder)  # type: ignore[arg-type]
    assert recorder.calls == [expected]


def test_every_registered_command_is_covered_and_documented() -> None:
    """A command written in one place shows up in help, completion and the palette."""
    tested = {line.split()[0].removeprefix("/") for line in RUNS if line.startswith("/")}
    assert tested == set(C.COMMANDS)
    for name, command in C.COMMANDS.items():
        assert command.usage().startswith(f"/{name}") and command.summary
        assert f"/{name} " in C.complete(f"/{name[:2]}", [])
    assert {c.bare_usage() for c in C.COMMANDS.values()} - {None} == {
        "sharekey <user>",
        "talk <user>",
        "reset <user> <token> <new_password>",
    }
    talk = C.Talk.palette(["bob"])
    assert ("Talk to…", "start an end-to-end session with a user", "/talk ") in talk
    assert ("Talk to bob", "start an end-to-end session", C.Talk("bob")) in talk
    assert C.Help.palette([]) == [("Help", "list commands and keys", C.Help())]
    assert C.NewGroup.palette([])[0][2] == "/group new "
