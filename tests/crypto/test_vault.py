"""Vault key wrapping, recovery codes, record sealing and blind-index search tokens."""

from __future__ import annotations

import pytest

from securechat.crypto import (
    AuthenticationFailed,
    InvalidKeyMaterial,
    RecordCipher,
    ScryptParams,
    UnsupportedVersion,
    VaultHeader,
    WrongPassword,
    generate_recovery_code,
    is_recovery_code,
    primitives,
    recovery_server_token,
    recovery_vault_secret,
    search_tokens,
)
from securechat.crypto.vault import DEFAULT_SCRYPT

CHEAP = ScryptParams(log2_n=10, r=8, p=1)


@pytest.fixture(scope="module")
def code() -> str:
    return generate_recovery_code()


@pytest.fixture(scope="module")
def vault(code: str) -> tuple[VaultHeader, bytes]:
    return VaultHeader.create("correct horse", code, CHEAP)


def test_password_unlock(vault: tuple[VaultHeader, bytes]) -> None:
    """The password opens the serialised header and yields the vault key."""
    header, key = vault
    assert VaultHeader.from_bytes(header.to_bytes()).unlock_password("correct horse") == key


def test_wrong_password(vault: tuple[VaultHeader, bytes]) -> None:
    """A wrong password raises WrongPassword, not a generic authentication error."""
    with pytest.raises(WrongPassword):
        vault[0].unlock_password("battery staple")


def test_recovery_unlock(vault: tuple[VaultHeader, bytes], code: str) -> None:
    """The recovery code opens the vault, typed in lower case and without dashes too."""
    header, key = vault
    assert header.unlock_recovery(code) == key
    assert header.unlock_recovery(code.replace("-", "").lower()) == key
    with pytest.raises(WrongPassword):
        header.unlock_recovery(generate_recovery_code())
    with pytest.raises(WrongPassword):
        header.unlock_recovery("not a code")


def test_rewrap_password_keeps_key(vault: tuple[VaultHeader, bytes], code: str) -> None:
    """Changing the password keeps the vault key and the recovery path working."""
    header, key = vault
    changed = header.rewrap_password(key, "new password")
    assert changed.unlock_password("new password") == key
    assert changed.unlock_recovery(code) == key
    with pytest.raises(WrongPassword):
        changed.unlock_password("correct horse")


def test_rewrap_recovery_keeps_key(vault: tuple[VaultHeader, bytes], code: str) -> None:
    """A new recovery code replaces the old one; the password still works."""
    header, key = vault
    new_code = generate_recovery_code()
    changed = header.rewrap_recovery(key, new_code)
    assert changed.unlock_recovery(new_code) == key
    assert changed.unlock_password("correct horse") == key
    with pytest.raises(WrongPassword):
        changed.unlock_recovery(code)


def test_rewrap_refuses_foreign_key(vault: tuple[VaultHeader, bytes]) -> None:
    """Rewrapping with a key that is not this vault's would lock the user out: refused."""
    with pytest.raises(InvalidKeyMaterial):
        vault[0].rewrap_password(bytes(32), "x")


def test_cost_parameters_live_in_header(vault: tuple[VaultHeader, bytes]) -> None:
    """Raising the scrypt cost on rewrap is recorded in the header, and unlock follows it."""
    header, key = vault
    stronger = ScryptParams(log2_n=11, r=8, p=1)
    changed = VaultHeader.from_bytes(header.rewrap_password(key, "pw", stronger).to_bytes())
    assert changed.params == stronger
    assert changed.unlock_password("pw") == key


def test_doctored_parameters(vault: tuple[VaultHeader, bytes]) -> None:
    """A header edited to absurd or different scrypt costs is refused or fails to open."""
    data = bytearray(vault[0].to_bytes())
    data[2] = 40
    with pytest.raises(InvalidKeyMaterial):
        VaultHeader.from_bytes(bytes(data))
    data[2] = 11
    with pytest.raises(WrongPassword):
        VaultHeader.from_bytes(bytes(data)).unlock_password("correct horse")


def test_header_versioned(vault: tuple[VaultHeader, bytes]) -> None:
    """Unknown header versions and truncation raise specific errors."""
    data = vault[0].to_bytes()
    with pytest.raises(UnsupportedVersion):
        VaultHeader.from_bytes(data[:1] + b"\x05" + data[2:])
    with pytest.raises(InvalidKeyMaterial):
        VaultHeader.from_bytes(data[:-1])


