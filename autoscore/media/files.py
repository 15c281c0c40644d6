"""Files the way autoscore writes them: whole or not at all, and scratch that never stays.

Every file a user or a later run may read (an output, a cache entry, a report picture)
is written under a temporary name beside its final one and renamed into place only when
complete, so a reader sees either nothing or the whole file. Intermediate files live in a
job's scratch folder, removed when the job ends, however it ends. This module and the
rest of ``media`` are the only places that make temporary files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "scratch_folder", "unwritable_reason", "write_atomically"]



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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=final.parent)
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
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as tmp:
        yield Path(tmp)
