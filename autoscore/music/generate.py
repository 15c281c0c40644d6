"""Turn a plan's chunks into audio: all in flight at once, each kept as it lands.

Every finished chunk goes to the job's own store and then to the content-addressed
cache before anything else happens, so a job that fails halfway costs only the missing
chunks when it is run again, and a cache that cannot take a chunk costs a warning, not
the chunk. Chunks are handed on as files in the job folder, never held together in
memory: an hour of music is thirty chunks of 120 s, and only the two being joined are
ever loaded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import shutdown
from ..errors import BackendError, CacheError, RemoteTaskError, Stopped
from ..models import Audio, Chunk
from ..text.presets import GenerationSettings
from .backends.base import Backend, ContinuationRequest, GenerationRequest
from .cache import AudioCache
from .claims import CLAIM_HEARTBEAT, Claim, recording_tasks
from .shared import acquired_in_thread

log = logging.getLogger(__name__)

__all__ = ["ChunkStore", "GenerationStats", "generate_chunks", "request_for"]

ChunkEvent = Callable[[int, str], None]
"""Called with (chunk index, state); states: queued, waiting, generating, cached, done, failed."""

OUTPAINT_TAIL = 30
"""Seconds of the music so far that are uploaded for a continuation to extend."""

CLAIM_POLL = 0.25
"""Seconds between looks at the cache while another job makes the same chunk."""


@dataclass
class GenerationStats:
    requests: int = 0
    """Requests sent, continuations included."""
    continuations: int = 0
    """Of which outpainting requests (priced differently)."""
    cache_hits: int = 0
    resumed: int = 0
    """Chunks collected from a task that an earlier job paid for but did not download."""
    cost: float = 0.0
    """Dollars charged: completed paid tasks only (failed ones are refunded by the provider)."""


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


def request_for(chunk: Chunk, settings: GenerationSettings, *, cues: bool = True) -> GenerationRequest:
    """The request for ``chunk``; ``cues`` False for a backend that cannot read them."""
    return GenerationRequest(
        prompt=chunk.prompt,
        duration=chunk.duration,
        negative_prompt=chunk.negative_prompt,
        steps=settings.steps,
        guidance=settings.guidance,
        output_format=settings.format,
        seed=chunk.seed,
        opens=chunk.is_first,
        ends=chunk.is_last,
        cues=chunk.cues if cues else (),
        downbeat=chunk.downbeat if cues else None,
    )


@dataclass
class _Context:
    """What every chunk of one job shares."""

    backend: Backend
    cache: AudioCache
    store: ChunkStore
    settings: GenerationSettings
    stats: GenerationStats
    event: ChunkEvent
    warn: Callable[[str], None]
    disk: asyncio.Semaphore
    """One chunk's disk work at a time (see ``_cached``)."""
    timeout: float | None = None
    """The job's time limit, also for waiting on another job's identical chunk."""


