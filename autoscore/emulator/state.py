"""What the emulated service remembers: tasks, the account's usage, renders and uploads.

Everything is timed by the server's own monotonic clock, the way the real service decides
by its clock and not by what a client has seen: a task "runs" from its creation until its
ready time has passed and its render has finished, whether or not anyone polls or
downloads it. That is the clock the account limits and ``Retry-After`` use.

Memory stays bounded on long runs: finished tasks, stored uploads and reused renders are
dropped ``ttl`` seconds after they finished or were stored. Eviction is swept on new
submissions and uploads and only ever looks at the oldest entries (a heap of finish times,
insertion-ordered dicts), so a sweep costs nothing when there is nothing to drop.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import math
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .contract import TIERS, is_number
from .faults import Faults
from .uploads import UploadStore

if TYPE_CHECKING:
    from ..models import Audio

STAT_NAMES = (
    "requests", "submits", "outpaints", "polls", "downloads", "uploads", "unauthorized", "peak_active",
    "accepted", "rate_limited", "peak_running", "upload_puts", "sync_timeouts", "evicted",
)
BODY_LOG_LIMIT = 10_000
"""``submitted_bodies`` keeps the newest this many: a test aid must not grow without end."""
SYNC_STYLES = ("gateway", "envelope")


@dataclass
class Task:
    id: str
    model: str
    output_format: str
    created: float
    created_at: str
    ready_at: float
    done: threading.Event = field(default_factory=threading.Event)
    output: bytes | None = None
    error: str = ""
    inference_ms: int = 0
    released: bool = False
    finished: float | None = None
    """When rendering ended (or the task was failed): None while it still renders."""

    def ends_at(self) -> float | None:
        """When the task stops running by the server's clock; None while still rendering."""
        return None if self.finished is None else max(self.ready_at, self.finished)


@dataclass(frozen=True)
class Refusal:
    """A submission over the account's limits: which limits, and how long until one is admitted."""

    limits: tuple[str, ...]
    wait: float
    message: str

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.wait))


class _Setting:
    """An attribute checked on every assignment, so a running server never holds nonsense."""

    def __init__(self, check: Callable[[Any], bool], rule: str) -> None:
        self.check = check
        self.rule = rule

    def __set_name__(self, owner: type, name: str) -> None:
        self.public = name
        self.private = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj, self.private)

    def __set__(self, obj: Any, value: Any) -> None:
        if not self.check(value):
            raise ValueError(f"{self.public} must be {self.rule}, got {value!r}")
        setattr(obj, self.private, value)


