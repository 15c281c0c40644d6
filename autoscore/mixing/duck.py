"""When to duck the music, and by how much: speech regions and the music's gain envelope.

An offline mixer knows where speech starts before it starts, so unlike a sidechain
compressor it can finish the dip *before* the first word and hold it through short
pauses instead of pumping on every syllable. Detection runs once over a 16 kHz mono
decode (streaming, a few bytes per 30 ms frame are kept); the envelope is a smooth
curve in dB at a modest control rate, interpolated per sample when applied.

The music's own fade-in and fade-out are not here: ``assemble`` shapes the music (it
knows where each bed or span of music starts and ends), so the mixer never fades twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import webrtcvad
from numpy.typing import NDArray

from ..errors import OptionError
from ..models import SPEECH_RATE
from ..text.presets import MixSettings
from .loudness import KWeighting, gated_loudness

__all__ = [
    "CONTROL_RATE",
    "VAD_RATE",
    "DuckEnvelope",
    "LoudScanner",
    "Region",
    "SpeechScanner",
    "build_envelope",
    "detect_loud",
    "detect_speech",
    "make_scanner",
    "smooth_regions",
]

Region = tuple[float, float]

VAD_RATE = SPEECH_RATE
VAD_FRAME = 480
"""30 ms at 16 kHz: the longest frame webrtcvad accepts, and the steadiest decisions."""
VAD_AGGRESSIVENESS = 2
LOUD_FRAME = 1600
"""100 ms frames for 'loud' detection: the BS.1770 sub-block."""
LOUD_THRESHOLD_LU = -10.0
"""'Loud' means a short-term level above the file's integrated loudness plus this."""
CONTROL_RATE = 200.0
"""Envelope points per second: 5 ms steps, fine enough that a 100 ms ramp stays round."""