async def _cached(
    key: str,
    request: GenerationRequest | ContinuationRequest,
    make: Callable[[], Awaitable[Audio]],
    keep: Callable[[Audio], None],
    index: int,
    ctx: _Context,
    *,
    continuation: bool = False,
) -> Audio:
    """The cached audio for ``key``, or ``make()``'s, handed to ``keep`` and then cached.

    Paid audio goes to the job's own store (``keep``) before the cache, and a cache that
    cannot take it is a warning: the job still has its chunk. Identical requests in flight
    at once, in this process or another on this machine, are made once: the first claims
    the key, the others wait for its cache entry.

    The claim records the provider's task id as soon as it exists. A claim that inherits
    one (its last holder died or gave up after paying) collects that task instead of
    paying again; the record is dropped once the audio is cached, or when nothing was
    charged.

    Disk work (a two-minute chunk is 40 MB) runs in a worker thread, so it does not hold
    up other chunks' polls and downloads, and one chunk at a time (``disk``), each read
    or download going to ``keep`` in the same step: read concurrently, a 60-minute job's
    cached chunks were all in memory at once (1.6 GB).
    """
    cache = ctx.cache

    def load() -> Audio | None:
        found = cache.get(key)
        if found is not None:
            keep(found)
        return found

    async def hit() -> Audio | None:
        async with ctx.disk:
            audio = await asyncio.to_thread(load)
        if audio is not None:
            ctx.stats.cache_hits += 1
            ctx.event(index, "cached")
        return audio

    found = await hit()
    if found is not None:
        return found
    claimed = await _claim(key, index, ctx, hit)
    if not isinstance(claimed, Claim):
        return claimed  # another job made it while we waited
    claim = claimed
    heartbeat = asyncio.ensure_future(_beat(claim))
    done = False
    try:
        found = await hit()  # finished between our look and our claim
        if found is not None:
            done = True
            return found
        ctx.event(index, "generating")
        try:
            made = await _resume(claim, request, index, ctx)
            if made is None:
                ctx.stats.requests += 1
                ctx.stats.continuations += continuation
                with recording_tasks(claim):
                    made = await make()
        except BaseException as exc:
            # The note stays while a task may still be collected: one noted here, or an
            # inherited one not collected. Only a task that ended failed was refunded.
            pending = claim.noted or claim.inherited
            done = pending is None or isinstance(exc, RemoteTaskError)
            ctx.event(index, "failed")
            raise

        def save() -> bool:
            try:
                keep(made)
            finally:  # even when the job's own store failed, the paid audio is kept if it can be
                try:
                    cache.put(key, made)
                except CacheError as exc:
                    ctx.warn(f"{exc} The chunk was kept for this job; a rerun will collect its task "
                             "again (without paying) if the provider still has it.")
                    return False
            return True

        async with ctx.disk:
            done = await asyncio.to_thread(save)
    finally:
        heartbeat.cancel()
        await asyncio.to_thread(claim.release, done)
    ctx.event(index, "done")
    return made


async def _resume(claim: Claim, request: GenerationRequest | ContinuationRequest, index: int,
                  ctx: _Context) -> Audio | None:
    """The audio of the task a previous holder of ``claim`` paid for, or None to ask anew."""
    if claim.inherited is None:
        return None
    log.info("chunk %d: collecting task %s, paid for by an earlier job", index + 1, claim.inherited)
    audio = await ctx.backend.resume(claim.inherited, request)
    if audio is None:
        ctx.warn(f"Task {claim.inherited}, left by an earlier job for chunk {index + 1}, cannot be "
                 "collected (it failed, so it was refunded; the provider no longer knows it; or its "
                 "audio is gone); asking for the chunk again.")
        claim.inherited = None  # nothing left to collect: a failure from here on drops the note
    else:
        ctx.stats.resumed += 1
    return audio


async def _claim(key: str, index: int, ctx: _Context,
                 hit: Callable[[], Awaitable[Audio | None]]) -> Claim | Audio:
    """The claim on ``key``, or the audio another job made while we waited for its claim."""
    claim = await _claim_once(ctx.cache, key)
    waited = 0.0
    while claim is None:  # someone else is making this very chunk: wait for it
        if ctx.timeout is not None and waited > ctx.timeout:
            raise BackendError(
                f"Waited {waited:.0f} s for another autoscore job that is making the same music (cache "
                f"claim on {ctx.cache.path_for(key).name}); nothing was charged for it here. Run again "
                "when that job is done, or raise --timeout.", charged=False,
            )
        ctx.event(index, "waiting")
        await asyncio.sleep(CLAIM_POLL)
        waited += CLAIM_POLL
        found = await hit()
        if found is not None:
            return found
        claim = await _claim_once(ctx.cache, key)
    return claim


async def _claim_once(cache: AudioCache, key: str) -> Claim | None:
    """One try at the claim, in a thread (a cluster's lock is a network call); a claim won
    for a job cancelled meanwhile is handed back, its task note kept."""
    def hand_back(claim: Claim | None) -> None:
        if claim is not None:
            claim.release(False)

    return await acquired_in_thread(lambda: cache.claim(key), hand_back)


async def _beat(claim: Claim) -> None:
    """Touch the claim while its chunk is being made, so waiters know its holder lives."""
    while True:
        await asyncio.sleep(CLAIM_HEARTBEAT)
        claim.touch()


