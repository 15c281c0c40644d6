"""autoscore: music for a video or podcast, generated to fit and mixed under the voice."""

from __future__ import annotations

from .errors import AutoscoreError

__version__ = "0.1.0"

__all__ = ["AutoscoreError", "__version__"]