def smooth_regions(flags: np.ndarray, frame_seconds: float, settings: MixSettings) -> tuple[Region, ...]:
    """Per-frame decisions to regions: close gaps shorter than the hold, then drop short blips.

    Gaps are closed first so that a word made of several short voiced bursts survives
    the minimum-length filter.
    """
    padded = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2] * frame_seconds, edges[1::2] * frame_seconds
    merged: list[list[float]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if merged and s - merged[-1][1] < settings.hold_ms / 1000:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    min_len = settings.min_speech_ms / 1000
    return tuple((round(s, 6), round(e, 6)) for s, e in merged if e - s >= min_len)


class SpeechScanner:
    """Feeds 16 kHz mono blocks of any size to webrtcvad, 30 ms at a time."""

    frame_seconds = VAD_FRAME / VAD_RATE

    def __init__(self, aggressiveness: int = VAD_AGGRESSIVENESS) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._rest = np.zeros(0, np.int16)
        self.flags: list[bool] = []

    def add(self, mono: np.ndarray) -> None:
        pcm = (np.clip(np.asarray(mono, np.float32).reshape(-1), -1.0, 1.0) * 32767).astype(np.int16)
        pcm = np.concatenate([self._rest, pcm])
        whole = len(pcm) // VAD_FRAME * VAD_FRAME
        for frame in pcm[:whole].reshape(-1, VAD_FRAME):
            # webrtcvad reports pure digital silence as speech-free; skip the call for speed.
            self.flags.append(bool(frame.any()) and self._vad.is_speech(frame.tobytes(), VAD_RATE))
        self._rest = pcm[whole:]

    def regions(self, settings: MixSettings) -> tuple[Region, ...]:
        return smooth_regions(np.array(self.flags, bool), self.frame_seconds, settings)


class LoudScanner:
    """Collects K-weighted energy per 100 ms so loud stretches can be judged against the whole file."""

    frame_seconds = LOUD_FRAME / VAD_RATE

    def __init__(self, threshold_lu: float = LOUD_THRESHOLD_LU) -> None:
        self.threshold_lu = threshold_lu
        self._kw = KWeighting(VAD_RATE, 1)
        self._rest = np.zeros(0)
        self.energy: list[float] = []

    def add(self, mono: np.ndarray) -> None:
        weighted = self._kw(np.asarray(mono, np.float32).reshape(-1, 1))[:, 0]
        x = np.concatenate([self._rest, weighted])
        whole = len(x) // LOUD_FRAME * LOUD_FRAME
        self.energy.extend(np.square(x[:whole]).reshape(-1, LOUD_FRAME).sum(axis=1).tolist())
        self._rest = x[whole:]

    def regions(self, settings: MixSettings) -> tuple[Region, ...]:
        energy = np.array(self.energy)
        overall = gated_loudness(energy, LOUD_FRAME)
        if overall is None:
            return ()
        # Short-term level: three sub-blocks centred on each one (300 ms).
        padded = np.concatenate([[0.0], energy, [0.0]])
        short = (padded[:-2] + padded[1:-1] + padded[2:]) / (3 * LOUD_FRAME)
        with np.errstate(divide="ignore"):
            level = -0.691 + 10 * np.log10(short)
        return smooth_regions(level > overall + self.threshold_lu, self.frame_seconds, settings)


def make_scanner(settings: MixSettings) -> SpeechScanner | LoudScanner:
    if settings.duck_on == "speech":
        return SpeechScanner()
    if settings.duck_on == "loud":
        return LoudScanner()
    raise OptionError(
        f"Unknown duck_on {settings.duck_on!r}: use 'speech' or 'loud' in the preset's mix section."
    )


def _scan(scanner: SpeechScanner | LoudScanner, blocks: Iterable[np.ndarray], settings: MixSettings
          ) -> tuple[Region, ...]:
    for block in blocks:
        scanner.add(block)
    return scanner.regions(settings)


def detect_speech(pcm16k: np.ndarray, settings: MixSettings) -> tuple[Region, ...]:
    """Speech regions (seconds) in 16 kHz mono float audio, smoothed by the preset's hold and minimum."""
    return _scan(SpeechScanner(), [pcm16k], settings)


def detect_loud(pcm16k: np.ndarray, settings: MixSettings, *, threshold_lu: float = LOUD_THRESHOLD_LU
                ) -> tuple[Region, ...]:
    """Regions where the short-term level exceeds the file's integrated loudness + ``threshold_lu``."""
    return _scan(LoudScanner(threshold_lu), [pcm16k], settings)


def _raised_cosine(x: np.ndarray) -> np.ndarray:
    """0 at x<=0, 1 at x>=1, an S-curve between: no corners, so no clicks."""
    wave: NDArray[np.floating[Any]] = np.cos(np.pi * np.clip(x, 0.0, 1.0))
    return 0.5 - 0.5 * wave


@dataclass(frozen=True, eq=False)
class DuckEnvelope:
    """The music's gain over time: ducking in dB at ``control_rate``."""

    control_rate: float
    duck_db: NDArray[np.float64]
    """Point i is the ducking gain (<= 0 dB) at time i / control_rate."""
    regions: tuple[Region, ...]
    duration: float

    def duck_db_at(self, times: np.ndarray) -> NDArray[np.float64]:
        return np.interp(np.asarray(times) * self.control_rate, np.arange(len(self.duck_db)), self.duck_db)

    def gains(self, start: int, count: int, rate: int) -> np.ndarray:
        """Linear gains (float32, shape (count,)) for frames [start, start+count) at ``rate``."""
        step = rate / self.control_rate
        if step.is_integer() and start >= 0 and count > 0 and len(self.duck_db) > 0:
            return self._gains_by_interval(start, count, int(step))
        t = (start + np.arange(count)) / rate
        return (10 ** (self.duck_db_at(t) / 20)).astype(np.float32)

    def _gains_by_interval(self, start: int, count: int, step: int) -> np.ndarray:
        """``gains`` when each control interval is a whole ``step`` frames, as at 48 kHz.

        The curve is flat (0 dB or the full dip) most of the time; a flat interval's gain
        is one number, so the power ``10**(dB/20)`` is only taken on the ramps. Each value
        depends only on its frame's absolute position, so any block size gives the same gains.
        """
        first, last = start // step, (start + count - 1) // step
        top = len(self.duck_db) - 1
        d0 = self.duck_db[np.minimum(np.arange(first, last + 1), top)]
        d1 = self.duck_db[np.minimum(np.arange(first + 1, last + 2), top)]
        grid = np.empty((last + 1 - first, step), np.float32)
        flat = d0 == d1
        grid[flat] = (10 ** (d0[flat] / 20))[:, None]
        ramp = ~flat
        if ramp.any():
            frac = np.arange(step) / step
            grid[ramp] = 10 ** ((d0[ramp, None] + (d1 - d0)[ramp, None] * frac[None, :]) / 20)
        offset = start - first * step
        return grid.reshape(-1)[offset : offset + count]

    def curve_db(self, times: np.ndarray, floor_db: float = -60.0) -> np.ndarray:
        """Ducking gain in dB for plotting, never below ``floor_db``."""
        return np.maximum(self.duck_db_at(times), floor_db)


def build_envelope(regions: Iterable[Region], duration: float, settings: MixSettings) -> DuckEnvelope:
    """Ducking curve for ``regions``: the dip starts ``lookahead`` before each region and is complete
    at its start (the attack is shortened to the lookahead if longer), holds to its end, then
    recovers over ``release``. Overlapping dips combine by taking the deeper one.
    """
    cr = CONTROL_RATE
    points = math.floor(duration * cr) + 2
    duck = np.zeros(points)
    depth = abs(settings.duck_depth_db)
    lookahead = max(settings.lookahead_ms, 0.0) / 1000
    attack = max(settings.attack_ms, 0.0) / 1000
    if lookahead > 0:
        attack = min(attack, lookahead)
    attack = max(attack, 1 / cr)
    release = max(settings.release_ms / 1000, 1 / cr)
    regions = tuple(regions)
    for start, end in regions:
        fall = start - lookahead
        lo = max(math.floor(fall * cr), 0)
        hi = min(math.ceil((end + release) * cr) + 1, points)
        if hi <= lo:
            continue
        t = np.arange(lo, hi) / cr
        down = _raised_cosine((t - fall) / attack)
        up = 1.0 - _raised_cosine((t - end) / release)
        curve = -depth * np.minimum(down, up)
        duck[lo:hi] = np.minimum(duck[lo:hi], curve)
    return DuckEnvelope(cr, duck, regions, duration)
