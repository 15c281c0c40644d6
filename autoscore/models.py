"""The plain values that flow between pipeline stages.

Stages hand each other these frozen dataclasses and nothing else, so every stage in the
middle of the pipeline (notes, prompts, plan, assemble, duck, mix) can be exercised in a
test with values typed in by hand, without ffmpeg, disk or network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MIX_RATE",
    "Audio",
    "AudioStream",
    "Chapter",
    "Chunk",
    "MediaInfo",
    "Note",
    "PictureCuts",
    "Section",
    "SectionCue",
    "VideoStream",
]


MIX_RATE = 48000
"""Rate of the mix and of everything after generation: what AAC and Opus want for video."""
SPEECH_RATE = 16000
"""Rate of the mono copy that speech detection reads (what the voice-activity detector takes)."""


@dataclass(frozen=True, eq=False)
class Audio:
    """PCM in memory: float32 samples shaped (frames, channels), full scale at 1.0.

    One layout everywhere (interleaved frames, float32) so that stages never guess and
    ffmpeg can read or write it as ``f32le`` without a copy.
    """

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        s = self.samples
        if s.ndim != 2:
            raise ValueError(f"Audio samples must be 2-D (frames, channels), got {s.shape}")
        if s.dtype != np.float32:
            object.__setattr__(self, "samples", s.astype(np.float32))

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    @classmethod
    def silence(cls, seconds: float, rate: int, channels: int = 2) -> Audio:
        return cls(np.zeros((round(seconds * rate), channels), np.float32), rate)


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    width: int
    height: int
    fps: float | None
    """Average frame rate; None for still images or when the container does not say."""


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


@dataclass(frozen=True)
class MediaInfo:
    """What probing learned; identical whether ffprobe or the ffmpeg fallback found it."""

    path: Path
    duration: float
    format_name: str
    video: VideoStream | None
    audio: AudioStream | None
    chapters: tuple[Chapter, ...] = ()
    extra_streams: int = 0
    """Streams other than the first video and first audio (subtitles, data, more audio)."""
    timecode: str | None = None
    """The start timecode the file carries (``01:00:00:00``; ``;`` before the frames when
    drop-frame), which an editor's timeline starts at; None when it carries none."""

    @property
    def is_audio_only(self) -> bool:
        return self.video is None

    @property
    def frame_duration(self) -> float:
        """One video frame in seconds: the tolerance for 'same duration'."""
        if self.video is None or not self.video.fps:
            return 0.05
        return 1.0 / self.video.fps


@dataclass(frozen=True)
class PictureCuts:
    """Where the picture cuts, and how much it moves: what the music follows without notes.

    ``cuts`` are the times (seconds, ascending, the first frame of each new shot) of hard
    cuts, and of the middle of fades where the detector finds them. ``motion`` samples the
    picture's mean absolute difference between consecutive frames, 0 (still) to 1 (every
    pixel changes completely), as (time, value) pairs about every ``motion_step`` seconds,
    so that a section can average it over any stretch. ``analysed`` is how many seconds of
    picture were decoded: less than the input's duration when decoding failed part way
    (the cuts found before that point still count).
    """

    cuts: tuple[float, ...]
    motion: tuple[tuple[float, float], ...]
    analysed: float
    fps: float
    motion_step: float = 0.5
    detector: str = ""
    """Which detector and settings found them, for the plan and the cache key."""

    def motion_between(self, start: float, end: float) -> float:
        """Mean motion over ``[start, end)``; 0 where nothing was sampled."""
        values = [v for t, v in self.motion if start <= t < end]
        return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Note:
    """One scene note: from ``start`` (to ``end`` when the notes gave a range)."""

    start: float
    text: str
    end: float | None = None
    modifiers: tuple[tuple[str, str], ...] = ()
    """Inline ``[key: value]`` or ``[no drums]`` modifiers, in the order written."""
    source: str = ""
    """Where it came from (``notes.txt:3``) so warnings can point at the line."""


@dataclass(frozen=True)
class Section:
    """A stretch of the video that gets one prompt."""

    index: int
    start: float
    end: float
    text: str
    prompt: str
    negative_prompt: str
    arc: str
    """Place in the arc: opening, build, peak, ending (or a single 'whole')."""
    energy: float = 0.5
    """0 (still) to 1 (flat out); the procedural composer reads it, prompts mention it."""
    modifiers: tuple[tuple[str, str], ...] = ()

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SectionCue:
    """One section's words inside one request, on the request's own clock (0 = its first sample).

    The remote model hears only the request's prompt, so a plan words every section it
    carries into that prompt; the embedded composer also reads these cues and changes the
    music where each one starts. ``energy`` and ``arc`` are the section's own values,
    which words can only approximate.
    """

    start: float
    end: float
    prompt: str
    negative_prompt: str = ""
    energy: float = 0.5
    arc: str = "whole"
    index: int = 0
    """The section's index in the plan, for showing which sections a request carries."""


@dataclass(frozen=True)
class Chunk:
    """One generation request in a plan, placed on the output timeline.

    ``start`` is where its first sample lands on the timeline; it covers
    ``[start, start + duration)``. Neighbours overlap by ``overlap_before`` /
    ``overlap_after`` seconds, which assemble uses for the crossfade.
    """

    index: int
    start: float
    duration: int
    """Whole seconds, 1..120, as sent to the generator."""
    prompt: str
    negative_prompt: str
    section_index: int
    overlap_before: float = 0.0
    overlap_after: float = 0.0
    is_first: bool = False
    is_last: bool = False
    seed: int = 0
    """Variation index: distinct chunks of one job never share cached audio."""
    cues: tuple[SectionCue, ...] = ()
    """The sections whose words this request carries, on its own clock, in order."""
    downbeat: float | None = None
    """Seconds from the chunk's first sample to a downbeat of the score's beat grid (the
    grid fitted to the picture's cuts), for a generator that can place its bars; None: any."""

    @property
    def end(self) -> float:
        return self.start + self.duration
