"""Shared fixtures for tests that talk to the WaveSpeed emulator over loopback HTTP.

conftest.py shares the fixtures with every test module; the helpers (``make_client``,
``run``, ``TEST_KEY``) are imported where used. One server per module keeps ffmpeg and
thread start-up out of every test; ``emulator`` resets its faults, counts and account settings
(tier limits, timeouts, upload switches) before and after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from autoscore.emulator import Emulator
from autoscore.music.backends.wavespeed import Clock, RetryPolicy, Timeouts, WaveSpeedBackend

TEST_KEY = "wsk-test-4f1c9a77d0e2b5"
"""A key distinctive enough that finding it in any output is certainly a leak."""

FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05, retry_after_cap=5.0, jitter=0.25)

T = TypeVar("T")


class RecordingClock(Clock):
    """Real time, but every requested sleep is recorded and shortened to at most 10 ms.

    Tests can then check the schedule the client chose (Retry-After honoured, caps held)
    without spending that time.
    """

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))


def make_client(emulator: Emulator, **overrides: Any) -> WaveSpeedBackend:
    """A backend pointed at ``emulator`` with short waits everywhere."""
    options: dict[str, Any] = {
        "api_key": TEST_KEY,
        "base_url": emulator.base_url,
        "retry": FAST_RETRY,
        "timeouts": Timeouts(connect=2.0, submit=10.0, poll=5.0, download=10.0, upload=10.0, job=60.0),
        "clock": RecordingClock(),
        "poll_interval": 0.02,
        "poll_interval_max": 0.05,
        "seed": 7,
    }
    options.update(overrides)
    return WaveSpeedBackend(**options)


def run(coro: Coroutine[Any, Any, T], backend: Any = None) -> T:
    """Run one coroutine in a fresh loop, closing ``backend``'s connections afterwards."""

    async def wrapped() -> T:
        try:
            return await coro
        finally:
            if backend is not None:
                await backend.aclose()

    return asyncio.run(wrapped())


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[Emulator]:
    with Emulator(latency=0.1, seed=1, api_key=TEST_KEY) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    emulator_server.reset_settings()
    emulator_server.latency = 0.1
    emulator_server.fail_rate = 0.0
    yield emulator_server
    emulator_server.reset()
    emulator_server.reset_settings()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
