"""The bcrypt pool: as many threads as asked, each below the event loop's priority."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from securechat.server.passwords import BCRYPT_NICE, PasswordHasher


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
async def test_bcrypt_threads_yield_to_the_event_loop() -> None:
    """A login storm may use every core, but the loop thread wins when both want one."""
    hasher = PasswordHasher(cost=4, workers=2)
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        pool_nice = await asyncio.get_running_loop().run_in_executor(
            hasher._pool, lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        assert await hasher.verify("secret", await hasher.hash("secret"))
    finally:
        hasher.close()
    assert pool_nice == min(19, loop_nice + BCRYPT_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
