"""A batch on Dask: each file one task, scored on whichever worker is free.

The submitting process does what needs no worker: it checks the options, expands the
inputs, skips finished outputs and decides the backend (so every worker uses the same
one, and the key reaches workers that have no environment of their own). Each worker
then runs the same ``score_one`` a local batch runs, inside a ``Sharing`` that puts its
claims in the cluster's locks and its submissions under the cluster's account semaphore
(``coordination``). Workers report chunk states as Dask events, which the submitting
process folds into one ``ClusterStatus``.

A file is a task with ``retries``: when its worker dies, Dask runs it again on another
one (a worker death does not count against ``retries``; Dask gives up on a file after
``distributed.scheduler.allowed-failures`` deaths). Chunks the dead worker had finished
come from the shared cache, and a chunk it had paid for but not downloaded is collected
by the next worker from the task id its claim recorded.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import shutdown
from ..batch import FAILED, SKIPPED, Collect, FileOutcome, Location, already_scored, score_one
from ..errors import redact
from ..media import remote
from ..media.remote import RemoteFile, as_location, is_url
from ..music.backends import resolve_backend_name
from ..music.backends.wavespeed.answers import API_KEY_ENV
from ..music.backends.wavespeed.client import BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_CONCURRENCY
from ..music.cache import CACHE_ENV
from ..music.shared import Sharing, sharing
from ..options import ScoreOptions
from .account import ClusterAccount
from .connect import check_workers, connected, dashboard_of
from .coordination import ClusterLease, LockClaims, account_name

__all__ = ["ClusterStatus", "FileTask", "score_file", "score_on_cluster"]


@dataclass(frozen=True)
class ClusterStatus:
    """What the submitting terminal shows: the cluster, and where the batch stands."""

    workers: int
    dashboard: str | None
    total: int
    done: int
    running: int
    queued: int
    in_flight: int
    """Requests of this batch being made right now, across all workers."""
    account_limit: int | None = None
    """Tasks the cluster lets run at once on the account, as learnt from its 429s (remote only)."""


@dataclass(frozen=True)
class FileTask:
    """One file, as sent to a worker."""

    input: str
    output: str
    options: ScoreOptions
    force: bool
    lease: tuple[str, int] | None
    """The account semaphore's name and size, for a remote backend."""
    topic: str
    """Where the worker sends its chunk events."""


def for_workers(opts: ScoreOptions) -> tuple[ScoreOptions, tuple[str, int] | None]:
    """The options every worker gets, with the backend decided here, and the account's semaphore.

    A worker's environment is not the user's: the key, API base and cache folder the user
    set here (by option or environment) go with the options (the key over Dask's
    connection, never into a file or a log).
    """
    backend = resolve_backend_name(opts.backend, opts.api_key)
    here = os.environ.get(CACHE_ENV, "")
    if opts.cache_dir is None and (is_url(here) or os.path.isabs(here)):  # a relative one means this machine
        opts = replace(opts, cache_dir=here)
    if backend != "wavespeed":
        return replace(opts, backend=backend), None
    key = opts.api_key or os.environ.get(API_KEY_ENV, "").strip() or None
    base = opts.api_base or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    leases = opts.concurrency or DEFAULT_CONCURRENCY
    shipped = replace(opts, backend=backend, api_key=key, api_base=base)
    return shipped, (account_name(base.rstrip("/"), key or "", leases), leases)


