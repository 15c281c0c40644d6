"""Batch beyond one machine, on Dask distributed (extra ``dask``).

``autoscore batch --cluster tcp://HOST:8786`` (or ``local:N``, or ``run_batch(...,
cluster=client)``) sends each file to a Dask worker. What makes that more than a map:

* ``connect``: the scheduler is reached within seconds or not at all, and workers that
  lack autoscore or run another version are named before a file is sent.
* ``coordination``: one semaphore per account keeps the whole cluster under the
  account's running-task limit; one lock per chunk key makes sure a chunk is paid for
  once, and the task id it records lets another worker collect a chunk whose worker
  died after paying.
* ``run``: files as Dask tasks with retries, per-file outcomes naming their worker, and
  one progress tally from the workers' events.

Inputs and outputs must be paths every worker sees (a shared filesystem); the music
cache may be a shared folder or an fsspec URL (``--cache-dir s3://bucket/prefix``).
"""

from __future__ import annotations

from typing import Any

from .connect import parse_cluster, require_dask
from .run import ClusterStatus, score_on_cluster

__all__ = ["ClusterStatus", "check_cluster_option", "score_on_cluster"]


def check_cluster_option(cluster: Any) -> None:
    """A usage error now, before inputs are read, for a malformed ``--cluster`` or no extra."""
    require_dask()
    if isinstance(cluster, str):
        parse_cluster(cluster)
