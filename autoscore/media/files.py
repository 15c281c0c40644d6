"""Files the way autoscore writes them: whole or not at all, and scratch that never stays.

Every file a user or a later run may read (an output, a cache entry, a report picture)
is written under a temporary name beside its final one and renamed into place only when
complete, so a reader sees either nothing or the whole file. Intermediate files live in a
job's scratch folder, removed when the job ends, however it ends. This module and the
rest of ``media`` are the only places that make temporary files.

"However it ends" includes SIGKILL and power loss, after which no cleanup code runs. So
every temporary name carries its owner, ``@host~pid~``, and making a new one first sweeps
the folder for ``.part`` files and scratch folders whose owner was this host and is no
longer running. Owners on other hosts (a shared folder) and live processes are left alone.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_output", "owner_tag", "scratch_folder", "sweep_stale", "unwritable_reason", "write_atomically",
]

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", platform.node() or "host")[:40]
_OWNED = re.compile(r"@(?P<host>[A-Za-z0-9-]+)~(?P<pid>\d+)~")


def owner_tag() -> str:
    """``@host~pid~``: who made a temporary name, so a later run can tell if it is orphaned."""
    return f"@{_HOST}~{os.getpid()}~"


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: never remove what might be in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def sweep_stale(folder: Path, *, parts: bool = True, scratch_prefix: str | None = None) -> int:
    """Remove ``.part`` files (and scratch folders named ``scratch_prefix``...) in ``folder`` whose
    owner ran on this host and is gone; how many were removed. Never raises."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        is_part = parts and name.startswith(".") and ".part" in name and entry.is_file(follow_symlinks=False)
        is_scratch = (scratch_prefix is not None and name.startswith(scratch_prefix)
                      and entry.is_dir(follow_symlinks=False))
        if not (is_part or is_scratch):
            continue
        owner = _OWNED.search(name)
        if owner is None or owner["host"] != _HOST or _alive(int(owner["pid"])):
            continue
        with contextlib.suppress(OSError):
            if is_scratch:
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed



def _read_umask() -> int:
    """The process umask. Reading it means setting it, so do it once, at import, before
    batch starts threads that create files."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def unwritable_reason(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the system's reason.

    Permission bits say nothing to root, or about read-only mounts, so ``os.access``
    answers yes where writing then fails; creating (and removing) a file is the only
    honest check.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".autoscore-probe-"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final``, renamed onto it only if the block succeeds."""
    sweep_stale(final.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.{owner_tag()}", suffix=f".part{final.suffix}",
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); a finished output gets the usual mode, as if
    # it had been created plainly under the user's umask.
    tmp.chmod(0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomically(path: Path, *parts: bytes) -> None:
    """Write ``parts`` to ``path`` whole or not at all (a temporary name, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:8]}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def scratch_folder(prefix: str = "autoscore-", parent: Path | None = None) -> Iterator[Path]:
    """A private folder for one job's intermediate files, removed when the block ends."""
    sweep_stale(parent or Path(tempfile.gettempdir()), parts=False, scratch_prefix=prefix)
    with tempfile.TemporaryDirectory(prefix=prefix + owner_tag(), dir=parent) as tmp:
        yield Path(tmp)
