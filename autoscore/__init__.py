"""autoscore: music for a video or podcast, generated to fit and mixed under the voice.

The API mirrors the CLI: ``score()`` does what ``autoscore score`` does and returns a
``ScoreResult``; ``plan_job()`` stops before generating; ``generate_music()`` is
``autoscore generate``. Every failure is an ``AutoscoreError`` with a message for a user.
"""

from __future__ import annotations

from .errors import AutoscoreError
from .music import MusicResult, generate_music
from .pipeline import ScoreResult, plan_job, score

__version__ = "0.1.0"

__all__ = [
    "AutoscoreError",
    "MusicResult",
    "ScoreResult",
    "__version__",
    "generate_music",
    "plan_job",
    "score",
]