def score_file(task: FileTask) -> FileOutcome:
    """Runs on a worker: one file, with the cluster's claims and account lease."""
    from distributed import get_worker

    worker = get_worker()
    path, output = _located(task.input), _located(task.output)

    def event(kind: str, **fields: Any) -> None:
        worker.log_event(task.topic, {"kind": kind, "file": task.input, **fields})

    event("start")
    unreadable = _unreadable(path)
    if unreadable is not None:
        outcome = FileOutcome(path, None, FAILED, f"Worker {worker.address} cannot read {path}: {unreadable}",
                              exit_code=1)
        return dataclasses.replace(outcome, worker=worker.address)
    lease = None
    if task.lease is not None:
        lease = ClusterLease(*task.lease, tell=lambda what: event("account", answer=what))
    reporter = Collect(
        path.name,
        on_warning=lambda _name, message: event("warning", message=message),
        on_chunk=lambda _name, index, state: event("chunk", index=index, state=state),
    )
    with shutdown.working(), sharing(Sharing(claims=LockClaims, lease=lease)):
        outcome = score_one(path, output, task.options, force=task.force, reporter=reporter)
    if shutdown.stopping() is not None:
        # The worker is closing (``plugin.StopOnClose`` stopped the file's work, and its cleanup ran):
        # the file is not failed, it goes to another worker.
        from distributed import Reschedule

        raise Reschedule()
    return dataclasses.replace(outcome, worker=worker.address)


def _cache_caveat(client: Any, opts: ScoreOptions) -> str | None:
    """A warning when workers on other machines would each keep their own music cache."""
    shipped, lease = for_workers(opts)
    if lease is None or not shipped.use_cache or is_url(str(shipped.cache_dir or "")):
        return None
    try:
        hosts = {str(w.get("host")) for w in client.scheduler_info()["workers"].values()}
    except Exception:
        return None
    if len(hosts) < 2:
        return None  # one machine: its workers share its cache folder
    where = shipped.cache_dir or "each worker's own cache folder"
    return (f"The workers run on {len(hosts)} machines and the music cache is {where}: unless that folder "
            "is shared by all of them, a chunk needed on two machines is paid for on each. Pass "
            "--cache-dir with a shared folder or an s3:// (or other fsspec) URL.")


def _located(text: str) -> Location:
    """The task's path or URL as the batch meant it; a URL's driver is not opened here, so a
    worker without it fails the file with a reason (``_unreadable``) rather than an error."""
    return RemoteFile(text) if is_url(text) else as_location(text)


def _unreadable(path: Location) -> str | None:
    """Why this worker cannot read ``path`` (what to do included), or None."""
    if isinstance(path, RemoteFile):
        return remote.unreadable(path)
    if path.is_file() and os.access(path, os.R_OK):
        return None
    return "put the inputs on storage every worker mounts at the same path, and check its permissions."


