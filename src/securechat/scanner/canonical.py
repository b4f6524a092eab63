"""Google Safe Browsing URL canonicalisation, suffix/prefix expressions and hashes.

Pure: strings and bytes in, strings and bytes out. The rules are those of the
Safe Browsing v4 "URLs and Hashing" document: strip tab/CR/LF and the fragment,
percent-unescape until stable, normalise the host (dots, IP forms, case, IDN),
resolve the path, then percent-escape bytes <= 32, >= 127, '#' and '%'. The port
and any user:password@ are dropped, as Safe Browsing does.

Work happens on bytes because an escape like %80 is a byte, not a character.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import idna

from securechat.scanner.errors import InvalidURL

__all__ = [
    "PREFIX_LENGTH",
    "CanonicalURL",
    "canonicalize",
    "expressions",
    "full_hash",
    "hash_prefix",
    "parse_canonical",
    "parse_ipv4",
    "split_url",
    "url_key",
]

PREFIX_LENGTH = 4

_SCHEME_RE = re.compile(rb"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")
# "name:" followed by something that is not a port: a scheme without "//".
_OPAQUE_SCHEME_RE = re.compile(rb"^([a-zA-Z][a-zA-Z0-9+.\-]*):(?!\d*(?:[/?]|$))")
#: Schemes whose URLs browsers parse with the WHATWG "special" rules (a backslash is a slash).
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_IPV4_PART_RE = re.compile(r"^(?:0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class SplitURL:
    """A URL cut into its parts, before any unescaping (heuristics read these)."""

    scheme: str
    userinfo: str | None
    host: bytes
    port: str | None
    path: bytes
    query: bytes | None


@dataclass(frozen=True, slots=True)
class CanonicalURL:
    """The canonical parts; `str()` gives the Safe Browsing canonical form."""

    scheme: str
    host: str
    path: str
    query: str | None
    is_ip: bool

    def __str__(self) -> str:
        query = "" if self.query is None else "?" + self.query
        return f"{self.scheme}://{self.host}{self.path}{query}"


def _to_bytes(url: str | bytes) -> bytes:
    return url.encode("utf-8") if isinstance(url, str) else bytes(url)


def split_url(url: str | bytes) -> SplitURL:
    """Cut a URL into scheme, userinfo, host, port, path and query; no decoding.

    Leading and trailing spaces, tab/CR/LF and the fragment are removed; a URL
    without a scheme is read as http (as Safe Browsing does for "www.google.com").
    For web schemes a backslash ends the host and separates the path, as in
    every browser (WHATWG URL), so `https://evil.example\\@paypal.com/` is read
    as evil.example, the site it opens, not paypal.com.
    Raises InvalidURL for opaque schemes such as javascript: or data:, and when
    there is no host.
    """
    raw = _to_bytes(url).strip(b" \t\r\n\x0b\x0c")
    raw = raw.replace(b"\t", b"").replace(b"\r", b"").replace(b"\n", b"")
    raw = raw.split(b"#", 1)[0]
    match = _SCHEME_RE.match(raw)
    if match:
        scheme = match.group(1).decode("ascii").lower()
        rest = raw[match.end() :]
    else:
        opaque = _OPAQUE_SCHEME_RE.match(raw)
        if opaque:
            name = opaque.group(1).decode("ascii").lower()
            raise InvalidURL(f"{name}: links cannot be checked as web addresses")
        scheme, rest = "http", raw
    special = scheme in _SPECIAL_SCHEMES
    cut = len(rest)
    for sep in (b"/", b"?", b"\\") if special else (b"/", b"?"):
        pos = rest.find(sep)
        if pos != -1:
            cut = min(cut, pos)
    authority, tail = rest[:cut], rest[cut:]
    path, question, query = tail.partition(b"?")
    if special:
        path = path.replace(b"\\", b"/")
    userinfo: str | None = None
    if b"@" in authority:
        user, _, authority = authority.rpartition(b"@")
        userinfo = user.decode("utf-8", "replace")
    port: str | None = None
    if authority.startswith(b"["):
        end = authority.find(b"]")
        host, after = (
            (authority, b"") if end == -1 else (authority[: end + 1], authority[end + 1 :])
        )
        if after.startswith(b":"):
            port = after[1:].decode("utf-8", "replace")
    else:
        host, colon, port_bytes = authority.partition(b":")
        if colon:
            port = port_bytes.decode("utf-8", "replace")
    if not host:
        raise InvalidURL("the link has no host name")
    return SplitURL(
        scheme=scheme,
        userinfo=userinfo,
        host=host,
        port=port or None,
        path=path or b"/",
        query=query if question else None,
    )


def _unescape_fully(data: bytes) -> bytes:
    while True:
        unescaped = unquote_to_bytes(data)
        if unescaped == data:
            return data
        data = unescaped


def _escape(data: bytes) -> str:
    out = []
    for byte in data:
        if byte <= 32 or byte >= 127 or byte in (0x23, 0x25):
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def parse_ipv4(host: str) -> str | None:
    """Read any legal inet_aton form (decimal, hex, octal, 1-4 parts) as a dotted quad."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART_RE.match(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            values.append(int(part, 8))
        else:
            values.append(int(part))
    last_bits = 8 * (5 - len(parts))
    if any(v > 255 for v in values[:-1]) or values[-1] >= 1 << last_bits:
        return None
    number = 0
    for value in values[:-1]:
        number = (number << 8) | value
    number = (number << last_bits) | values[-1]
    return ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _canonical_host(raw_host: bytes) -> tuple[str, bool]:
    host = _unescape_fully(raw_host)
    if any(b >= 0x80 for b in host):
        # IDNA 2008 / UTS 46 as browsers read it (faß.de is not fass.de); a name it
        # refuses is no IDN, and its bytes get escaped below.
        with contextlib.suppress(UnicodeError, idna.IDNAError):
            host = idna.encode(host.decode("utf-8"), uts46=True, transitional=False)
    host = re.sub(rb"\.{2,}", b".", host.strip(b"."))
    text = host.decode("latin-1").lower()
    if text.startswith("[") and text.endswith("]"):
        return text, True
    ip = parse_ipv4(text)
    if ip is not None:
        return ip, True
    return _escape(text.encode("latin-1")), False


