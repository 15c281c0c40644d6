"""What goes on an editor's timeline, decided without any timeline library.

The exporters (``otio_io``, ``xmeml``) only translate a ``TimelinePlan`` into their
format, so everything worth testing without OpenTimelineIO lives here: which tracks,
how long the music clip is, where the markers go, and which few keyframes describe the
ducking.

Times stay in seconds until one function, ``frames``, turns them into whole frames at
the timeline's rate: an editor snaps everything to frames anyway, and rounding each time
once from seconds (never adding rounded durations) is what keeps an hour at 29.97 free of
drift. ``frame_rate`` snaps a probed rate such as 29.97002997 to the exact NTSC fraction
(30000/1001), because a float rate that is off in the ninth digit is off by a frame after
a few hours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "AUDIO_ONLY_RATE",
    "Keyframe",
    "Marker",
    "MusicClip",
    "TimelinePlan",
    "cut_markers",
    "frame_rate",
    "frames",
    "section_markers",
    "thin_envelope",
]

AUDIO_ONLY_RATE = Fraction(25)
"""The timeline rate of an input without a picture (a podcast): editors need some frame rate."""
_NTSC_BASES = (24, 30, 48, 60, 120)
_FLAT_DB = 0.05
"""Ducking shallower than this counts as none: the envelope's raised-cosine tails are long."""


def frame_rate(fps: float | None) -> Fraction:
    """The exact rate behind a probed ``fps``: NTSC rates as n*1000/1001, others as given.

    29.97, 23.976 and 59.94 are 30000/1001, 24000/1001 and 60000/1001; a probe reports them
    rounded (or as avg_frame_rate's own fraction), so they are snapped here.
    """
    if not fps or not math.isfinite(fps) or fps <= 0:
        return AUDIO_ONLY_RATE
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.005:
            return ntsc
    whole = round(fps)
    if abs(fps - whole) < 0.005:
        return Fraction(whole)
    return Fraction(fps).limit_denominator(1001)


def frames(seconds: float, rate: Fraction) -> int:
    """Whole frames at ``rate`` nearest to ``seconds``: the one place a time becomes frames."""
    return round(Fraction(seconds) * rate)


@dataclass(frozen=True)
class Keyframe:
    """The music's level at ``time`` seconds: its overall gain plus the ducking, in dB."""

    time: float
    db: float


@dataclass(frozen=True)
class Marker:
    """A point (``duration`` 0) or a range on the timeline, with its words."""

    start: float
    duration: float
    name: str
    comment: str = ""
    """A section's prompt; empty for a cut."""
    kind: str = "section"
    """section or cut: the colour an editor sees and what ``metadata['autoscore']`` says."""


@dataclass(frozen=True)
class MusicClip:
    """The generated music, a file beside the timeline, full length from the timeline's start."""

    path: Path
    duration: float
    gain_db: float
    """Its level with no ducking: the mix's music gain plus the final gain."""
    keyframes: tuple[Keyframe, ...]


@dataclass(frozen=True)
class TimelinePlan:
    """Everything a timeline holds, in seconds; exporters turn it into frames at ``rate``."""

    name: str
    rate: Fraction
    start: float
    """Timecode of the first frame, seconds (0 when the input carries none)."""
    source: Path
    """The original media: its picture (if any) and audio go on their own tracks."""
    duration: float
    has_video: bool
    has_audio: bool
    original_gain_db: float
    """The final gain the mix gave the original (the editor's starting level for it)."""
    music: MusicClip
    markers: tuple[Marker, ...]
    width: int = 0
    height: int = 0
    """The picture's size (0 without one): FCP X formats state it."""


def timecode_seconds(timecode: str | None, rate: Fraction) -> float:
    """Seconds from 00:00:00:00 to ``timecode`` at ``rate``; drop-frame (``;``) at 29.97 and
    59.94 skips the frame numbers SMPTE drops (2 or 4 a minute, except every tenth minute)."""
    if not timecode:
        return 0.0
    h, m, s, f = (int(x) for x in re.split(r"[:;.]", timecode))
    nominal = round(float(rate))
    number = ((h * 60 + m) * 60 + s) * nominal + f
    if ";" in timecode and rate.denominator == 1001:
        minutes = h * 60 + m
        number -= (nominal // 15) * (minutes - minutes // 10)
    return float(number / rate)


def thin_envelope(times: np.ndarray, duck_db: np.ndarray, gain_db: float, duration: float
                  ) -> tuple[Keyframe, ...]:
    """The few keyframes that draw a ducking curve: per dip a start, the floor held, an end.

    ``duck_db`` (<= 0) sampled at ``times`` comes from ``DuckEnvelope``: 200 points a
    second, which an editor could not move by hand. Each dip becomes four points (last
    flat point, first and last points at its floor, first flat point after it), linear
    between them as editors interpolate; overlapping dips that never recover are one dip.
    """
    levels = np.asarray(duck_db, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    keep = t <= duration + 1e-9
    levels, t = levels[keep], t[keep]
    raw: list[tuple[float, float]] = [(0.0, 0.0)]
    dipped = levels < -_FLAT_DB
    i, n = 0, len(levels)
    while i < n:
        if not dipped[i]:
            i += 1
            continue
        j = i
        while j < n and dipped[j]:
            j += 1
        segment = levels[i:j]
        floor = float(segment.min())
        at_floor = np.flatnonzero(segment <= floor + _FLAT_DB)
        raw.append((float(t[i - 1]) if i > 0 else float(t[i]), 0.0 if i > 0 else float(levels[i])))
        raw += [(float(t[i + at_floor[0]]), floor), (float(t[i + at_floor[-1]]), floor)]
        raw.append((float(t[j]), 0.0) if j < n else (duration, float(levels[-1])))
        i = j
    raw.append((duration, raw[-1][1] if raw[-1][0] >= duration else 0.0))
    points: list[Keyframe] = []
    for time, db in raw:
        if points and time <= points[-1].time:
            points[-1] = Keyframe(points[-1].time, gain_db + db)  # same instant: the later level holds
        else:
            points.append(Keyframe(time, gain_db + db))
    return tuple(points)


def section_markers(sections: Sequence[tuple[float, float, str, str]]) -> tuple[Marker, ...]:
    """(start, end, words, prompt) per section -> ranged markers named with the section's words."""
    out = []
    for number, (start, end, words, prompt) in enumerate(sections, 1):
        name = " ".join(words.split()) or f"Section {number}"
        out.append(Marker(start, max(end - start, 0.0), name, prompt, "section"))
    return tuple(out)


def cut_markers(cuts: Sequence[float], duration: float) -> tuple[Marker, ...]:
    """One point marker per cut of the picture (``plan.cuts``), numbered in order."""
    return tuple(Marker(c, 0.0, f"Cut {n}", "", "cut") for n, c in enumerate(sorted(cuts), 1)
                 if 0 <= c <= duration)
