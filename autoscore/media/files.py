"""Asking the filesystem whether a folder takes new files.

Permission bits say nothing to root, or about read-only mounts, so ``os.access`` answers
yes where writing then fails; creating (and removing) a file is the only honest check.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["unwritable_reason"]


def unwritable_reason(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the system's reason."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".autoscore-probe-"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
