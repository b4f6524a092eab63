"""The dispatch table covers the protocol: a frame the codec accepts always has a handler."""

from __future__ import annotations

import typing

from securechat.protocol import frames as F
from securechat.server.app import RelayServer


async def test_every_client_frame_has_a_handler(relay: RelayServer) -> None:
    """A frame added to the protocol but not to the table would be refused as not valid."""
    assert relay.dispatcher.frame_types == set(typing.get_args(F.ClientFrame))
