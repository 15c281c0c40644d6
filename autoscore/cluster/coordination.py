"""The cluster's share of a job: one account limit for all workers, and one maker per chunk.

Both live on the Dask scheduler, so they reach every worker on every machine:

* ``ClusterLease``: a place under a ``distributed.Semaphore`` named after the account (a
  hash of the API base and key, never the key) and sized to ``--concurrency``. A worker
  holds one from submitting a task until the task ends, so the whole cluster never has
  more tasks running on the account than that.
* ``LockClaims``: a ``distributed.Lock`` per chunk key, taken before a chunk is paid for;
  a worker that finds it taken waits for the cache entry instead. The provider's task id
  goes into a ``distributed.Variable`` under the key as soon as it is known and stays
  there until the chunk is in the shared cache.

Leases of both are held by the worker's connection to the scheduler and refreshed while
it lives; when a worker dies they expire after ``distributed.scheduler.locks.lease-timeout``
(30 s by default), and the next worker to claim the chunk finds the task id and collects
that task instead of buying it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

from ..music.claims import Claim

__all__ = ["ClusterLease", "LockClaims", "account_name"]


def account_name(base_url: str, key: str, leases: int) -> str:
    """The semaphore's name: one per account and size (Dask refuses one name with two sizes)."""
    digest = hashlib.sha256(f"{base_url}\n{key}".encode()).hexdigest()[:20]
    return f"autoscore-account-{digest}-{leases}"


class ClusterLease:
    """``AccountLease`` over a Dask semaphore; used from a job's own event loop thread.

    What the account answers (a 429, a completed task) goes to ``tell``, which the worker
    sends to the submitting process: there ``account.ClusterAccount`` learns the account's
    limit for the whole cluster and holds back the semaphore's spare places.
    """

    def __init__(self, name: str, leases: int, tell: Callable[[str], None] | None = None) -> None:
        from distributed import Semaphore

        self.semaphore = Semaphore(max_leases=leases, name=name)
        self.tell = tell or (lambda _what: None)

    async def acquire(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            attempt = asyncio.ensure_future(asyncio.to_thread(self.semaphore.acquire, timeout=step))
            try:
                got = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The thread cannot be stopped; if it gets the lease after all, hand it back.
                attempt.add_done_callback(self._give_back)
                raise
            if got:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _give_back(self, attempt: asyncio.Future[Any]) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result():
            self.release(succeeded=False)

    def release(self, *, succeeded: bool) -> None:
        with contextlib.suppress(Exception):  # an expired lease: the scheduler already took it back
            self.semaphore.release()
        if succeeded:
            self.tell("succeeded")

    def refused(self) -> None:
        self.release(succeeded=False)
        self.tell("refused")


class LockClaims:
    """``ClaimBoard`` over Dask locks, with the task id in a Dask variable beside each."""

    def __init__(self, prefix: str = "autoscore-chunk") -> None:
        self.prefix = prefix

    def claim(self, key: str) -> Claim | None:
        from distributed import Lock, Variable

        lock = Lock(f"{self.prefix}-{key}")
        if not lock.acquire(blocking=False):
            return None
        record = Variable(f"{self.prefix}-task-{key}")
        try:
            inherited = record.get(timeout=0.5)
        except TimeoutError:
            inherited = None
        except BaseException:
            lock.release()
            raise
        return _LockClaim(lock, record, inherited if isinstance(inherited, str) and inherited else None)


class _LockClaim(Claim):
    def __init__(self, lock: Any, record: Any, inherited: str | None) -> None:
        super().__init__(inherited)
        self.lock, self.record_var, self.open = lock, record, True

    def record(self, task_id: str) -> None:
        self.record_var.set(task_id)

    def release(self, done: bool = True) -> None:
        if done:
            with contextlib.suppress(Exception):
                self.record_var.delete()
        if self.open:
            self.open = False
            with contextlib.suppress(Exception):  # expired while we worked: nothing left to release
                self.lock.release()
