"""The cluster's share of a job: one account limit for all workers, and one maker per chunk.

Both live on the Dask scheduler, so they reach every worker on every machine:

* ``ClusterLease``: a place under a ``distributed.Semaphore`` named after the account (a
  hash of the API base and key, never the key) and sized to ``--concurrency``. A worker
  holds one from submitting a task until the task ends, so the whole cluster never has
  more tasks running on the account than that.
* ``LockClaims``: a ``distributed.Lock`` per chunk key, taken before a chunk is paid for;
  a worker that finds it taken waits for the cache entry instead. The provider's task id
  goes into the shared cache's task notes (``<key>.task`` beside the entry) as soon as it
  is known, and stays there until the chunk is in the cache: not in the scheduler, so it
  survives a scheduler (or a ``local:N`` batch) that stops too.

Leases of both are held by the worker's connection to the scheduler and refreshed while
it lives; when a worker dies they expire after ``distributed.scheduler.locks.lease-timeout``
(30 s by default), and the next worker to claim the chunk finds the task note and collects
that task instead of buying it again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from ..music.claims import Claim, TaskNotes
from ..music.shared import acquired_in_thread

__all__ = ["ClusterLease", "LockClaims", "account_name"]


def account_name(base_url: str, key: str, leases: int) -> str:
    """The semaphore's name: one per account and size (Dask refuses one name with two sizes)."""
    digest = hashlib.sha256(f"{base_url}\n{key}".encode()).hexdigest()[:20]
    return f"autoscore-account-{digest}-{leases}"


class ClusterLease:
    """``AccountLease`` over a Dask semaphore; used from a job's own event loop thread.

    What the account answers (a 429, a completed task) goes to ``tell``, which the worker
    sends to the submitting process: there ``account.ClusterAccount`` learns the account's
    limit for the whole cluster and holds back the semaphore's spare places. One Dask
    ``Semaphore`` per name serves every file of a worker process: each instance keeps a
    refresh callback on the worker's loop for as long as the process lives.
    """

    _semaphores: ClassVar[dict[str, Any]] = {}
    _made: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str, leases: int, tell: Callable[[str], None] | None = None) -> None:
        from distributed import Semaphore

        with self._made:
            if name not in self._semaphores:
                self._semaphores[name] = Semaphore(max_leases=leases, name=name)
            self.semaphore = self._semaphores[name]
        self.tell = tell or (lambda _what: None)

    async def acquire(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            got = await acquired_in_thread(functools.partial(self._try, step),
                                           lambda _won: self.release(succeeded=False))
            if got:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _try(self, timeout: float) -> bool:
        return bool(self.semaphore.acquire(timeout=timeout))

    def release(self, *, succeeded: bool) -> None:
        with contextlib.suppress(Exception):  # an expired lease: the scheduler already took it back
            self.semaphore.release()
        if succeeded:
            self.tell("succeeded")

    def refused(self) -> None:
        self.release(succeeded=False)
        self.tell("refused")


class LockClaims:
    """``ClaimBoard`` over one Dask lock per chunk key; the task notes are the cache's."""

    def __init__(self, notes: TaskNotes, prefix: str = "autoscore-chunk") -> None:
        self.notes, self.prefix = notes, prefix

    def claim(self, key: str) -> Claim | None:
        from distributed import Lock

        lock = Lock(f"{self.prefix}-{key}")
        if not lock.acquire(blocking=False):
            _forget(lock)
            return None
        return _LockClaim(lock, key, self.notes)


class _LockClaim(Claim):
    def __init__(self, lock: Any, key: str, notes: TaskNotes) -> None:
        self.lock, self.open = lock, True
        super().__init__(key, notes)

    def _unlock(self) -> None:
        if self.open:
            self.open = False
            with contextlib.suppress(Exception):  # expired while we worked: nothing left to release
                self.lock.release()
            _forget(self.lock)


def _forget(lock: Any) -> None:
    """Stop the lease refresh Dask starts for every Lock object, which would otherwise keep it
    (and a callback on the worker's loop) alive for as long as the worker runs."""
    callback = getattr(lock, "refresh_callback", None)
    if callback is not None and lock.loop is not None:
        with contextlib.suppress(Exception):
            lock.loop.add_callback(callback.stop)
