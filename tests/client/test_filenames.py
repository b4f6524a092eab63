"""Received file names are untrusted: each rule that keeps them harmless."""

from __future__ import annotations

import pytest

from securechat.client.filenames import numbered, sanitise_filename


@pytest.mark.parametrize(
    ("hostile", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/absolute/path.txt", "path.txt"),
        (".bashrc", "bashrc"),
        ("...", "download"),
        ("", "download"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1.log", "_com1.log"),
        ("a\x00b\x1b[2Jc.txt", "a_b_[2Jc.txt"),
        ("report\u202efdp.exe", "reportfdp.exe"),
        ('what?*<>|".txt', "what______.txt"),
        ("ordinary name.pdf", "ordinary name.pdf"),
    ],
)
def test_sanitise(hostile: str, safe: str) -> None:
    """No directories, hidden names, device names, control or bidi characters survive."""
    assert sanitise_filename(hostile) == safe


def test_long_names_keep_their_extension() -> None:
    """A 1,000-character name is cut, not its type."""
    name = sanitise_filename("x" * 1000 + ".jpeg")
    assert len(name) <= 200 and name.endswith(".jpeg")


def test_numbered_names() -> None:
    """Collisions get a counter before the extension."""
    assert numbered("a.txt", 0) == "a.txt"
    assert numbered("a.txt", 2) == "a (2).txt"
    assert numbered("archive", 1) == "archive (1)"


def test_offer_with_a_path_in_its_file_id_is_refused() -> None:
    """A peer cannot smuggle `../` into the name of the local part file."""
    from securechat.client import payloads as P
    from securechat.errors import ProtocolError

    hostile = P.encode(P.FileOffer(manifest=b"m", blob_id="./../../../etc/x", ts=1.0))
    with pytest.raises(ProtocolError):
        P.decode_inner(hostile)