def test_default_cost() -> None:
    """The production cost (about 0.4 s) is what a header gets by default."""
    header, key = VaultHeader.create("pw", generate_recovery_code())
    assert header.params == DEFAULT_SCRYPT == ScryptParams(17, 8, 1)
    assert header.unlock_password("pw") == key


def test_recovery_code_shape() -> None:
    """Codes are 24 Crockford base32 characters in six dash-separated groups."""
    code = generate_recovery_code()
    groups = code.split("-")
    assert len(groups) == 6 and all(len(g) == 4 for g in groups)
    assert is_recovery_code(code) and is_recovery_code(code.lower().replace("-", " "))
    assert not is_recovery_code(code[:-1]) and not is_recovery_code(code + "A")
    assert not is_recovery_code(code[:-1] + "U"), "U is not in the Crockford alphabet"
    assert generate_recovery_code() != code


def test_crockford_look_alikes() -> None:
    """O, I and L are read as 0, 1 and 1, so a misread code still works."""
    code = "0123-4567-89AB-CDEF-GHJK-MNPQ"
    assert recovery_vault_secret("O123-4567-89AB-CDEF-GHJK-MNPQ") == recovery_vault_secret(code)
    assert recovery_server_token("0L23-4567-89AB-CDEF-GHJK-MNPQ") == recovery_server_token(code)


def test_server_token_independent_of_vault_secret() -> None:
    """The relay's token neither equals nor derives the vault secret (distinct HKDF labels)."""
    code = generate_recovery_code()
    token, secret = recovery_server_token(code), recovery_vault_secret(code)
    assert token != secret
    for label in (b"securechat recovery vault-secret v1", b"securechat recovery server-token v1"):
        assert primitives.hkdf_sha256(token, b"", label, 32) != secret
        assert primitives.hkdf_sha256(secret, b"", label, 32) != token
    assert primitives.sha256(token) != secret


def test_record_round_trip(vault: tuple[VaultHeader, bytes]) -> None:
    """A sealed record opens under the same kind and id."""
    cipher = RecordCipher(vault[1])
    blob = cipher.seal("message", b"row-1", b"secret text")
    assert cipher.open("message", b"row-1", blob) == b"secret text"


def test_record_cannot_move(vault: tuple[VaultHeader, bytes]) -> None:
    """Kind and id are bound: a blob copied to another row or table does not open."""
    cipher = RecordCipher(vault[1])
    blob = cipher.seal("message", b"row-1", b"secret text")
    for kind, record_id in (("message", b"row-2"), ("contact", b"row-1")):
        with pytest.raises(AuthenticationFailed):
            cipher.open(kind, record_id, blob)


def test_record_tampered_or_damaged(vault: tuple[VaultHeader, bytes]) -> None:
    """Flipped bits, truncation and another vault's key all fail authentication."""
    cipher = RecordCipher(vault[1])
    blob = cipher.seal("message", b"r", b"text")
    for bad in (blob[:-1] + bytes([blob[-1] ^ 1]), blob[:5], b""):
        with pytest.raises(AuthenticationFailed):
            cipher.open("message", b"r", bad)
    with pytest.raises(AuthenticationFailed):
        RecordCipher(bytes(32)).open("message", b"r", blob)


def test_blind_index(vault: tuple[VaultHeader, bytes]) -> None:
    """Equal tokens (any case) give equal 16-byte tags; other tokens and vaults differ."""
    cipher = RecordCipher(vault[1])
    assert cipher.blind_index("Hello") == cipher.blind_index("hello")
    assert len(cipher.blind_index("hello")) == 16
    assert cipher.blind_index("hello") != cipher.blind_index("hell")
    assert RecordCipher(bytes(32)).blind_index("hello") != cipher.blind_index("hello")


def test_search_tokens() -> None:
    """Words are case-folded and every prefix of three or more characters is indexed."""
    tokens = search_tokens("Meet at the Café, OK?")
    assert {"meet", "mee", "at", "the", "café", "caf", "ok"} == tokens
    assert search_tokens("") == set()


def test_search_tokens_bound_long_words() -> None:
    """A very long word yields a bounded number of tokens."""
    assert len(search_tokens("a" * 10_000)) <= 32


def test_scrypt_memory_ceiling() -> None:
    """A header may not ask for more than 1 GiB of scrypt memory, even within each range."""
    with pytest.raises(InvalidKeyMaterial):
        ScryptParams(log2_n=22, r=32, p=1).check()
    ScryptParams(log2_n=20, r=8, p=1).check()
