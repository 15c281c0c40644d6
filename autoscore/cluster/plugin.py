"""A Dask worker plugin: a worker being closed stops its files' ffmpegs at once.

Dask waits for running tasks when it closes a worker (SIGTERM from its nanny, a container
or a job scheduler), then kills the process after a few seconds; a file half rendered
would leave its ``.part`` output and scratch folder behind. Stopping the ffmpegs makes
the file fail fast and clean up on its way out (``media.ffmpeg.stop_all``), and
``run.score_file`` hands it back to the scheduler for another worker.

Its own module because it subclasses Dask's ``WorkerPlugin``: importing it needs the
``dask`` extra, which the rest of ``autoscore.cluster`` checks for first.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from distributed import WorkerPlugin
from distributed.core import Status

from ..media import ffmpeg

__all__ = ["StopOnClose"]

CLOSING = (Status.closing, Status.closing_gracefully, Status.closed)


class StopOnClose(WorkerPlugin):
    name = "autoscore-stop-on-close"
    idempotent = True

    def __init__(self) -> None:
        self.submitter = (platform.node(), os.getpid())
        """Where the batch was sent from: a cluster of threads there (``processes=False``)
        shares that process, whose ffmpegs are not the worker's to stop."""

    def teardown(self, worker: Any) -> None:
        # Also called when the plugin is replaced; only a closing worker stops its work, and
        # only in a process of its own.
        if worker.status in CLOSING and (platform.node(), os.getpid()) != self.submitter:
            ffmpeg.stop_all("the Dask worker is shutting down; the file goes to another worker")
