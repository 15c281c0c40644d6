"""autoscore: music for a video or podcast, generated to fit and mixed under the voice.

The API mirrors the CLI: ``score()`` does what ``autoscore score`` does and returns a
``ScoreResult``; ``plan_job()`` stops before generating; ``generate_music()`` is
``autoscore generate``. Every failure is an ``AutoscoreError`` with a message for a user.

The heavy stages (numpy and the DSP around it) load on first use, so ``import autoscore`` and
``autoscore --help`` stay quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import AutoscoreError

if TYPE_CHECKING:
    from .music.standalone import MusicResult, generate_music
    from .options import ScoreOptions
    from .pipeline import ScoreResult, plan_job, score

__version__ = "0.1.0"

__all__ = [
    "AutoscoreError",
    "MusicResult",
    "ScoreOptions",
    "ScoreResult",
    "__version__",
    "generate_music",
    "plan_job",
    "score",
]

_LAZY = {
    "score": "pipeline",
    "plan_job": "pipeline",
    "ScoreResult": "pipeline",
    "generate_music": "music.standalone",
    "MusicResult": "music.standalone",
    "ScoreOptions": "options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'autoscore' has no attribute {name!r}")
