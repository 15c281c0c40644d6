"""The command line: options built from the options table, commands that fill a
``ScoreOptions`` and call the pipeline, and the console that shows progress.

The library raises; only ``main`` turns an ``AutoscoreError`` into one printed line and
an exit code.
"""

from __future__ import annotations

from . import batch as _batch  # noqa: F401 - registers ``batch`` on the group
from .commands import cli, main

__all__ = ["cli", "main"]
