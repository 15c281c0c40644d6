"""Score a moviepy clip in place of a file: ``clip.with_effects([AutoScore(preset="vlog")])``.

People who cut in moviepy have a clip, not a file: it may be composited, cut, or have no
audio at all, and encoding the picture just to probe it would waste minutes. So the clip
is scored on its own duration through the same stages as ``autoscore score`` (preset,
notes, plan, generation with the same cache, assembly, ducking and mixing); only the
clip's audio is read, through moviepy, into a temporary WAV the mixer can decode. The
result is a copy of the clip with the mix as its audio; the caller's clip is untouched.

    from moviepy import VideoFileClip
    from autoscore.integrations.moviepy import AutoScore

    clip = VideoFileClip("talk.mp4").subclipped(10, 70)
    scored = clip.with_effects([AutoScore(preset="vlog", notes="talk.notes.txt")])
    scored.write_videofile("talk.scored.mp4")

The mix is handed back at ``audio_fps`` (44.1 kHz, what ``write_videofile`` writes unless
told otherwise), resampled by ffmpeg: moviepy converts rates by picking the nearest
sample, and doing that from 48 kHz to 44.1 kHz raised the 9-16 kHz band of a test mix by
14 dB of noise. Pass the same ``audio_fps`` to the effect and to ``write_videofile``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from moviepy import Effect
from moviepy.audio.AudioClip import AudioArrayClip

from ..errors import NotesError, OptionError
from ..media.ffmpeg import Writer, run
from ..media.files import scratch_folder
from ..media.pcm import PcmFile, PcmWriter, decode_for_mixing
from ..mixing.mix import mix_audio
from ..models import MIX_RATE, Note, PictureCuts
from ..music.cache import AudioCache
from ..options import ScoreOptions
from ..picture.detect import DetectSettings, FrameScorer
from ..picture.detect import picture_cuts as detect_cuts
from ..pipeline import Reporter, check_cost, compose_music, plan_music
from ..text.notes import parse_notes

log = logging.getLogger(__name__)

__all__ = ["AutoScore", "score_clip"]

READ_SECONDS = 0.5
"""Clip audio is read this many seconds at a time: memory stays flat on long clips, and a
block stays well inside an ``AudioFileClip``'s read buffer (200000 frames by default);
a block larger than that buffer comes back garbled."""


def score_clip(
    clip: Any,
    options: ScoreOptions | None = None,
    *,
    audio_fps: int = 44100,
    reporter: Reporter | None = None,
    **changes: Any,
) -> Any:
    """A copy of ``clip`` whose audio is its own audio (if any) with music mixed under it.

    ``options`` and keyword ``changes`` to it are a ``ScoreOptions``, as for
    ``autoscore.score``; its ``notes`` may be a notes file (any format ``autoscore score
    --notes`` takes) or a list of ``Note`` (e.g. ``parse_notes_text(text).notes``).
    ``audio_fps`` is the rate of the returned audio: use the one you will write with.
    Raises an ``AutoscoreError`` on any failure.
    """
    opts = ScoreOptions.of(options, **changes)
    duration = _duration_of(clip)
    if not 8000 <= audio_fps <= 192000:
        raise OptionError(f"audio_fps {audio_fps} is out of range: use 8000 to 192000 (44100 or 48000).")
    for name in ("format", "stems", "report", "music_track", "dry_run", "timeline"):
        if getattr(opts, name) not in (None, False):
            raise OptionError(f"A moviepy clip does not take {name!r}: its audio is returned, not written.")
    note_list, notes_source, warnings = _notes(opts.notes)
    cuts = _cuts_if_asked(clip, opts.cuts, bool(note_list))
    job = plan_music(duration, note_list, opts, notes_source=notes_source, warnings=warnings, cuts=cuts)
    for w in job.warnings:
        if reporter is not None:
            reporter.warn(w)
        else:
            log.warning("%s", w)
    check_cost(job.plan, opts.max_cost)

    cache = AudioCache.for_job(opts.cache_dir, opts.use_cache)
    with scratch_folder("autoscore-clip-") as work:
        original = _write_clip_audio(clip.audio, duration, work / "original.wav")
        composed = compose_music(job, work, opts, cache=cache, reporter=reporter)
        if reporter is not None:
            reporter.stage("mix")
        with PcmWriter(work / "mix.f32", MIX_RATE) as writer:
            decoded = None if original is None else decode_for_mixing(original, work)
            report = mix_audio(decoded, composed.music, job.preset.mix, duration=duration, sink=writer.write)
        log.info("scored a %.2f s clip: %s, %d request(s), %d from cache, cost $%.4f, %.1f LUFS",
                 duration, composed.backend, composed.requests, composed.cache_hits, composed.cost,
                 report.integrated_lufs if report.integrated_lufs is not None else -math.inf)
        mixed = writer.file if audio_fps == MIX_RATE else _resample(writer.file, audio_fps, work / "out.f32")
        samples = _outliving(mixed)
    audio = AudioArrayClip(samples, fps=audio_fps).with_duration(duration)
    return clip.with_audio(audio)


class AutoScore(Effect):  # type: ignore[misc]  # moviepy ships no type information
    """The moviepy effect: ``clip.with_effects([AutoScore(preset="vlog")])``.

    Takes what ``score_clip`` takes: a ``ScoreOptions`` and/or keyword changes to it,
    ``audio_fps`` and ``reporter``. The options are checked here, when the effect is made.
    """

    def __init__(
        self,
        options: ScoreOptions | None = None,
        *,
        audio_fps: int = 44100,
        reporter: Reporter | None = None,
        **changes: Any,
    ) -> None:
        self.options = ScoreOptions.of(options, **changes)
        self.audio_fps = audio_fps
        self.reporter = reporter

    def __repr__(self) -> str:
        return f"AutoScore({self.options!r}, audio_fps={self.audio_fps})"

    def apply(self, clip: Any) -> Any:
        return score_clip(clip, self.options, audio_fps=self.audio_fps, reporter=self.reporter)


def _cuts_if_asked(clip: Any, cuts: str, has_notes: bool) -> PictureCuts | None:
    """The clip's cuts when ``cuts`` asks for them (see ``guides.picture_cuts``)."""
    is_video = getattr(clip, "size", None) is not None and hasattr(clip, "iter_frames")
    if cuts == "on" and not is_video:
        raise OptionError("cuts='on' follows the picture, and this clip has none (it is audio only): "
                          "leave cuts at 'auto', or score a video clip.")
    if cuts == "off" or not is_video or (cuts == "auto" and has_notes):
        return None
    return clip_cuts(clip)