class _Tally:
    """Folds the workers' events into a ``ClusterStatus``; called on the client's event thread."""

    def __init__(self, total: int, workers: int, dashboard: str | None,
                 on_status: Callable[[ClusterStatus], None] | None,
                 on_warning: Callable[[str, str], None] | None) -> None:
        self.total, self.workers, self.dashboard = total, workers, dashboard
        self.on_status, self.on_warning = on_status, on_warning
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.chunks: dict[tuple[str, int], str] = {}
        self.account: ClusterAccount | None = None
        self.lock = threading.Lock()
        """Events arrive on the client's event thread, finished files on the caller's."""

    def status(self) -> ClusterStatus:
        with self.lock:
            running = len(self.started - self.finished)
            in_flight = sum(1 for state in self.chunks.values() if state == "generating")
            done = len(self.finished)
        return ClusterStatus(self.workers, self.dashboard, self.total, done, running,
                             self.total - done - running, in_flight,
                             self.account.limit if self.account is not None else None)

    def event(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if not isinstance(message, dict):
            return
        name = str(message.get("file"))
        kind = message.get("kind")
        with self.lock:
            if kind == "start":
                self.started.add(name)
                for chunk in [c for c in self.chunks if c[0] == name]:  # run again after a worker died
                    del self.chunks[chunk]
            elif kind == "chunk":
                self.chunks[(name, int(message.get("index", 0)))] = str(message.get("state"))
        if kind == "warning" and self.on_warning is not None:
            self.on_warning(Path(name).name, str(message.get("message")))
        elif kind == "account" and self.account is not None:
            self.account.answer(str(message.get("answer")))
        self.tell()

    def finish(self, name: str) -> None:
        with self.lock:
            self.finished.add(name)
            self.started.add(name)
        self.tell()

    def tell(self) -> None:
        if self.on_status is not None:
            self.on_status(self.status())


def score_on_cluster(
    tasks: Sequence[tuple[Location, Location, ScoreOptions]],
    cluster: Any,
    *,
    force: bool,
    retries: int,
    outcomes: Sequence[FileOutcome] = (),
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[FileOutcome], None] | None = None,
    on_warning: Callable[[str, str], None] | None = None,
    on_status: Callable[[ClusterStatus], None] | None = None,
) -> list[FileOutcome]:
    """Score ``tasks`` (input, output, options) on ``cluster``; outcomes in the tasks' order.

    ``outcomes`` (inputs that named nothing) are only reported, after the cluster is reached.
    """
    from distributed import as_completed

    with connected(cluster) as client:
        workers = check_workers(client)
        if tasks and on_warning is not None:
            caveat = _cache_caveat(client, tasks[0][2])
            if caveat:
                on_warning("cluster", caveat)
        topic = f"autoscore-{uuid.uuid4().hex}"
        tally = _Tally(len(tasks), len(workers), dashboard_of(client), on_status, on_warning)
        if on_start is not None:
            on_start(len(tasks) + len(outcomes))
        for o in outcomes:
            if on_done is not None:
                on_done(o)
        results: dict[int, FileOutcome] = {}
        futures: dict[Any, int] = {}
        from .plugin import StopOnClose

        client.register_plugin(StopOnClose(), name=StopOnClose.name)
        client.subscribe_topic(topic, tally.event)
        try:
            tally.tell()
            for i, (path, output, opts) in enumerate(tasks):
                if not force and already_scored(path, output, opts):  # no need to send it anywhere
                    results[i] = FileOutcome(path, output, SKIPPED, "already scored")
                    tally.finish(str(path))
                    if on_done is not None:
                        on_done(results[i])
                    continue
                shipped, lease = for_workers(opts)
                if lease is not None and tally.account is None:
                    tally.account = ClusterAccount(client, *lease)
                task = FileTask(str(path), str(output), shipped, force, lease, topic)
                future = client.submit(score_file, task, key=f"autoscore-score-{uuid.uuid4().hex}",
                                       pure=False, retries=retries)
                futures[future] = i
            t0 = {i: time.perf_counter() for i in futures.values()}
            for future in as_completed(list(futures), loop=client.loop):
                i = futures[future]
                outcome = _outcome_of(future, tasks[i][0], time.perf_counter() - t0[i])
                results[i] = outcome
                tally.finish(str(tasks[i][0]))
                if on_done is not None:
                    on_done(outcome)
        except BaseException:
            client.cancel(list(futures), force=True)
            raise
        finally:
            client.unsubscribe_topic(topic)
            if tally.account is not None:
                tally.account.close()
    return [results[i] for i in range(len(tasks))]


def _outcome_of(future: Any, path: Location, seconds: float) -> FileOutcome:
    """The worker's outcome, or a failed one when the task itself could not finish."""
    from distributed import KilledWorker

    try:
        outcome = future.result()
    except KilledWorker as exc:
        return FileOutcome(path, None, FAILED, f"The workers scoring {path.name} died repeatedly ({exc}); "
                           "check their memory and logs, then run the batch again (finished chunks are "
                           "cached).", seconds, 1)
    except Exception as exc:
        why = redact(repr(exc))
        return FileOutcome(path, None, FAILED, f"The cluster could not run {path.name}: {why}; run the "
                           "batch again, or this file alone with autoscore score --debug.", seconds, 1)
    if not isinstance(outcome, FileOutcome):
        return FileOutcome(path, None, FAILED, f"A worker answered {type(outcome).__name__} for {path.name}.",
                           seconds, 1)
    return outcome
