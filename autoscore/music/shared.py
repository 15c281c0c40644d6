"""What a job shares with jobs in other processes, set by whoever runs it.

A job on its own (a terminal, a script, a local batch) shares the cache folder through
claim files and the account through its process's ``AccountGate``. A job run by a
cluster worker shares more: its claims live in the cluster's locks, and every
submission holds a place under one cluster-wide semaphore sized to the account. Those
are not the user's choices (they are not in ``ScoreOptions``), they come with where the
job runs, so the worker sets them around each file with ``sharing``, and the two places
that build a job's cache and backend read them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from .backends.retry import AccountLease
from .claims import ClaimBoard, TaskNotes

__all__ = ["Sharing", "acquired_in_thread", "current_sharing", "sharing"]


@dataclass(frozen=True)
class Sharing:
    claims: Callable[[TaskNotes], ClaimBoard] | None = None
    """Makes the board of who makes which chunk, given the cache's task notes; None: the
    cache's own (claim files, or this process)."""
    lease: AccountLease | None = None
    """A place under the account's limit shared beyond this process; None: this process's gate only."""


T = TypeVar("T")

_ALONE = Sharing()
_CURRENT: contextvars.ContextVar[Sharing | None] = contextvars.ContextVar("autoscore_sharing", default=None)


def current_sharing() -> Sharing:
    return _CURRENT.get() or _ALONE


@contextlib.contextmanager
def sharing(shared: Sharing) -> Iterator[None]:
    """Jobs started in this block (this thread, and tasks it starts) share ``shared``."""
    token = _CURRENT.set(shared)
    try:
        yield
    finally:
        _CURRENT.reset(token)


async def acquired_in_thread(acquire: Callable[[], T], give_back: Callable[[T], None]) -> T:
    """``acquire()`` in a thread (a claim or a place that costs a network call), handing what
    it wins to ``give_back`` if the caller was cancelled meanwhile.

    The thread cannot be stopped, and a cancelled caller never sees its result: left held,
    a claim or an account place would keep everyone else waiting until its lease expired.
    What counts as won is whatever is truthy (a claim, True).
    """
    lock = threading.Lock()
    state = {"abandoned": False, "won": False}
    won: list[T] = []

    def attempt() -> T:
        got = acquire()
        with lock:
            if got and state["abandoned"]:
                give_back(got)
            elif got:
                state["won"] = True
                won.append(got)
        return got

    try:
        return await asyncio.to_thread(attempt)
    except asyncio.CancelledError:
        with lock:
            state["abandoned"] = True
            lost = list(won) if state["won"] else []
        for got in lost:
            give_back(got)
        raise
