"""Who is making which chunk: claims on cache keys, so the same music is never paid twice.

Two jobs that need the same chunk at the same time (a batch of near-identical clips, two
terminals, two workers of a cluster) must not both pay for it. Whoever misses the cache
first *claims* the key; the others wait for the cache entry. Three boards hold claims,
one per reach of sharing:

* ``FileClaims``: a claim file beside the cache entry, created exclusively. It reaches
  every process that sees the cache folder, and records its holder's process and machine.
* ``ProcessClaims``: a table in this process, for caches where exclusive creation does
  not exist (object stores behind fsspec) and no cluster is there to arbitrate.
* the cluster's locks (``autoscore.cluster.coordination``), for workers on many machines.

A claim also records the provider's task id as soon as the request is accepted, in the
cache's ``TaskNotes`` (a ``<key>.task`` file beside the entry, on disk or in the bucket),
and the note outlives the claim until the chunk is in the cache. That id is what makes a crash
or a timeout cheap: a holder that dies, or gives up, after paying but before downloading
leaves it behind, and whoever claims the key next *resumes* that task (polls it and
downloads the audio) instead of paying for the chunk again. A claim whose holder is gone
expires (a dead process here, or no heartbeat for ``CLAIM_STALE_AFTER``), so nobody
waits forever.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar

from ..media.files import write_atomically

__all__ = [
    "CLAIM_HEARTBEAT",
    "CLAIM_STALE_AFTER",
    "Claim",
    "ClaimBoard",
    "FileClaims",
    "FileTaskNotes",
    "ProcessClaims",
    "TaskNotes",
    "announce_task",
    "recording_tasks",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_STALE_AFTER = 120.0
"""Seconds without a heartbeat after which a claim is abandoned, wherever its holder ran.
Holders touch their claim every ``CLAIM_HEARTBEAT`` seconds while they work."""
CLAIM_HEARTBEAT = 30.0


class TaskNotes(Protocol):
    """Where a cache keeps the provider's task id for a key until its entry exists.

    Beside the entries, not in any process: a note must outlive the job, the worker and
    even the cluster's scheduler that wrote it.
    """

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, task_id: str) -> None: ...

    def drop(self, key: str) -> None: ...


class Claim:
    """A held claim on a cache key; ``release`` lets waiting jobs look again.

    ``inherited`` is the task id a previous holder noted before it disappeared or gave
    up: the chunk is paid for (or being made) at the provider, and should be collected,
    not bought. A claim without ``notes`` holds nothing and notes nothing (cache off).
    """

    def __init__(self, key: str = "", notes: TaskNotes | None = None) -> None:
        self.key, self.notes = key, notes
        self.inherited = _guarded(lambda: notes.read(key)) if notes is not None else None
        self.noted: str | None = None
        """The task id noted by this holder, if any."""

    def touch(self) -> None:
        """The heartbeat: this claim's holder is still at work."""

    def record(self, task_id: str) -> None:
        """The provider accepted the request as ``task_id``: note it where a successor finds it.

        Never raises: the task is paid for already, and losing its note must not also lose
        the job's chance to collect it now.
        """
        self.noted = task_id
        if self.notes is not None:
            notes, key = self.notes, self.key
            _guarded(lambda: notes.write(key, task_id))

    def release(self, done: bool = True) -> None:
        """Waiters may look again. ``done``: the chunk is in the cache, so the note is
        dropped; otherwise (the job failed or was stopped while a task ran) it stays, and
        the next claim inherits it."""
        if done and self.notes is not None and (self.noted or self.inherited):
            notes, key = self.notes, self.key
            _guarded(lambda: notes.drop(key))
        self._unlock()

    def _unlock(self) -> None:
        """Give up the exclusive right (the board's own way)."""


def _guarded(action: Callable[[], T]) -> T | None:
    try:
        return action()
    except Exception:
        log.warning("Could not read or write a task note in the cache", exc_info=True)
        return None


class ClaimBoard(Protocol):
    def claim(self, key: str) -> Claim | None:
        """The claim on ``key``, or None while a live holder has it."""


# -- telling the claim about the task ----------------------------------------------------

_RECORDER: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "autoscore_task_recorder", default=None
)


