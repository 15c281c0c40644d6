"""Joins under cuts: where two generated pieces meet, the picture should change too.

A crossfade between two pieces of music is least audible when the eye is busy with a cut,
so a seam that is free to move (one not pinned to a section boundary) moves onto the
nearest cut that keeps every chunk between the shortest allowed length and the 120 s a
request may last. The plan then reports every join and whether it is on a cut.

Pure: seams and cut times in, seams out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Chunk
from .backends.base import MAX_DURATION

__all__ = ["ON_CUT", "Join", "joins_of", "seams_onto_cuts"]

ON_CUT = 0.05
"""Seconds within which a join counts as on a cut: a frame or so at 24-30 fps."""


@dataclass(frozen=True)
class Join:
    time: float
    """The centre of the crossfade (or the point a continuation starts), in seconds."""
    on_cut: bool


def seams_onto_cuts(seams: Sequence[float], cuts: Sequence[float], duration: float, crossfade: float,
                    shortest: float, pinned: Sequence[float] = ()) -> list[float]:
    """``seams`` with each one not in ``pinned`` moved onto the nearest cut it may move to.

    A seam may move as far as its neighbours allow: the chunk before and the chunk after
    must each stay from ``shortest`` to ``MAX_DURATION`` seconds, overlaps included. Seams
    are settled left to right, so each one sees where the one before it landed.
    """
    out = list(seams)
    fixed = {round(p, 6) for p in pinned}
    for i, seam in enumerate(out):
        if round(seam, 6) in fixed:
            continue
        before = out[i - 1] if i > 0 else None
        after = out[i + 1] if i + 1 < len(out) else None
        lo, hi = _window(before, after, duration, crossfade, shortest)
        inside = [c for c in cuts if lo <= c <= hi]
        if inside:
            out[i] = min(inside, key=lambda c: abs(c - seam))
    return out


def _window(before: float | None, after: float | None, duration: float, crossfade: float,
            shortest: float) -> tuple[float, float]:
    """Where a seam between ``before`` and ``after`` (None: the ends) keeps both chunks legal."""
    # The chunk before runs from its own start to this seam + crossfade / 2.
    start_before = 0.0 if before is None else before - crossfade / 2
    lo = start_before + shortest - crossfade / 2
    hi = start_before + MAX_DURATION - crossfade / 2
    # The chunk after runs from this seam - crossfade / 2 to its own end.
    end_after = duration if after is None else after + crossfade / 2
    lo = max(lo, end_after - MAX_DURATION + crossfade / 2)
    hi = min(hi, end_after - shortest + crossfade / 2)
    return lo + 1e-6, hi - 1e-6


def joins_of(chunks: Sequence[Chunk], cuts: Sequence[float]) -> tuple[Join, ...]:
    """Every place two chunks of one stretch of music meet, and whether a cut is there."""
    out = []
    for chunk in chunks:
        if chunk.is_first:
            continue
        time = round(chunk.start + chunk.overlap_before / 2, 6)
        out.append(Join(time, any(abs(c - time) <= ON_CUT for c in cuts)))
    return tuple(out)
