"""The account's limit, learnt for the whole cluster by the process that submitted the batch.

The workers' semaphore has a fixed size (``--concurrency``, default 8), but a new
WaveSpeed account runs only about two tasks at once. Each worker's own ``AccountGate``
learns from its 429s, yet two workers that each learn "two" still send four. So the
workers also report what the account answers (a 429, a completed task), and this
process keeps one limit for the cluster, by the same rule as the gate: a 429 lowers it to
what the workers were running then, at most half of it, once per round; a limit's worth
of completed tasks raises it by one, up to the size. The semaphore's places above the
limit are *parked*: held by this process, so no worker can take them, and handed back
as the limit grows or when the batch ends (or expire with this process, like any lease).
Two batches on one account at once would park twice over and starve the workers, so
only the batch holding the account's ``-parker`` lock parks; the others learn and wait
their turn.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

__all__ = ["ClusterAccount"]

PARK_STEP = 0.2
"""Seconds a parking attempt waits for a place to come free before looking at events again."""


class ClusterAccount:
    def __init__(self, client: Any, name: str, size: int) -> None:
        from distributed import Lock, Semaphore

        self.semaphore = Semaphore(max_leases=size, name=name, scheduler_rpc=client.scheduler,
                                   loop=client.loop)
        self.parker = Lock(f"{name}-parker", scheduler_rpc=client.scheduler, loop=client.loop)
        self.parking = False
        """Whether this batch holds the parker lock."""
        self.size = size
        self.limit = size
        self.parked = 0
        self.refusals = 0
        self._successes = 0
        self._lowered = False
        """Lowered since the last completed task: later 429s of the same round teach nothing new."""
        self._events: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="autoscore-account", daemon=True)
        self._thread.start()

    def answer(self, what: str) -> None:
        """A worker's report: ``refused`` (a 429) or ``succeeded`` (a task completed)."""
        self._events.put(what)

    def close(self) -> None:
        self._events.put("stop")
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while True:
                try:
                    what = self._events.get(timeout=PARK_STEP if self.parked == self.size - self.limit else 0)
                except queue.Empty:
                    what = ""
                if what == "stop":
                    break
                if what:
                    self._learn(what)
                self._park()
        finally:
            while self.parked:
                with contextlib.suppress(Exception):
                    self.semaphore.release()
                self.parked -= 1
            if self.parking:
                with contextlib.suppress(Exception):
                    self.parker.release()
            for held in (self.semaphore, self.parker):  # their lease refresh would outlive the batch
                callback = getattr(held, "refresh_callback", None)
                if callback is not None:
                    with contextlib.suppress(Exception):
                        held.loop.add_callback(callback.stop)

    def _learn(self, what: str) -> None:
        if what == "succeeded":
            self._lowered = False
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.size:
                self.limit += 1
                self._successes = 0
        elif what == "refused":
            self.refusals += 1
            if self._lowered:
                return
            try:
                running = max(0, int(self.semaphore.get_value()) - self.parked)
            except Exception:
                running = self.limit // 2
            self.limit = max(1, min(self.limit // 2, running))
            self._lowered = True
            self._successes = 0

    def _park(self) -> None:
        target = self.size - self.limit
        if not self.parking:
            if target == 0:
                return
            try:
                self.parking = bool(self.parker.acquire(blocking=False))
            except Exception:
                self.parking = False
            if not self.parking:
                time.sleep(PARK_STEP)  # another batch parks for this account
                return
        while self.parked > target:
            with contextlib.suppress(Exception):
                self.semaphore.release()
            self.parked -= 1
        if self.parked < target:
            try:
                got = self.semaphore.acquire(timeout=PARK_STEP)
            except Exception:
                got = False
            self.parked += bool(got)