@contextlib.contextmanager
def recording_tasks(claim: Claim) -> Iterator[None]:
    """Within the block, a backend's ``announce_task`` goes to ``claim``.

    A context variable rather than a parameter, because only the remote backends have task
    ids and the ``Backend`` contract stays the same for all; asyncio copies it into the
    request's own task.
    """
    token = _RECORDER.set(claim.record)
    try:
        yield
    finally:
        _RECORDER.reset(token)


def announce_task(task_id: str) -> None:
    """Called by a backend the moment the provider has accepted (and will charge) a task."""
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder(task_id)


# -- notes and claims in files -----------------------------------------------------------


class FileTaskNotes:
    """``<entry>.task`` beside a local cache entry: JSON with the task id and when it was made."""

    def __init__(self, path_for: Callable[[str], Path]) -> None:
        self.path_for = path_for

    def _path(self, key: str) -> Path:
        return self.path_for(key).with_suffix(".task")

    def read(self, key: str) -> str | None:
        try:
            return task_of(self._path(key).read_bytes())
        except OSError:
            return None

    def write(self, key: str, task_id: str) -> None:
        write_atomically(self._path(key), note_bytes(task_id))

    def drop(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def note_bytes(task_id: str) -> bytes:
    return json.dumps({"task_id": task_id, "time": time.time()}).encode()


def task_of(blob: bytes) -> str | None:
    try:
        task = json.loads(blob).get("task_id")
    except (ValueError, AttributeError):
        return None
    return task if isinstance(task, str) and task else None


class FileClaims:
    """Claim files beside the cache's entries: ``<entry>.claim``, created exclusively."""

    def __init__(self, path_for: Callable[[str], Path], notes: TaskNotes | None = None) -> None:
        self.path_for = path_for
        """The cache entry's path for a key; the claim sits beside it."""
        self.notes = notes if notes is not None else FileTaskNotes(path_for)

    def claim(self, key: str) -> Claim | None:
        path = self.path_for(key).with_suffix(".claim")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return Claim(key, self.notes)  # the cache will say what is wrong with the folder when it writes
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _take_over_if_stale(path):
                    return None
                continue
            except OSError:
                return Claim(key, self.notes)
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": platform.node(), "time": time.time()}, f)
            return _FileClaim(path, key, self.notes)
        return None


class _FileClaim(Claim):
    def __init__(self, path: Path, key: str, notes: TaskNotes) -> None:
        super().__init__(key, notes)
        self.path: Path | None = path

    def touch(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def _unlock(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


def _take_over_if_stale(path: Path) -> bool:
    """Remove ``path`` if its holder is gone; True when the caller may try to claim again.

    Two jobs may both find a claim stale. Each renames it to a name of its own first (only
    one rename can succeed) and checks that what it moved is what it judged; a fresh claim
    moved by mistake is put back.
    """
    try:
        judged = path.read_bytes()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not _is_stale(path, judged):
        return False
    aside = path.with_name(f"{path.name}.{os.getpid()}-{time.monotonic_ns()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # someone else removed it: try again
    except OSError:
        return False
    try:
        if aside.read_bytes() != judged:
            with contextlib.suppress(OSError):
                os.link(aside, path)  # put the live claim back (fails if another took its place)
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()
    return True


def _is_stale(path: Path, text: bytes) -> bool:
    """True when the claim's holder is gone: a dead process here, or no heartbeat for a while."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return True
    if age > CLAIM_STALE_AFTER:
        return True
    try:
        info = json.loads(text)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return False  # being written this instant, or garbage that will age out
    return host == platform.node() and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- claims in this process --------------------------------------------------------------


class ProcessClaims:
    """Claims held in a table of this process: the threads of a batch share them."""

    _held: ClassVar[set[tuple[str, str]]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, scope: str, notes: TaskNotes | None = None) -> None:
        self.scope = scope
        """Which cache: two caches' keys never meet."""
        self.notes = notes

    def claim(self, key: str) -> Claim | None:
        name = (self.scope, key)
        with self._lock:
            if name in self._held:
                return None
            self._held.add(name)
        return _ProcessClaim(name, key, self.notes)


class _ProcessClaim(Claim):
    def __init__(self, name: tuple[str, str], key: str, notes: TaskNotes | None) -> None:
        self.name = name
        self.open = True
        super().__init__(key, notes)

    def _unlock(self) -> None:
        with ProcessClaims._lock:
            if self.open:
                self.open = False
                ProcessClaims._held.discard(self.name)