def clip_cuts(clip: Any, settings: DetectSettings | None = None) -> PictureCuts:
    """The cuts of a moviepy clip, found in its own frames: what the edit shows, which may be
    no file's (a concatenation, a subclip). The same detector as for files; only the frames
    come from moviepy instead of ffmpeg."""
    settings = settings or DetectSettings()
    fps = float(getattr(clip, "fps", None) or 25.0)
    scorer: FrameScorer | None = None
    batch: list[np.ndarray] = []
    count = 0
    for frame in clip.iter_frames(fps=fps, dtype="uint8"):
        gray = _small_gray(np.asarray(frame), settings.width)
        if scorer is None:
            scorer = FrameScorer(settings, gray.shape[1], gray.shape[0])
        batch.append(gray)
        count += 1
        if len(batch) == 64:
            scorer.add(np.stack(batch))
            batch = []
    if scorer is None:
        return PictureCuts((), (), 0.0, fps, detector=settings.key())
    if batch:
        scorer.add(np.stack(batch))
    times = np.arange(count) / fps
    return detect_cuts(scorer.result(), times, fps=fps, analysed=count / fps, settings=settings)


def _small_gray(frame: np.ndarray, width: int) -> np.ndarray:
    """Luma, averaged down by a whole factor to about ``width`` pixels wide (area scaling)."""
    rgb = frame[..., :3].astype(np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    k = max(1, luma.shape[1] // width)
    h, w = luma.shape[0] // k * k, luma.shape[1] // k * k
    small = luma[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    out: np.ndarray = np.clip(small + 0.5, 0, 255).astype(np.uint8)
    return out


def _duration_of(clip: Any) -> float:
    duration = getattr(clip, "duration", None)
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise OptionError(
            f"The clip lasts {duration!r} s, so there is nothing to score: give it a duration "
            "with clip.with_duration(seconds)."
        )
    return float(duration)


def _notes(notes: str | Path | Sequence[Note] | None) -> tuple[list[Note], str, list[str]]:
    """A clip has no file to find notes beside, so notes come only from the caller."""
    if notes is None:
        return [], "", []
    if isinstance(notes, (str, Path)):
        path = Path(notes)
        if not path.is_file():
            raise NotesError(f"Notes file {path} does not exist: check the path given as notes.")
        result = parse_notes(path)
        return list(result.notes), str(path), list(result.warnings)
    items = list(notes)
    if not all(isinstance(n, Note) for n in items):
        raise NotesError("notes must be a notes file or a list of autoscore.models.Note: "
                         "use autoscore.notes.parse_notes_text(text).notes for notes in a string.")
    return items, "notes", []


def _write_clip_audio(audio: Any, duration: float, path: Path) -> Path | None:
    """The clip's audio as a float WAV for the mixer, read block by block; None if it has none.

    Read at the audio's own rate (an ``AudioFileClip`` holds 44.1 kHz): moviepy picks the
    nearest sample when asked for another rate, which aliases, while ffmpeg resamples
    properly when the mixer decodes this file at 48 kHz.
    """
    if audio is None:
        return None
    rate = int(getattr(audio, "fps", None) or MIX_RATE)
    channels = int(getattr(audio, "nchannels", None) or 2)
    end = duration if audio.duration is None else min(duration, float(audio.duration))
    total = max(0, math.floor(end * rate))
    step = round(READ_SECONDS * rate)
    writer = Writer(
        ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
         "-c:a", "pcm_f32le", "-f", "wav", str(path)],
        what="write the clip's audio for mixing",
    )
    try:
        for first in range(0, total, step):
            times = np.arange(first, min(first + step, total)) / rate
            block = np.asarray(audio.to_soundarray(tt=times, fps=rate, quantize=False), dtype=np.float32)
            writer.write(block.reshape(len(times), -1)[:, :channels])
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return path


def _resample(pcm: PcmFile, rate: int, path: Path) -> PcmFile:
    """``pcm`` at another rate, file to file, so memory stays flat on long clips."""
    run(["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(pcm.rate), "-ac", str(pcm.channels),
         "-i", str(pcm.path), "-af", f"aresample={rate}", "-f", "f32le", "-c:a", "pcm_f32le", str(path)],
        what=f"resample the mix to {rate} Hz")
    return PcmFile(path, rate, pcm.channels)


def _outliving(pcm: PcmFile) -> np.ndarray:
    """The mix as an array that survives the removal of the scratch folder.

    On POSIX a memory map stays valid after its file is deleted, so an hour-long mix
    (1.4 GB of float32) costs page cache rather than resident memory; elsewhere, and
    for an empty file that cannot be mapped, it is read into memory.
    """
    if os.name == "posix" and pcm.frames > 0:
        return np.memmap(pcm.path, dtype="<f4", mode="r").reshape(-1, pcm.channels)
    return pcm.read_all()
