"""From a finished job to files on disk: the music beside the timeline, then the timeline.

The music is the job's own, as it was before the mix (``compose_music``'s raw float file),
encoded once to 24-bit FLAC or WAV; the ducking and the gains come from the mix's
``MixReport``, so the timeline plays back what the render did, minus the limiter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media import ffmpeg as ff
from ..media.files import atomic_output
from ..media.pcm import PcmFile
from ..mixing.mix import MixReport
from ..models import MediaInfo, Section
from . import music_path_for
from .model import (
    MusicClip,
    TimelinePlan,
    cut_markers,
    frame_rate,
    section_markers,
    thin_envelope,
    timecode_seconds,
)

__all__ = ["plan_timeline", "write", "write_music"]

_CODECS = {".flac": ["-c:a", "flac", "-sample_fmt", "s32", "-f", "flac"],
           ".wav": ["-c:a", "pcm_s24le", "-f", "wav"]}


def plan_timeline(timeline: Path, info: MediaInfo, sections: tuple[Section, ...], cuts: tuple[float, ...],
                  music_path: Path, music_seconds: float, mix: MixReport) -> TimelinePlan:
    """What the timeline holds for this job (pure: nothing is read or written)."""
    env = mix.envelope
    gain_db = mix.music_gain_db + mix.final_gain_db
    times = np.arange(len(env.duck_db)) / env.control_rate
    keyframes = thin_envelope(times, env.duck_db, gain_db, music_seconds)
    markers = section_markers([(s.start, s.end, s.text, s.prompt) for s in sections])
    markers += cut_markers(cuts, info.duration)
    rate = frame_rate(info.video.fps if info.video else None)
    return TimelinePlan(
        name=info.path.stem, rate=rate, start=timecode_seconds(info.timecode, rate),
        source=info.path.resolve(), duration=info.duration,
        has_video=info.video is not None, has_audio=info.audio is not None,
        original_gain_db=mix.final_gain_db,
        music=MusicClip(music_path.resolve(), music_seconds, gain_db, keyframes), markers=markers,
        width=info.video.width if info.video else 0, height=info.video.height if info.video else 0,
    )


def write_music(music: PcmFile, path: Path) -> None:
    """The raw float music as a 24-bit file at ``path``, renamed into place when complete."""
    codec = _CODECS[path.suffix.lower()]
    with atomic_output(path) as tmp:
        ff.run(["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(music.rate), "-ac", str(music.channels),
                "-i", str(music.path), *codec, str(tmp)],
               what=f"write the music for the timeline ({path.name})")


def write(timeline: Path, info: MediaInfo, sections: tuple[Section, ...], cuts: tuple[float, ...],
          music: PcmFile, mix: MixReport) -> Path:
    """The music, then the timeline that points at it; a timeline that fails takes its music with it."""
    music_path = music_path_for(timeline)
    plan = plan_timeline(timeline, info, sections, cuts, music_path, music.duration, mix)
    write_music(music, music_path)
    try:
        _write_timeline(timeline, plan)
    except BaseException:
        music_path.unlink(missing_ok=True)
        raise
    return timeline


def _write_timeline(timeline: Path, plan: TimelinePlan) -> None:
    suffix = timeline.suffix.lower()
    if suffix == ".otio":
        from .otio_io import write_otio

        with atomic_output(timeline) as tmp:
            write_otio(plan, tmp)
        return
    if suffix == ".xml":
        from .xmeml import xmeml_bytes as to_bytes
    else:
        from .fcpxml import fcpxml_bytes as to_bytes
    data = to_bytes(plan)
    with atomic_output(timeline) as tmp:
        tmp.write_bytes(data)
