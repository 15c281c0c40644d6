"""A process being shut down stops the work of its jobs, so that they clean up on their way out.

A Ctrl-C reaches the main thread, where it unwinds a job's ``with`` blocks: its ``.part``
output and scratch folder go. A Dask worker being closed runs its files in other threads,
which nothing interrupts; the process is killed a few seconds later and leaves them
behind. So whoever closes such a process calls ``stop_all``, and each kind of running
work has registered how it is stopped: ffmpegs are terminated (``media.ffmpeg``), a
job's requests are cancelled (``music.generate``). Both make the job raise, and its own
cleanup runs as after any failure. Nothing is started once a stop is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

__all__ = ["on_stop", "register", "stop_all", "stopping", "wait_idle", "working"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_reason: list[str] = []
_callbacks: dict[int, Callable[[str], None]] = {}
_idle = threading.Condition()
_working = 0


def stop_all(reason: str) -> None:
    """Stop every job of this process; ``reason`` goes into their error messages."""
    with _lock:
        if not _reason:
            _reason.append(reason)
        callbacks = list(_callbacks.values())
    for callback in callbacks:
        try:
            callback(reason)
        except Exception:
            log.debug("a stop callback failed", exc_info=True)


def stopping() -> str | None:
    """Why ``stop_all`` was called, or None."""
    return _reason[0] if _reason else None


def register(callback: Callable[[str], None]) -> None:
    """``callback(reason)`` stops work of this kind for as long as the process lives."""
    with _lock:
        _callbacks[id(callback)] = callback


@contextlib.contextmanager
def on_stop(callback: Callable[[str], None]) -> Iterator[None]:
    """``callback(reason)`` is how the work inside the block stops; called at once if a stop
    was already asked for."""
    with _lock:
        token = id(callback)
        _callbacks[token] = callback
        already = _reason[0] if _reason else None
    try:
        if already is not None:
            callback(already)
        yield
    finally:
        with _lock:
            _callbacks.pop(token, None)


@contextlib.contextmanager
def working() -> Iterator[None]:
    """A job runs in this block; ``wait_idle`` waits for every such block to end."""
    global _working
    with _idle:
        _working += 1
    try:
        yield
    finally:
        with _idle:
            _working -= 1
            _idle.notify_all()


def wait_idle(timeout: float) -> bool:
    """Wait until no job is working (their cleanup done), at most ``timeout`` s; True if none is.

    Whoever shuts the process down waits here before closing what the jobs' cleanup still
    needs (a Dask worker's connection, which releases their claims)."""
    with _idle:
        return _idle.wait_for(lambda: _working == 0, timeout)
