"""``autoscore generate``: a prompt in, a music file out, at any length.

The same plan, generate and assemble stages that score a video, minus the video: one
section spanning the whole length, so music past 120 s is chunked and joined exactly as
it is under a film. The finished piece is exported with pydub, which writes any of the
seven formats with tags (title, artist, comment) so a bed dropped into an editor or a
podcast host says what it is and how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import FFmpegError
from ..media.ffmpeg import AUDIO_FORMATS, ffmpeg_exe
from ..media.files import scratch_folder
from ..media.pcm import PcmFile, PcmWriter
from ..media.render import atomic_output, check_output_path
from ..models import MIX_RATE, Section
from ..text.presets import GenerationSettings, Preset
from .assemble import assemble
from .backends import make_backend, resolve_backend_name
from .cache import AudioCache
from .generate import ChunkStore, generate_chunks
from .plan import make_plan

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
    timeout: float | None = None,
) -> MusicResult:
    """Write ``duration`` seconds of music for ``prompt`` to ``output`` in format ``fmt``."""
    from .backends.base import MAX_SEED, GenerationRequest

    # Validate the request fields the user typed (the seed too: 0 .. MAX_SEED) before
    # anything is spent.
    GenerationRequest(prompt, 1, negative, steps, guidance, fmt, seed).validate()
    check_output_path(None, output)
    name = resolve_backend_name(backend, api_key)
    chosen = make_backend(name, api_key=api_key, api_base=api_base)
    section = Section(0, 0.0, float(duration), prompt, prompt, negative, "whole")
    preset = Preset(generation=GenerationSettings(steps=steps, guidance=guidance, format=fmt))
    plan = make_plan(
        duration, [section], preset, backend_name=name,
        price_per_request=chosen.price_per_request, outpaint_price=chosen.outpaint_price,
    )
    # A standalone piece is one whole: chunk seeds follow the user's seed. They wrap into
    # the seed range, so a large seed cannot make a chunk's request invalid mid-job; every
    # seed below MAX_SEED // 1000 keeps the chunk seeds (and cache entries) it always had.
    chunks = tuple(replace(c, seed=(seed * 1000 + c.index) % (MAX_SEED + 1)) for c in plan.chunks)
    with scratch_folder() as work:
        store = ChunkStore(work / "chunks")
        stats = generate_chunks(
            chunks, chosen, AudioCache(cache_dir, enabled=use_cache), store, preset.generation,
            timeout=timeout,
        )
        with PcmWriter(work / "music.f32", MIX_RATE) as writer:
            assemble(chunks, store.load, duration, writer, rate=MIX_RATE, fade_in=0.02, fade_out=1.5)
        tags = {"title": prompt[:200], "artist": "autoscore", "comment": f"{name} backend, seed {seed}"}
        with atomic_output(output) as tmp_out:
            export(writer.file, tmp_out, fmt, tags)
    return MusicResult(output, name, stats.requests, stats.cost)


def export(music: PcmFile, path: Path, fmt: str, tags: dict[str, str]) -> None:
    """Write ``music`` to ``path`` in ``fmt`` with ``tags``, through pydub."""
    import warnings

    with warnings.catch_warnings():
        # pydub looks for ffmpeg on PATH at import and warns when there is none; we hand
        # it imageio-ffmpeg's binary right after.
        warnings.simplefilter("ignore")
        from pydub import AudioSegment

    AudioSegment.converter = ffmpeg_exe()
    pcm16 = (np.clip(music.read_all(), -1.0, 1.0) * 32767.0).round().astype("<i2")
    segment = AudioSegment(pcm16.tobytes(), sample_width=2, frame_rate=music.rate, channels=music.channels)
    spec = AUDIO_FORMATS[fmt]
    parameters = [*spec.codec_args, "-loglevel", "error"]
    try:
        handle = segment.export(path, format=spec.muxer, codec=spec.codec, parameters=parameters, tags=tags)
        handle.close()
    except Exception as exc:  # pydub raises CouldntEncodeError with ffmpeg's stderr
        raise FFmpegError(f"Could not write {path.name}: {str(exc).strip().splitlines()[-1]}") from exc
