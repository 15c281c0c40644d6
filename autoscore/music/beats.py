"""The tempo and downbeat that put the picture's cuts on the music's beats.

Editors cut on the beat; when the music is composed for the cut, the composer can return
the favour. Within ``TEMPO_SPREAD`` of the preset's tempo (a listener hears a different
feel beyond that), every tempo on a 0.05 BPM grid is tried, and for each the beat phase
that catches the most cuts within ``ON_BEAT`` seconds: cuts are folded onto one beat
(their time modulo the beat), and a window of twice the tolerance slides round that
circle. The best tempo catches the most cuts; among equals, the one closest to the
preset's tempo wins. Then the downbeat is the beat, of the four in a bar, that the most
cuts land on, so sections (which start on cuts) tend to start on a bar line.

Pure: cut times in, a ``TempoFit`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_FIT_CUTS", "ON_BEAT", "TEMPO_SPREAD", "TempoFit", "fit_tempo", "on_beat_share"]

TEMPO_SPREAD = 0.08
ON_BEAT = 0.040
"""Seconds from a beat within which a cut counts as on it (the issue's 40 ms)."""
STEP = 0.05
"""BPM resolution of the search: over a 10-minute video, 0.05 BPM drifts by less than 0.05 s
per minute at 100 BPM (fine enough that the best fit is not lost between grid points)."""
MAX_FIT_CUTS = 600
"""Cuts used for fitting: a strobe edit's thousands of cuts say no more about the tempo
than its first few hundred, and the search stays well under a second."""


@dataclass(frozen=True)
class TempoFit:
    bpm: float
    downbeat: float
    """Seconds from the start of the video to the first downbeat (0 <= downbeat < one bar)."""
    on_beat: int
    cuts: int

    @property
    def share(self) -> float:
        """Share of the cuts within ``ON_BEAT`` of a beat: 1.0 when there are none to place."""
        return self.on_beat / self.cuts if self.cuts else 1.0

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm


def fit_tempo(cuts: Sequence[float], base_bpm: float, *, spread: float = TEMPO_SPREAD,
              tolerance: float = ON_BEAT) -> TempoFit:
    """The tempo within ``spread`` of ``base_bpm`` and the downbeat that catch the most cuts."""
    points = np.array(sorted(t for t in cuts if t > 0)[:MAX_FIT_CUTS], dtype=np.float64)
    if not len(points):
        return TempoFit(float(base_bpm), 0.0, 0, 0)
    lo = round(base_bpm * (1 - spread) / STEP)
    hi = round(base_bpm * (1 + spread) / STEP)
    # Most cuts caught; then the tightest fit (within a millisecond); then nearest the preset.
    best: tuple[int, float, float, float, float] | None = None
    for k in range(lo, hi + 1):
        bpm = k * STEP
        caught, spread, phase = _best_phase(points, 60.0 / bpm, tolerance)
        key = (caught, -round(spread, 3), -abs(bpm - base_bpm), bpm, phase)
        if best is None or key[:3] > best[:3]:
            best = key
    assert best is not None
    caught, _, _, bpm, phase = best
    beat = 60.0 / bpm
    downbeat = _downbeat(points, phase, beat, tolerance)
    return TempoFit(round(bpm, 2), round(float(downbeat), 4), caught, len(points))


def _best_phase(points: np.ndarray, beat: float, tolerance: float) -> tuple[int, float, float]:
    """The window of 2 x ``tolerance`` on the folded beat holding the most cuts: how many, their
    mean distance from its centre (the tighter fit wins a tie), and that centre."""
    folded = np.sort(points % beat)
    n = len(folded)
    ring = np.concatenate([folded, folded + beat])  # the circle unrolled once
    counts = np.searchsorted(ring, folded + 2 * tolerance, side="right") - np.arange(n)
    most = int(counts.max())
    best: tuple[int, float, float] = (most, np.inf, float(folded[0]))
    for i in np.flatnonzero(counts == most)[:64]:
        inside = ring[i:i + most]
        centre = float(inside.mean())
        spread = float(np.abs(inside - centre).mean())
        if spread < best[1]:
            best = (most, spread, centre % beat)
    return best


def _downbeat(points: np.ndarray, phase: float, beat: float, tolerance: float) -> float:
    """Of the four beats in a bar, the one most cuts land on, as the first downbeat's time."""
    counts = [0, 0, 0, 0]
    for t in points.tolist():
        k = round((t - phase) / beat)
        if abs(t - (phase + k * beat)) <= tolerance:
            counts[k % 4] += 1
    which = max(range(4), key=lambda q: (counts[q], -q))
    return (phase + which * beat) % (4 * beat)


def on_beat_share(cuts: Sequence[float], bpm: float, downbeat: float, tolerance: float = ON_BEAT) -> float:
    """Share of ``cuts`` within ``tolerance`` of a beat of the grid (1.0 without cuts)."""
    points = [t for t in cuts if t > 0]
    if not points:
        return 1.0
    beat = 60.0 / bpm
    near = sum(1 for t in points if abs((t - downbeat + beat / 2) % beat - beat / 2) <= tolerance)
    return near / len(points)
