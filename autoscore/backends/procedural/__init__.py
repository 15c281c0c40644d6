"""autoscore's embedded composer: offline music that follows the prompt.

``spec`` reads the prompt, ``arrange`` writes the notes, ``instruments`` and ``mixdown``
make the sound; ``composer`` ties them together and documents what seed, steps and
guidance mean here.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from ...models import Audio
from ..base import Backend, ContinuationRequest, GenerationRequest
from .composer import SAMPLE_RATE, compose, continue_piece, explain

__all__ = ["SAMPLE_RATE", "ProceduralBackend", "compose", "continue_piece", "explain"]


class ProceduralBackend(Backend):
    """Runs the composer in a worker thread so chunks overlap with other work."""

    name: ClassVar[str] = "procedural"
    model: ClassVar[str] = "autoscore-procedural-1"
    price_per_request: ClassVar[float] = 0.0
    outpaint_price: ClassVar[float] = 0.0

    def __init__(self, max_concurrency: int = 2) -> None:
        self.max_concurrency = max_concurrency

    async def generate(self, request: GenerationRequest) -> Audio:
        request.validate()
        return await asyncio.to_thread(compose, request)

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        request.validate()
        return await asyncio.to_thread(continue_piece, request)