async def _one(chunk: Chunk, ctx: _Context, gate: asyncio.Semaphore) -> None:
    request = request_for(chunk, ctx.settings, cues=ctx.backend.reads_cues)

    async def make() -> Audio:
        async with gate:
            return await ctx.backend.generate(request)

    key = ctx.cache.key_for(ctx.backend.name, ctx.backend.model, request)
    await _cached(key, request, make, lambda audio: ctx.store.save(chunk.index, audio), chunk.index, ctx)


async def _crossfade_job(chunks: Sequence[Chunk], ctx: _Context) -> None:
    gate = asyncio.Semaphore(max(1, ctx.backend.max_concurrency))
    results = await asyncio.gather(*(_one(c, ctx, gate) for c in chunks), return_exceptions=True)
    # Every chunk ran to its end (and the good ones are kept) before we report the first
    # failure: a rerun then asks only for what is missing.
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def _outpaint_job(chunks: Sequence[Chunk], ctx: _Context) -> None:
    """Each span's first chunk from the music endpoint, the rest continue the music so far."""
    previous: Audio | None = None
    for chunk in chunks:
        if chunk.is_first or previous is None:
            await _crossfade_job([chunk], ctx)
            previous = ctx.store.load(chunk)
            continue
        tail_frames = min(previous.frames, OUTPAINT_TAIL * previous.rate)
        source = Audio(np.ascontiguousarray(previous.samples[-tail_frames:]), previous.rate)
        request = ContinuationRequest(
            source=source,
            prompt=chunk.prompt,
            extend_after=chunk.duration,
            negative_prompt=chunk.negative_prompt,
            steps=ctx.settings.steps,
            guidance=ctx.settings.guidance,
            output_format=ctx.settings.format,
            seed=chunk.seed,
            ends=chunk.is_last,
            # The chunk starts at the join, so its clock is the extension's.
            cues=chunk.cues if ctx.backend.reads_cues else (),
        )
        kept: list[Audio] = []
        keep = functools.partial(_keep_extension, source=source, index=chunk.index, store=ctx.store,
                                 kept=kept)
        key = ctx.cache.key_for(ctx.backend.name, ctx.backend.model, request)
        await _cached(key, request, functools.partial(ctx.backend.outpaint, request), keep, chunk.index,
                      ctx, continuation=True)
        previous = kept[-1]


def _keep_extension(whole: Audio, *, source: Audio, index: int, store: ChunkStore, kept: list[Audio]) -> None:
    """Store only what a continuation added: the source is already the previous chunk's end."""
    skip = round(source.frames * whole.rate / source.rate)
    extension = Audio(np.ascontiguousarray(whole.samples[skip:]), whole.rate)
    store.save(index, extension)
    kept.append(extension)


def generate_chunks(
    chunks: Sequence[Chunk],
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    settings: GenerationSettings,
    *,
    join: str = "crossfade",
    event: ChunkEvent | None = None,
    warn: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> GenerationStats:
    """Generate every chunk into ``store``; raise the first failure after all have settled.

    ``timeout`` bounds the whole job in seconds (None: the backend's default, which
    grows with the number of chunks). ``stats.cost`` is what the backend was charged,
    also when this raises (read it from the backend then).
    """
    stats = GenerationStats()
    ctx = _Context(backend, cache, store, settings, stats, event or (lambda _i, _s: None),
                   warn or (lambda message: log.warning("%s", message)), asyncio.Semaphore(1), timeout)
    job = _outpaint_job if join == "outpaint" else _crossfade_job
    if backend.on_warning is None:
        backend.on_warning = ctx.warn

    async def run() -> None:
        ctx.disk = asyncio.Semaphore(1)  # bound to this loop
        loop, main = asyncio.get_running_loop(), asyncio.current_task()
        assert main is not None

        def stop(_reason: str) -> None:
            loop.call_soon_threadsafe(main.cancel)
        backend.start_job(len(chunks), timeout)
        for c in chunks:
            ctx.event(c.index, "queued")
        try:
            # A process shutting down cancels the job: paid chunks stay cached or noted.
            with shutdown.on_stop(stop):
                await job(chunks, ctx)
        finally:
            await backend.aclose()
            stats.cost = backend.spent

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        reason = shutdown.stopping()
        if reason is None:
            raise
        raise Stopped(f"Stopped while making the music: {reason}.") from None
    return stats
