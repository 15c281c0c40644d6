"""Turn a plan's chunks into audio: all in flight at once, each cached as it lands.

Every finished chunk goes to the content-addressed cache before anything else happens,
so a job that fails halfway costs only the missing chunks when it is run again. Chunks
are handed on as files in the job folder, never held together in memory: an hour of
music is thirty chunks of 120 s, and only the two being joined are ever loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends.base import Backend, ContinuationRequest, GenerationRequest
from .cache import AudioCache
from .models import Audio, Chunk
from .presets import GenerationSettings

log = logging.getLogger(__name__)

__all__ = ["ChunkStore", "GenerationStats", "generate_chunks", "request_for"]

ChunkEvent = Callable[[int, str], None]
"""Called with (chunk index, state); states: queued, generating, cached, done, failed."""

OUTPAINT_TAIL = 30
"""Seconds of the music so far that are uploaded for a continuation to extend."""


@dataclass
class GenerationStats:
    requests: int = 0
    """Requests sent, continuations included."""
    continuations: int = 0
    """Of which outpainting requests (priced differently)."""
    cache_hits: int = 0

    def cost(self, price: float, outpaint_price: float) -> float:
        return (self.requests - self.continuations) * price + self.continuations * outpaint_price


class ChunkStore:
    """Finished chunks on disk in the job folder, loaded one at a time by assemble."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:04d}.npy"

    def save(self, index: int, audio: Audio) -> None:
        np.save(self._path(index), audio.samples)
        (self.folder / f"chunk-{index:04d}.rate").write_text(str(audio.rate))

    def load(self, chunk: Chunk) -> Audio:
        rate = int((self.folder / f"chunk-{chunk.index:04d}.rate").read_text())
        return Audio(np.load(self._path(chunk.index)), rate)


def request_for(chunk: Chunk, settings: GenerationSettings) -> GenerationRequest:
    return GenerationRequest(
        prompt=chunk.prompt,
        duration=chunk.duration,
        negative_prompt=chunk.negative_prompt,
        steps=settings.steps,
        guidance=settings.guidance,
        output_format=settings.format,
        seed=chunk.seed,
    )


async def _cached(
    key: str,
    make: Callable[[], Awaitable[Audio]],
    keep: Callable[[Audio], None],
    index: int,
    cache: AudioCache,
    stats: GenerationStats,
    event: ChunkEvent,
    disk: asyncio.Semaphore,
    *,
    continuation: bool = False,
) -> Audio:
    """The cached audio for ``key``, or ``make()``'s, cached and handed to ``keep`` before anything else.

    Disk work (a two-minute chunk is 40 MB) runs in a worker thread, so it does not hold
    up other chunks' polls and downloads, and one chunk at a time (``disk``), each read
    or download going to ``keep`` in the same step: read concurrently, a 60-minute job's
    cached chunks were all in memory at once (1.6 GB).
    """

    def load() -> Audio | None:
        found = cache.get(key)
        if found is not None:
            keep(found)
        return found

    async with disk:
        audio = await asyncio.to_thread(load)
    if audio is not None:
        stats.cache_hits += 1
        event(index, "cached")
        return audio
    event(index, "generating")
    stats.requests += 1
    stats.continuations += continuation
    try:
        made = await make()
    except BaseException:
        event(index, "failed")
        raise

    def save() -> None:
        cache.put(key, made)
        keep(made)

    async with disk:
        await asyncio.to_thread(save)
    event(index, "done")
    return made


async def _one(
    chunk: Chunk,
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    settings: GenerationSettings,
    stats: GenerationStats,
    gate: asyncio.Semaphore,
    disk: asyncio.Semaphore,
    event: ChunkEvent,
) -> None:
    request = request_for(chunk, settings)

    async def make() -> Audio:
        async with gate:
            return await backend.generate(request)

    key = cache.key_for(backend.name, backend.model, request)
    await _cached(key, make, lambda audio: store.save(chunk.index, audio), chunk.index, cache, stats, event,
                  disk)


async def _crossfade_job(
    chunks: Sequence[Chunk],
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    settings: GenerationSettings,
    stats: GenerationStats,
    event: ChunkEvent,
) -> None:
    gate = asyncio.Semaphore(max(1, backend.max_concurrency))
    disk = asyncio.Semaphore(1)
    for c in chunks:
        event(c.index, "queued")
    results = await asyncio.gather(
        *(_one(c, backend, cache, store, settings, stats, gate, disk, event) for c in chunks),
        return_exceptions=True,
    )
    # Every chunk ran to its end (and the good ones are cached) before we report the
    # first failure: a rerun then asks only for what is missing.
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def _outpaint_job(
    chunks: Sequence[Chunk],
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    settings: GenerationSettings,
    stats: GenerationStats,
    event: ChunkEvent,
) -> None:
    """Each span's first chunk from the music endpoint, the rest continue the music so far."""
    disk = asyncio.Semaphore(1)
    for c in chunks:
        event(c.index, "queued")
    previous: Audio | None = None
    for chunk in chunks:
        if chunk.is_first or previous is None:
            await _crossfade_job([chunk], backend, cache, store, settings, stats, event)
            previous = store.load(chunk)
            continue
        tail_frames = min(previous.frames, OUTPAINT_TAIL * previous.rate)
        source = Audio(np.ascontiguousarray(previous.samples[-tail_frames:]), previous.rate)
        request = ContinuationRequest(
            source=source,
            prompt=chunk.prompt,
            extend_after=chunk.duration,
            negative_prompt=chunk.negative_prompt,
            steps=settings.steps,
            guidance=settings.guidance,
            output_format=settings.format,
            seed=chunk.seed,
        )
        key = cache.key_for(backend.name, backend.model, request)
        whole = await _cached(key, lambda r=request: backend.outpaint(r), lambda _: None, chunk.index, cache,
                              stats, event, disk, continuation=True)
        skip = round(source.frames * whole.rate / source.rate)
        extension = Audio(np.ascontiguousarray(whole.samples[skip:]), whole.rate)
        async with disk:
            await asyncio.to_thread(store.save, chunk.index, extension)
        previous = extension


def generate_chunks(
    chunks: Sequence[Chunk],
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    settings: GenerationSettings,
    *,
    join: str = "crossfade",
    event: ChunkEvent | None = None,
) -> GenerationStats:
    """Generate every chunk into ``store``; raise the first failure after all have settled."""
    stats = GenerationStats()
    notify = event or (lambda _i, _s: None)
    job = _outpaint_job if join == "outpaint" else _crossfade_job

    async def run() -> None:
        try:
            await job(chunks, backend, cache, store, settings, stats, notify)
        finally:
            await backend.aclose()

    asyncio.run(run())
    return stats
