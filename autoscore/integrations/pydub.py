"""autoscore for pydub users: music as an ``AudioSegment``, and an ``AudioSegment`` scored.

pydub is how many podcast and audio scripts hold audio, so this is what they call:

    from autoscore.integrations.pydub import generate_segment, score_segment

    bed = generate_segment("warm lo-fi piano, 80 BPM", 30)
    episode = score_segment(AudioSegment.from_file("episode.mp3"), preset="podcast-intro")

Both go through the same path as the command line (``generate_music`` and ``score``),
by way of a WAV file in a scratch folder, so pydub holds only what it returns.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..media.ffmpeg import ffmpeg_exe
from ..media.files import scratch_folder
from ..options import ScoreOptions

__all__ = ["generate_segment", "score_segment"]


def _pydub() -> Any:
    with warnings.catch_warnings():
        # pydub looks for ffmpeg on PATH at import and warns when there is none; it is
        # handed imageio-ffmpeg's binary right after.
        warnings.simplefilter("ignore")
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_exe()
    return AudioSegment


def generate_segment(prompt: str, seconds: float, options: ScoreOptions | None = None, *,
                     negative: str = "", seed: int = 0, **changes: Any) -> Any:
    """``seconds`` of music for ``prompt`` as a pydub ``AudioSegment`` (48 kHz stereo)."""
    from ..music.standalone import generate_music

    segment_class = _pydub()
    with scratch_folder("autoscore-pydub-") as work:
        path = work / "music.wav"
        generate_music(prompt, seconds, path, options, fmt="wav", negative=negative, seed=seed, **changes)
        return _read(segment_class, path)


def score_segment(segment: Any, options: ScoreOptions | None = None, **changes: Any) -> Any:
    """``segment`` with music mixed under it, as a new ``AudioSegment`` of the same length."""
    from ..pipeline import score

    if ScoreOptions.of(options, **changes).timeline is not None:
        raise OptionError("A pydub segment does not take 'timeline': its media lives only in memory, so a "
                          "timeline would point at nothing. Export it and use autoscore.score.")
    segment_class = _pydub()
    with scratch_folder("autoscore-pydub-") as work:
        source, scored = work / "input.wav", work / "scored.wav"
        segment.export(str(source), format="wav").close()
        score(source, scored, options, **changes)
        return _read(segment_class, scored)


def _read(segment_class: Any, path: Path) -> Any:
    """16-bit WAV, which pydub reads itself (anything else needs ffprobe, which pip cannot bring)."""
    with path.open("rb") as f:  # pydub leaves a file it opened itself open
        return segment_class.from_file(f, format="wav")
