"""autoscore's embedded composer: offline music that follows the prompt.

``spec`` reads the prompt, ``arrange`` writes the notes, ``instruments`` and ``mixdown``
make the sound; ``composer`` ties them together and documents what seed, steps and
guidance mean here. The composer loads on first use: a job whose music all comes from
the cache never needs it.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, ClassVar

from ....models import Audio
from ..base import Backend, ContinuationRequest, GenerationRequest

__all__ = ["SAMPLE_RATE", "ProceduralBackend", "compose", "continue_piece", "explain"]


class ProceduralBackend(Backend):
    """Runs the composer in a worker thread so chunks overlap with other work."""

    name: ClassVar[str] = "procedural"
    model: ClassVar[str] = "autoscore-procedural-1"
    price_per_request: ClassVar[float] = 0.0
    outpaint_price: ClassVar[float] = 0.0
    reads_cues: ClassVar[bool] = True

    def __init__(self, max_concurrency: int = 2) -> None:
        self.max_concurrency = max_concurrency

    async def generate(self, request: GenerationRequest) -> Audio:
        request.validate()
        from .composer import compose

        return await asyncio.to_thread(compose, request)

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        request.validate()
        from .composer import continue_piece

        return await asyncio.to_thread(continue_piece, request)


def __getattr__(name: str) -> Any:
    if name in ("SAMPLE_RATE", "compose", "continue_piece", "explain"):
        return getattr(importlib.import_module(".composer", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