def _canonical_path(raw_path: bytes) -> str:
    path = _unescape_fully(raw_path)
    segments: list[bytes] = []
    pieces = path.split(b"/")
    for piece in pieces[1:] if path.startswith(b"/") else pieces:
        if piece in (b"", b"."):
            continue
        if piece == b"..":
            if segments:
                segments.pop()
            continue
        segments.append(piece)
    trailing = path.endswith(b"/") or pieces[-1] in (b".", b"..")
    joined = b"/" + b"/".join(segments)
    if segments and trailing:
        joined += b"/"
    return _escape(joined)


def parse_canonical(url: str | bytes) -> CanonicalURL:
    """Canonicalise a URL and keep its parts."""
    parts = split_url(url)
    host, is_ip = _canonical_host(parts.host)
    if not host:
        raise InvalidURL("the link has no host name")
    query = None if parts.query is None else _escape(_unescape_fully(parts.query))
    return CanonicalURL(
        scheme=parts.scheme,
        host=host,
        path=_canonical_path(parts.path),
        query=query,
        is_ip=is_ip,
    )


def canonicalize(url: str | bytes) -> str:
    """The Safe Browsing canonical form of `url` (bytes keep raw octets such as 0x80)."""
    return str(parse_canonical(url))


def expressions(url: str | bytes | CanonicalURL) -> list[str]:
    """The host-suffix / path-prefix expressions Safe Browsing checks, most specific first."""
    canon = url if isinstance(url, CanonicalURL) else parse_canonical(url)
    hosts = [canon.host]
    if not canon.is_ip:
        labels = canon.host.split(".")
        for start in range(max(len(labels) - 5, 1), len(labels) - 1):
            hosts.append(".".join(labels[start:]))
    paths: list[str] = []
    if canon.query is not None:
        paths.append(f"{canon.path}?{canon.query}")
    paths.append(canon.path)
    directories = canon.path.split("/")[1:-1]
    prefix = "/"
    paths.append(prefix)
    for directory in directories[:3]:
        prefix += directory + "/"
        paths.append(prefix)
    unique_paths = list(dict.fromkeys(paths))
    return [host + path for host in hosts for path in unique_paths]


def full_hash(expression: str) -> bytes:
    """SHA-256 of one expression (expressions are ASCII after canonicalisation)."""
    return hashlib.sha256(expression.encode("ascii")).digest()


def hash_prefix(digest: bytes, length: int = PREFIX_LENGTH) -> bytes:
    """The leading `length` bytes of a full hash."""
    return digest[:length]


def url_key(canonical_url: str) -> bytes:
    """Cache key of a canonical URL: its SHA-256, so stores never hold the URL itself."""
    return hashlib.sha256(canonical_url.encode("ascii")).digest()
