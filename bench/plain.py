"""The honest floor: a plain websockets forwarder, one receive and one send per message.

The relay's headline baseline (issue 21). `bare.py` speaks the whole protocol
(`accepted`, `deliver`, acks) and costs about as much as the relay's own
work, so a ratio against it hides where the relay stands. This server does
what no relay can do with less: it reads the recipient's name from a message
and writes the same bytes to that connection, unchanged. The first message
on a connection names its user (a `login` frame answered by `session`, so
the load generator opens sessions the same way everywhere); nothing is
acknowledged, validated, stored or answered after that. The load generator
counts the forwarded `send` frame as the delivery and as the sender's
`accepted` (docs: bench/README.md).

Run: python -m bench.plain --port 8767
"""

from __future__ import annotations

import argparse
import asyncio

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from bench.bare import serve_until_stopped


class _To(msgspec.Struct):
    """Only the field a forwarder must read; msgspec skips the rest of the frame. A group
    message names every other member: the same bytes go to each, a send per copy."""

    to: str | list[str]


class _Login(msgspec.Struct):
    rid: int
    username: str


_decode_to = msgspec.json.Decoder(_To).decode
_decode_login = msgspec.json.Decoder(_Login).decode


class Forwarder:
    def __init__(self) -> None:
        self.online: dict[str, ServerConnection] = {}

    async def handle(self, ws: ServerConnection) -> None:
        login = _decode_login(await ws.recv(decode=False))
        name = login.username
        self.online[name] = ws
        await ws.send(b'{"type":"session","rid":%d}' % login.rid, text=True)
        online = self.online
        try:
            while True:
                # Bytes in, the same bytes out as a text frame: no UTF-8 round trip.
                message = await ws.recv(decode=False)
                to = _decode_to(message).to
                for recipient in (to,) if isinstance(to, str) else to:
                    other = online.get(recipient)
                    if other is not None:
                        await other.send(message, text=True)
        except ConnectionClosed:
            pass
        finally:
            if online.get(name) is ws:
                del online[name]


async def main(port: int) -> None:
    forwarder = Forwarder()
    await serve_until_stopped(forwarder.handle, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", help="ignored: the same command line as bare.py")
    args = parser.parse_args()
    asyncio.run(main(args.port))
