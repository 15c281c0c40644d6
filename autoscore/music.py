"""``autoscore generate``: a prompt in, a music file out, at any length.

The same plan, generate and assemble stages that score a video, minus the video: one
section spanning the whole length, so music past 120 s is chunked and joined exactly as
it is under a film.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .assemble import assemble
from .backends import make_backend, resolve_backend_name
from .cache import AudioCache
from .ffmpeg import AUDIO_FORMATS, run
from .generate import ChunkStore, generate_chunks
from .models import MIX_RATE, Section
from .pcm import PcmWriter
from .plan import make_plan
from .presets import GenerationSettings, Preset
from .render import atomic_output, check_output_path

__all__ = ["MusicResult", "generate_music"]


@dataclass(frozen=True)
class MusicResult:
    output: Path
    backend: str
    requests: int
    cost: float


def generate_music(
    prompt: str,
    duration: float,
    output: Path,
    *,
    fmt: str,
    negative: str = "",
    seed: int = 0,
    steps: int = 8,
    guidance: float = 1.0,
    backend: str = "auto",
    api_key: str | None = None,
    api_base: str | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> MusicResult:
    """Write ``duration`` seconds of music for ``prompt`` to ``output`` in format ``fmt``."""
    from .backends.base import GenerationRequest

    # Validate the request fields the user typed before anything is spent.
    GenerationRequest(prompt, 1, negative, steps, guidance, fmt, seed).validate()
    check_output_path(Path("/nonexistent-input"), output)
    name = resolve_backend_name(backend, api_key)
    chosen = make_backend(name, api_key=api_key, api_base=api_base)
    section = Section(0, 0.0, float(duration), prompt, prompt, negative, "whole")
    preset = Preset(generation=GenerationSettings(steps=steps, guidance=guidance, format=fmt))
    plan = make_plan(
        duration, [section], preset, backend_name=name,
        price_per_request=chosen.price_per_request, outpaint_price=chosen.outpaint_price,
    )
    # A standalone piece is one whole: chunk seeds follow the user's seed.
    chunks = tuple(replace(c, seed=seed * 1000 + c.index) for c in plan.chunks)
    spec = AUDIO_FORMATS[fmt]
    with tempfile.TemporaryDirectory(prefix="autoscore-") as tmp:
        work = Path(tmp)
        store = ChunkStore(work / "chunks")
        stats = generate_chunks(
            chunks, chosen, AudioCache(cache_dir, enabled=use_cache), store, preset.generation
        )
        with PcmWriter(work / "music.f32", MIX_RATE) as writer:
            assemble(chunks, store.load, duration, writer, rate=MIX_RATE, fade_in=0.02, fade_out=1.5)
        with atomic_output(output) as tmp_out:
            run(
                ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(MIX_RATE), "-ac", "2",
                 "-i", str(writer.file.path), "-c:a", spec.codec, *spec.codec_args, "-f", spec.muxer,
                 str(tmp_out)],
                what=f"write {output.name}",
            )
    cost = stats.cost(chosen.price_per_request, chosen.outpaint_price)
    return MusicResult(output, name, stats.requests, cost)
