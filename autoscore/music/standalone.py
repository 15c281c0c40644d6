"""``autoscore generate``: a prompt in, a music file out, at any length.

The same path that scores a video, minus the video: one section spanning the whole
length goes through the same plan, generate (cache, claims, fallback) and assemble
stages as ``score``, so music past 120 s is chunked and joined exactly as it is under a
film. The piece is then encoded by ffmpeg straight from the assembled file, block by
block, with tags (title, artist, comment) as ffmpeg metadata, so a bed dropped into an
editor or a podcast host says what it is and how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..media.ffmpeg import Writer, encode_args
from ..media.files import atomic_output, scratch_folder
from ..media.pcm import PcmFile
from ..media.render import check_output_path
from ..models import Section
from ..options import ScoreOptions
from ..progress import Reporter
from ..text.presets import GenerationSettings, MixSettings, Preset
from ..text.sections import shared_tempo
from .backends import backend_prices, resolve_backend_name
from .backends.base import MAX_SEED, GenerationRequest
from .cache import AudioCache

__all__ = ["MusicResult", "generate_music"]

BLOCK_FRAMES = 1 << 17
"""Frames handed to the encoder at a time: an hour of music never sits in memory."""


@dataclass(frozen=True)
class MusicResult:
    output: Path
    backend: str
    requests: int
    cost: float
    fallback_used: bool = False


def generate_music(
    prompt: str,
    duration: float,
    output: Path,
    options: ScoreOptions | None = None,
    *,
    fmt: str,
    negative: str = "",
    seed: int = 0,
    steps: int = 8,
    guidance: float = 1.0,
    reporter: Reporter | None = None,
    **changes: Any,
) -> MusicResult:
    """Write ``duration`` seconds of music for ``prompt`` to ``output`` in format ``fmt``.

    ``options`` and keyword ``changes`` are a ``ScoreOptions`` as for ``score`` (backend,
    api_key, api_base, cache_dir, use_cache, fallback, timeout, max_cost, ...).
    """
    from ..pipeline import MusicJob, check_cost, compose_music
    from .plan import make_plan

    opts = ScoreOptions.of(options, **changes)
    # Validate the request fields the user typed (the seed too: 0 .. MAX_SEED) before
    # anything is spent.
    GenerationRequest(prompt, 1, negative, steps, guidance, fmt, seed).validate()
    check_output_path(None, output)
    name = resolve_backend_name(opts.backend, opts.api_key)
    price, outpaint_price = backend_prices(name)
    section = Section(0, 0.0, float(duration), prompt, prompt, negative, "whole")
    preset = Preset(generation=GenerationSettings(steps=steps, guidance=guidance, format=fmt),
                    mix=replace(MixSettings(), fade_in=0.02, fade_out=1.5))
    plan = make_plan(duration, [section], preset, backend_name=name, price_per_request=price,
                     outpaint_price=outpaint_price, join=opts.join, policy=opts.sections or "auto",
                     max_cost=opts.max_cost)
    check_cost(plan, opts.max_cost)
    # A standalone piece is one whole: chunk seeds follow the user's seed. They wrap into
    # the seed range, so a large seed cannot make a chunk's request invalid mid-job; every
    # seed below MAX_SEED // 1000 keeps the chunk seeds (and cache entries) it always had.
    chunks = tuple(replace(c, seed=(seed * 1000 + c.index) % (MAX_SEED + 1)) for c in plan.chunks)
    plan = replace(plan, chunks=chunks)
    job = MusicJob(float(duration), preset, (section,), plan, name, "", (), shared_tempo(preset, prompt))
    cache = AudioCache.for_job(opts.cache_dir, opts.use_cache)
    with scratch_folder() as work:
        composed = compose_music(job, work, opts, cache=cache, reporter=reporter)
        tags = {"title": prompt[:200], "artist": "autoscore",
                "comment": f"{composed.backend} backend, seed {seed}"}
        with atomic_output(output) as tmp_out:
            encode_file(composed.music, tmp_out, fmt, tags)
    return MusicResult(output, composed.backend, composed.requests, composed.cost, composed.fallback_used)


def encode_file(music: PcmFile, path: Path, fmt: str, tags: dict[str, str]) -> None:
    """Encode ``music`` into ``path`` in ``fmt`` with ``tags``, streaming it block by block."""
    args = encode_args(path, fmt, music.rate, music.channels)
    metadata = [arg for key, value in tags.items() for arg in ("-metadata", f"{key}={value}")]
    writer = Writer([*args[:-1], *metadata, args[-1]], what=f"write {path.name}")
    try:
        for block in music.blocks(BLOCK_FRAMES):
            writer.write(np.clip(block, -1.0, 1.0))
        writer.close()
    except BaseException:
        writer.abort()
        raise
