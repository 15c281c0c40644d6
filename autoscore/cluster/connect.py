"""Reaching a Dask cluster, and checking it can run autoscore before a file is sent.

``--cluster`` names either a running scheduler (``tcp://host:8786``, or any address Dask
takes: ``tls://``, ``ucx://``, ``inproc://``) or ``local:N``, a ``LocalCluster`` of N worker
processes started for this batch and stopped after it. An existing ``distributed.Client``
is used as it is and left open. Everything here fails fast: an address nobody answers
at is an error within ``CONNECT_TIMEOUT`` seconds, and workers that lack autoscore or run
another version are named before any work is sent to them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

from ..errors import ClusterError, OptionError

__all__ = ["CONNECT_TIMEOUT", "check_workers", "connected", "dashboard_of", "parse_cluster", "require_dask"]

CONNECT_TIMEOUT = 5.0
"""Seconds to reach a scheduler, and to wait for a first worker, before giving up."""
LOCAL = re.compile(r"local(?::(\d+))?")
ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def require_dask() -> None:
    """Fail before any work when the ``dask`` extra is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise OptionError(
            "--cluster needs Dask distributed, which is not installed: pip install 'autoscore[dask]'."
        ) from None


def parse_cluster(text: str) -> tuple[str, int]:
    """``("local", N)`` or ``("address", 0)``; a usage error names both forms."""
    value = text.strip()
    local = LOCAL.fullmatch(value)
    if local:
        count = int(local.group(1) or 2)
        if not 1 <= count <= 64:
            raise OptionError(f"--cluster {text}: use local:1 to local:64 worker processes.")
        return "local", count
    if ADDRESS.fullmatch(value):
        return "address", 0
    raise OptionError(
        f"--cluster {text!r} is neither a scheduler address (tcp://HOST:8786) nor local:N "
        "(N worker processes on this machine)."
    )


@contextlib.contextmanager
def connected(cluster: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (an address, ``local:N`` or a Client)."""
    require_dask()
    from distributed import Client

    if isinstance(cluster, Client):
        yield cluster
        return
    kind, count = parse_cluster(str(cluster))
    if kind == "local":
        with _local_cluster(count) as client:
            yield client
        return
    address = str(cluster).strip()
    if address.startswith(("http://", "https://")):
        raise OptionError(f"--cluster {address} is a web address (the dashboard's?): give the scheduler's, "
                          "tcp://HOST:8786.")
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # OSError and TimeoutError, but also whatever a protocol's setup raises
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT:g} s "
            f"({_first_line(exc)}): check the address, or start one with `dask scheduler` "
            "(or use --cluster local:N)."
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=CONNECT_TIMEOUT)


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    # Processes, one thread each: a file's mixing and encoding hold the GIL in places, and a
    # worker that dies takes only its own file with it. Dask's own logging is for Dask's
    # users; ours say what matters. Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536,
    # which hands every large array back to the system as soon as it is freed; a file's
    # mix allocates and frees many, and took 1.5x as long on a worker (0.77 s against
    # 0.51 s a clip, benchmarks/bench_cluster.py), so our own workers go without it.
    untrimmed = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    quiet = logging.getLevelName(os.environ.get("DASK_LOGGING__DISTRIBUTED", "error").upper())
    with dask.config.set(untrimmed), _workers_ignore_ctrl_c():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0",
                               silence_logs=quiet if isinstance(quiet, int) else logging.ERROR)
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Worker processes started in this block ignore SIGINT (an ignored signal stays ignored
    in a spawned interpreter). A terminal's Ctrl-C goes to its whole process group: the
    batch stops them itself, cleanly, and a worker interrupted on its own only prints a
    traceback. Outside the main thread nothing can be changed, and nothing is."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_workers(client: Any, expected: str | None = None) -> list[str]:
    """The workers' addresses, once each is known to run this autoscore version.

    Waits up to ``CONNECT_TIMEOUT`` for a first worker. The version comes from each
    worker's installed package metadata, read by a standard-library function, so a worker
    without autoscore answers too (with an error) instead of failing to unpickle our code.
    """
    want = expected or _installed_version()
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (TimeoutError, OSError):
        raise ClusterError(
            f"The Dask scheduler at {client.scheduler.address} has no workers: start some with "
            f"`dask worker {client.scheduler.address}`."
        ) from None
    answers = client.run(importlib.metadata.version, "autoscore", on_error="return")
    missing = sorted(w for w, v in answers.items() if isinstance(v, BaseException))
    other = sorted(f"{w} ({v})" for w, v in answers.items() if not isinstance(v, BaseException) and v != want)
    if missing:
        raise ClusterError(
            f"autoscore is not installed on worker(s) {', '.join(missing)}: install autoscore {want} "
            "there (pip install 'autoscore[dask]'), or leave them out of the cluster."
        )
    if other:
        raise ClusterError(
            f"Worker(s) {', '.join(other)} run another autoscore version than this {want}: install the "
            "same version everywhere, so every file is scored the same way."
        )
    return sorted(answers)


def dashboard_of(client: Any) -> str | None:
    """The dashboard's link, when the scheduler serves one (it needs bokeh installed)."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:
        return None
    if "dashboard" not in services:
        return None
    link = client.dashboard_link
    return str(link) if link else None


def _installed_version() -> str:
    return importlib.metadata.version("autoscore")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
