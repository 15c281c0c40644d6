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
import os
import platform
from typing import Any

from distributed import WorkerPlugin
from distributed.core import Status

from .. import shutdown

__all__ = ["StopOnClose"]

CLOSING = (Status.closing, Status.closing_gracefully, Status.closed)
CLEANUP_WAIT = 5.0
"""Seconds a closing worker waits for its files to clean up; Dask kills it about 8 s after
asking it to close."""


class StopOnClose(WorkerPlugin):
    name = "autoscore-stop-on-close"
    idempotent = True

    def __init__(self) -> None:
        self.submitter = (platform.node(), os.getpid())
        """Where the batch was sent from: a cluster of threads there (``processes=False``)
        shares that process, whose ffmpegs are not the worker's to stop."""

    async def teardown(self, worker: Any) -> None:
        # Also called when the plugin is replaced; only a closing worker stops its work, and
        # only in a process of its own. Dask closes the worker's connection after this, so the
        # files' cleanup (claims released on the scheduler) is waited for here, briefly.
        if worker.status in CLOSING and (platform.node(), os.getpid()) != self.submitter:
            shutdown.stop_all("the Dask worker is shutting down; the file goes to another worker")
            await asyncio.to_thread(shutdown.wait_idle, CLEANUP_WAIT)
