"""A Dask worker plugin: a worker being closed stops its files' work at once.

Dask waits for running tasks when it closes a worker (SIGTERM from its nanny, a container
or a job scheduler, or the end of a ``local:N`` batch), then kills the process after a
few seconds; a file half made would leave its ``.part`` output and scratch folder behind.
Stopping its ffmpegs and its requests makes the file fail fast and clean up on its way
out (``autoscore.shutdown``), and ``run.score_file`` hands it back to the scheduler for
another worker.

Its own module because it subclasses Dask's ``WorkerPlugin``: importing it needs the
``dask`` extra, which the rest of ``autoscore.cluster`` checks for first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from distributed import Worker, WorkerPlugin
from distributed.core import Status

from .. import shutdown

__all__ = ["StopOnClose"]

CLOSING = (Status.closing, Status.closing_gracefully, Status.closed)
CLEANUP_WAIT = 3.0
"""Seconds a closing worker waits for its files to clean up. A nanny kills its worker 0.8 x
its close timeout after asking it to close: 4 s under a LocalCluster, 8 s under ``dask worker``."""


class StopOnClose(WorkerPlugin):
    name = "autoscore-stop-on-close"
    idempotent = True

    async def teardown(self, worker: Any) -> None:
        # Also called when the plugin is removed; only a closing worker stops its work. A stop is
        # for the whole process, so only a process that is this one worker (started by a nanny,
        # alone in it) is stopped: never a notebook's cluster of threads, nor its other workers.
        # Dask closes the worker's connection after this, so the files' cleanup (claims released
        # on the scheduler) is waited for here, briefly.
        dedicated = getattr(worker, "nanny", None) is not None and len(list(Worker._instances)) == 1
        if worker.status in CLOSING and dedicated:
            shutdown.stop_all("the Dask worker is shutting down; the file goes to another worker")
            await asyncio.to_thread(shutdown.wait_idle, CLEANUP_WAIT)
