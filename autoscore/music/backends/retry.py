"""When to send, wait and resend: the retry engine, kept apart from the WaveSpeed protocol.

Three pieces, each with its own reason to exist:

* ``RetryPolicy`` spaces out retries of requests that are safe to repeat (polls,
  downloads, uploads): capped exponential backoff with jitter, and a server's
  ``Retry-After`` wins over the schedule, up to a cap.
* ``AccountGate`` keeps a job (or every job in this process that uses one account) under
  the account's limits without knowing them. Provider accounts allow only so many tasks
  running at once and per minute; past that they answer 429. The gate queues
  submissions, keeps an in-flight limit that halves on a 429 and grows back by one
  after a limit's worth of successes (up to ``--concurrency``), and holds every
  submission while the provider has asked us to wait.
* ``PollPacer`` puts a ceiling on polls per second for a whole job, however many tasks
  are in flight, as the provider's docs ask.

The clock is injectable (``Clock``), so tests run the real schedule in milliseconds while
recording what it asked for.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

__all__ = [
    "AccountGate",
    "AccountLease",
    "Clock",
    "PollPacer",
    "RetryPolicy",
    "Throttle",
    "Ticket",
    "account_gate",
    "parse_retry_after",
]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite: garbage
        return None
    return max(0.0, seconds)


class Clock:
    """Time as the client sees it; tests pass one that records sleeps instead of waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How repeatable requests are retried. ``attempts`` counts tries, so 6 means 5 retries."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 20.0
    retry_after_cap: float = 120.0
    """A server asking for more than this is probably wrong; waiting an hour helps nobody.
    Two minutes still covers an account's per-minute window."""
    jitter: float = 0.25
    """Fraction of each delay that is random, so parallel chunks do not retry in lockstep."""

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number ``retry`` (1-based). Jitter only shortens, so ``cap`` holds."""
        raw = min(self.cap, self.base * 2.0 ** (min(retry, 60) - 1))
        return raw * (1.0 - self.jitter * rng.random())

    def hinted(self, retry_after: str | None, now: float) -> tuple[float | None, bool]:
        """The server's wait, capped, and whether the cap cut it (the user is told)."""
        hinted = parse_retry_after(retry_after, now)
        if hinted is None:
            return None, False
        return min(hinted, self.retry_after_cap), hinted > self.retry_after_cap

    def delay(self, retry: int, retry_after: str | None, now: float, rng: random.Random) -> float:
        hinted, _ = self.hinted(retry_after, now)
        return hinted if hinted is not None else self.backoff(retry, rng)


@dataclass(frozen=True)
class Throttle:
    """What a progress display shows while submissions wait on the account's limit."""

    wait: float
    """Seconds until the next try (0 when waiting for a running task to finish)."""
    queued: int
    """Requests waiting to be submitted."""
    limit: int
    """Tasks the gate now lets run at once."""
    running: int
    """Tasks of ours the provider is running now."""


@dataclass(frozen=True)
class Ticket:
    """One submission's place in flight; ``epoch`` tells which limit it was sent under."""

    epoch: int