def _limit(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _positive(value: Any) -> bool:
    return is_number(value) and value > 0


class State:
    """The service's memory and its account rules; ``Emulator`` adds the sockets around it."""

    latency = _Setting(lambda v: is_number(v) and v >= 0, "a number of seconds >= 0")
    fail_rate = _Setting(lambda v: is_number(v) and 0 <= v <= 1, "a share from 0 to 1")
    max_running = _Setting(_limit, "None or a whole number >= 1")
    per_minute = _Setting(_limit, "None or a whole number >= 1")
    window = _Setting(_positive, "a number of seconds > 0")
    ttl = _Setting(_positive, "a number of seconds > 0")
    sync_timeout = _Setting(lambda v: v is None or _positive(v), "None or a number of seconds > 0")
    sync_timeout_style = _Setting(lambda v: v in SYNC_STYLES, f"one of {', '.join(SYNC_STYLES)}")
    upload_url_lifetime = _Setting(lambda v: is_number(v) and v >= 0, "a number of seconds >= 0")

    def __init__(self, seed: int, faults: Faults | None, reuse_renders: bool) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._counts: Counter[str] = Counter()
        self._tasks: dict[str, Task] = {}
        self._running: dict[str, Task] = {}
        """Tasks not yet over by the server's clock: what the account's running limit counts."""
        self._accepted: deque[float] = deque()
        """Creation times inside the per-minute window, oldest first."""
        self._ended: list[tuple[float, str]] = []
        """Heap of (end time, task id) for eviction."""
        self._active = 0
        """Tasks created and not yet downloaded (or reported failed): what a client has in flight."""
        self.media = UploadStore()
        self.submitted_bodies: list[dict[str, Any]] = []
        """Every accepted submission's JSON, in order: lets tests check what a client sent."""
        self.submitted_ids: list[str] = []
        """The task id of each entry of ``submitted_bodies``: finds a task whose answer never came."""
        self._workers = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="emu-gen")
        self._renders: OrderedDict[str, tuple[float, bytes]] | None = OrderedDict() if reuse_renders else None
        self.legacy_upload = True
        """False: the multipart route answers 404, as on a deployment that dropped it."""
        self.current_upload = True
        """False: the JSON-ticket route answers 404, as on a deployment that predates it."""

    # -- account -----------------------------------------------------------------------

    @property
    def tier(self) -> str | None:
        return self._tier

    @tier.setter
    def tier(self, name: str | None) -> None:
        """Take on a level's limits (None: no limits); explicit limits may be set after."""
        if name is not None and name not in TIERS:
            raise ValueError(f"Unknown tier {name!r}. Available: {', '.join(sorted(TIERS))}")
        self._tier = name
        limits = TIERS[name] if name is not None else None
        self.max_running = limits.max_running if limits else None
        self.per_minute = limits.per_minute if limits else None

    def _refusal(self, now: float) -> Refusal | None:
        """None when a task may start now, else what blocks it and for how long (lock held)."""
        waits: dict[str, float] = {}
        words: list[str] = []
        cap = self.max_running
        if cap is not None and len(self._running) >= cap:
            # The (n - cap + 1)-th earliest end frees the first slot; a task still rendering
            # past its ready time ends "now" as far as the server can tell.
            ends = sorted(task.ends_at() or max(task.ready_at, now) for task in self._running.values())
            waits["max_running"] = ends[len(ends) - cap] - now
            words.append(f"at most {cap} tasks may run at once ({len(self._running)} running)")
        rate = self.per_minute
        if rate is not None and len(self._accepted) >= rate:
            waits["per_minute"] = self._accepted[len(self._accepted) - rate] + self.window - now
            words.append(f"at most {rate} tasks may start per {self.window:g} s")
        if not waits:
            return None
        wait = max(0.0, *waits.values())
        tier = f" on the {self._tier} level" if self._tier else ""
        message = (f"Too many requests: {' and '.join(words)}{tier} ({', '.join(waits)}). "
                   f"Retry after {max(1, math.ceil(wait))} s.")
        return Refusal(tuple(waits), wait, message)

    def _prune(self, now: float) -> None:
        over = [t.id for t in self._running.values() if (end := t.ends_at()) is not None and end <= now]
        for task_id in over:
            del self._running[task_id]
        while self._accepted and self._accepted[0] <= now - self.window:
            self._accepted.popleft()

    # -- tasks ---------------------------------------------------------------------------

    def new_id(self) -> str:
        with self._lock:
            return uuid.UUID(int=self._rng.getrandbits(128), version=4).hex

    def _decide_failure(self) -> str:
        if self.faults.take("fail_tasks"):
            return self.faults.fail_error
        with self._lock:
            roll = self._rng.random()
        if roll < self.fail_rate:
            return "Inference failed: emulated random failure (transient), please retry."
        return ""

    def create_task(
        self, model: str, fmt: str, make: Callable[[], Audio], body: dict[str, Any], key: str | None = None
    ) -> Task | Refusal:
        """Admit and start a task, or say why the account may not start one now (nothing created)."""
        now = time.monotonic()
        self.sweep(now)
        with self._lock:
            self._prune(now)
            refusal = self._refusal(now)
            if refusal is not None:
                self._counts["rate_limited"] += 1
                return refusal
            task = Task(
                id=self.new_id(),
                model=model,
                output_format=fmt,
                created=now,
                created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                ready_at=now + self.latency,
            )
            self._tasks[task.id] = task
            self._running[task.id] = task
            self._accepted.append(now)
            self._active += 1
            self._counts["accepted"] += 1
            self._counts["peak_active"] = max(self._counts["peak_active"], self._active)
            self._counts["peak_running"] = max(self._counts["peak_running"], len(self._running))
            self.submitted_bodies.append(body)
            self.submitted_ids.append(task.id)
            if len(self.submitted_bodies) > BODY_LOG_LIMIT:
                del self.submitted_bodies[:-BODY_LOG_LIMIT], self.submitted_ids[:-BODY_LOG_LIMIT]
            failure = self._decide_failure()
            if failure:
                task.error = failure
                self._finish(task, now)
        if not failure:
            self._workers.submit(self._render, task, make, key)
        return task

    def _finish(self, task: Task, now: float) -> None:
        with self._lock:
            task.finished = now
            heapq.heappush(self._ended, (task.ends_at() or now, task.id))
        task.done.set()

    def _render(self, task: Task, make: Callable[[], Audio], key: str | None) -> None:
        from ..media.ffmpeg import encode_bytes

        started = time.monotonic()
        try:
            task.output = self._reused(key)
            if task.output is None:
                task.output = encode_bytes(make(), task.output_format)
                self._keep_render(key, task.output, time.monotonic())
        except Exception as exc:  # whatever breaks, the client sees a failed task, like the real thing
            task.error = f"Inference failed: {exc}"
        ended = time.monotonic()
        task.inference_ms = round((ended - started) * 1000)
        self._finish(task, ended)

    def _reused(self, key: str | None) -> bytes | None:
        if self._renders is None or key is None:
            return None
        with self._lock:
            kept = self._renders.get(key)
        return None if kept is None else kept[1]

    def _keep_render(self, key: str | None, data: bytes, now: float) -> None:
        if self._renders is not None and key is not None:
            with self._lock:
                self._renders[key] = (now, data)
                self._renders.move_to_end(key)

    def release(self, task: Task) -> None:
        """The client has what it came for; the task stops counting towards ``peak_active``."""
        with self._lock:
            if not task.released:
                task.released = True
                self._active -= 1

    def task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def status_of(self, task: Task) -> str:
        now = time.monotonic()
        if now - task.created < self.latency / 4:
            return "created"
        end = task.ends_at()
        if end is None or now < end:
            return "processing"
        return "failed" if task.error else "completed"

    def wait_finished(self, task: Task, timeout: float | None) -> bool:
        """For ``enable_sync_mode``: hold the answer until the task is over, or ``timeout``
        seconds after its creation; False when the wait ran out first."""
        deadline = None if timeout is None else task.created + timeout
        if not task.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
            return False
        end = task.ends_at() or time.monotonic()
        if deadline is not None and end > deadline:
            time.sleep(max(0.0, deadline - time.monotonic()))
            return False
        time.sleep(max(0.0, end - time.monotonic()))
        return True

    # -- eviction and counting -------------------------------------------------------------

    def sweep(self, now: float | None = None) -> int:
        """Drop what has outlived ``ttl``: finished tasks, stored uploads, reused renders."""
        now = time.monotonic() if now is None else now
        ttl = self.ttl
        gone = self.media.sweep(now, time.time(), ttl)
        with self._lock:
            while self._ended and self._ended[0][0] + ttl <= now:
                _, task_id = heapq.heappop(self._ended)
                task = self._tasks.pop(task_id, None)
                if task is not None:
                    if not task.released:
                        task.released = True
                        self._active -= 1
                    task.output = None
                    gone += 1
            while self._renders and next(iter(self._renders.values()))[0] + ttl <= now:
                self._renders.popitem(last=False)
                gone += 1
            self._counts["evicted"] += gone
        return gone

    def count(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def reset(self) -> None:
        """Forget counts, faults and the account's usage so far (its rate window and running
        slots); tasks and uploads stay, since a client may still be polling or downloading."""
        with self._lock:
            self._counts.clear()
            self.submitted_bodies.clear()
            self.submitted_ids.clear()
            for task in self._tasks.values():
                task.released = True
            self._active = 0
            self._running.clear()
            self._accepted.clear()
        self.faults.reset()