class AccountLease(Protocol):
    """A place under a limit that reaches beyond this process: a cluster's semaphore.

    The ``AccountGate`` learns one process's share; a lease is what keeps many processes,
    on many machines, under one account's running-task limit together.
    """

    async def acquire(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (None: as long as it takes); False when it ran out."""
        ...

    def release(self, *, succeeded: bool) -> None:
        """The task ended (``succeeded``: completed), or was never made."""
        ...

    def refused(self) -> None:
        """The submission got a 429: no task was made, and the account is fuller than we knew."""
        ...


class AccountGate:
    """An adaptive in-flight limit with a queue, shared by every job that uses one account.

    Thread-safe, because ``batch`` runs its jobs in threads, each with its own event
    loop. A held ticket stands for a task the provider may be running: it is returned
    when the task reaches a terminal status, not when its audio has been downloaded,
    since the account counts running tasks.
    """

    def __init__(self, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_flight = 0
        self.queued = 0
        self._lock = threading.Lock()
        self._epoch = 0
        self._successes = 0
        self._block: tuple[int, float] | None = None
        """(block number, monotonic time it ends) set by a 429; whoever sleeps it out lifts it."""
        self._blocks = 0
        self._wakers: set[Callable[[], None]] = set()

    def set_ceiling(self, ceiling: int) -> None:
        """A later job asked for another ``--concurrency``: the limit never exceeds it."""
        with self._lock:
            self.ceiling = ceiling
            self.limit = min(max(self.limit, 1), ceiling)

    async def acquire(
        self, clock: Clock, *, deadline: float | None, on_wait: Callable[[Throttle], None] | None = None
    ) -> Ticket:
        """Wait for room under the limit and for any wait the provider asked for; raise
        ``TimeoutError`` when ``deadline`` (monotonic seconds) passes first."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.queued += 1
        try:
            while True:
                event = asyncio.Event()

                def wake(event: asyncio.Event = event) -> None:
                    loop.call_soon_threadsafe(event.set)

                with self._lock:
                    block = self._block
                    if block is None and self.in_flight < self.limit:
                        self.in_flight += 1
                        return Ticket(self._epoch)
                    self._wakers.add(wake)
                    now = clock.monotonic()
                    wait = max(0.0, block[1] - now) if block is not None else 0.0
                    throttle = Throttle(wait, self.queued, self.limit, self.in_flight)
                try:
                    if on_wait is not None:
                        on_wait(throttle)
                    remaining = None if deadline is None else deadline - now
                    if remaining is not None and (remaining <= 0 or wait > remaining):
                        raise TimeoutError
                    if block is None:
                        async with asyncio.timeout(remaining):
                            await event.wait()
                    elif block is not None and await _first_of(clock.sleep(wait), event.wait()) == 0:
                        self._lift(block[0])  # we sat out the wait the provider asked for
                finally:
                    with self._lock:
                        self._wakers.discard(wake)
        finally:
            with self._lock:
                self.queued -= 1

    def _lift(self, number: int) -> None:
        with self._lock:
            if self._block is not None and self._block[0] == number:
                self._block = None
            self._wake_all()

    def _wake_all(self) -> None:
        for wake in list(self._wakers):
            wake()

    def release(self, ticket: Ticket, *, succeeded: bool) -> None:
        """The task is over (or was never created); a success may raise the limit by one.

        A task of ours that ended frees a place on the account now, which is usually what
        a 429's Retry-After was estimating (rounded up to whole seconds), so the wait it
        asked for is lifted; if the account is still full, the next submission learns so
        from a 429 that costs nothing.
        """
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            if succeeded:
                self._block = None
            if succeeded and ticket.epoch == self._epoch and self.limit < self.ceiling:
                self._successes += 1
                if self._successes >= self.limit:
                    self.limit += 1
                    self._successes = 0
            self._wake_all()

    def refused(self, ticket: Ticket, wait: float, now: float) -> None:
        """A 429 for ``ticket``'s submission: nothing was created. Lower the limit (once per
        round of submissions sent under the same limit) and hold everyone for ``wait``
        seconds from ``now`` (the clock's monotonic time); an overlapping wait keeps the later end."""
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            if ticket.epoch == self._epoch:
                # What is running now is what the account took; more than that was refused.
                self.limit = max(1, min(self.limit // 2, self.in_flight))
                self._epoch += 1
                self._successes = 0
            if self._block is None or now + wait > self._block[1]:
                self._blocks += 1
                self._block = (self._blocks, now + wait)
            self._wake_all()


async def _first_of(*awaitables: Coroutine[Any, Any, Any]) -> int:
    """Run the awaitables until one finishes; the index of that one (the rest are cancelled)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
    return min(i for i, t in enumerate(tasks) if t in done)


_GATES: dict[tuple[str, str], AccountGate] = {}
_GATES_LOCK = threading.Lock()


def account_gate(base_url: str, key: str, ceiling: int) -> AccountGate:
    """The gate for one account on one service, shared within this process.

    Keyed by a hash of the key, so the key itself is not kept here. A later job may ask
    for another ``--concurrency``; the newest ceiling applies.
    """
    account = hashlib.sha256(key.encode("utf-8")).hexdigest()
    with _GATES_LOCK:
        gate = _GATES.get((base_url, account))
        if gate is None:
            gate = _GATES[(base_url, account)] = AccountGate(ceiling)
        elif gate.ceiling != ceiling:
            gate.set_ceiling(ceiling)
        return gate


class PollPacer:
    """At most ``per_second`` polls in any one-second window across a whole job.

    A window rather than an even spacing: tasks submitted together are first polled
    together without queueing behind each other, while a job with many tasks in flight
    still cannot poll faster than the ceiling.
    """

    def __init__(self, per_second: int) -> None:
        self.per_second = max(1, per_second)
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    async def turn(self, clock: Clock) -> None:
        while True:
            with self._lock:
                now = clock.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) < self.per_second:
                    self._recent.append(now)
                    return
                wait = 1.0 - (now - self._recent[0])
            await clock.sleep(max(wait, 0.001))
