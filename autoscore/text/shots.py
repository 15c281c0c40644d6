"""Sections from the picture: shots grouped into sections, each with the energy its cutting shows.

Social teams score clips nobody wrote notes for, and those clips still have a structure: an
editor cuts a montage fast and holds a calm shot long. Without notes or chapters, the cuts
are turned into notes, ordinary ones with an ``[energy: ...]`` modifier, so every later
stage (sections, prompts, plan, composer) treats them like notes a person wrote, and
``plan --notes-out`` can hand them to the user to edit.

Grouping is greedy and explainable. A section runs from a cut for at least the preset's
``min_section`` seconds, then ends at the first cut where the pace changes (the next few
shots are at least twice as long, or half as long, as the section's own), and never runs
past ``max_section`` seconds when a cut allows ending sooner. A remainder shorter than the
minimum joins the section before it. Energy comes from the pace (cuts per minute) and the
motion (mean frame difference) inside the section, kept within ``ENERGY_SPREAD`` of the
preset's own energy so that a calm preset stays calm and a montage preset stays lively.

Pure functions: the cuts come from ``media.cuts``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Note, PictureCuts, Section
from .notes import format_time

__all__ = [
    "CUTS_SOURCE",
    "ShotSection",
    "describe",
    "energy_of",
    "notes_file_text",
    "notes_from_cuts",
    "notes_of_sections",
    "shot_sections",
    "snap_notes_to_cuts",
]

CUTS_SOURCE = "cuts"
FAST_PACE = 30.0
"""Cuts per minute read as flat out: a cut every two seconds."""
STILL_MOTION, BUSY_MOTION = 0.004, 0.06
"""Mean frame difference read as a still shot and as constant movement."""
PACE_WEIGHT = 0.6
"""Pace counts for more than motion: a cut is the editor's choice, motion may be the camera's."""
ENERGY_SPREAD = 0.35
"""How far the picture may move the energy from the preset's baseline, either way."""
PACE_CHANGE = 2.0
"""A section ends where the next shots are this many times longer or shorter than its own."""
LOOKAHEAD = 3
"""Shots looked at ahead to judge the coming pace (one odd shot is not a change)."""
SNAP = 0.5
"""A note within this many seconds of a cut moves onto it (with ``--cuts on``)."""


@dataclass(frozen=True)
class ShotSection:
    start: float
    end: float
    cuts_per_minute: float
    motion: float
    energy: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def shot_sections(cuts: PictureCuts, duration: float, *, min_section: float, max_section: float,
                  baseline: float = 0.5) -> tuple[ShotSection, ...]:
    """The cuts grouped into sections from ``min_section`` to ``max_section`` seconds long.

    A single shot (or a still image) is one section; a shot longer than ``max_section``
    stays whole, since a section starts on a cut.
    """
    remaining = [t for t in cuts.cuts if 0.0 < t < duration]
    edges = [0.0]
    while remaining:
        end = _section_end(edges[-1], remaining, duration, min_section, max_section)
        if end is None or duration - end < min_section:
            break
        edges.append(end)
        remaining = [t for t in remaining if t > end]
    edges.append(float(duration))
    out = []
    for a, b in itertools.pairwise(edges):
        n_cuts = sum(1 for t in cuts.cuts if a < t < b)
        pace = 60.0 * n_cuts / max(b - a, 1e-9)
        motion = cuts.motion_between(a, b)
        out.append(ShotSection(a, b, round(pace, 2), round(motion, 4), energy_of(pace, motion, baseline)))
    return tuple(out)


def _section_end(start: float, cuts: Sequence[float], duration: float, min_section: float,
                 max_section: float) -> float | None:
    """Where a section starting at ``start`` ends: a cut, or None if it runs to the end."""
    bounds = [start, *cuts, duration]
    shots = [b - a for a, b in itertools.pairwise(bounds)]
    last_allowed: float | None = None
    for k, cut in enumerate(cuts):
        length = cut - start
        if length > max_section:
            return last_allowed if last_allowed is not None else cut
        if length < min_section:
            continue
        last_allowed = cut
        own = _median(shots[: k + 1])
        # The pace changes here if the very next shot and the next few as a whole both say so.
        if all(_changed(own, x) for x in (shots[k + 1], _median(shots[k + 1: k + 1 + LOOKAHEAD]))):
            return cut
    return None if duration - start <= max_section else last_allowed


def _changed(own: float, coming: float) -> bool:
    return coming >= PACE_CHANGE * own or coming * PACE_CHANGE <= own


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[n // 2] + ordered[(n - 1) // 2]) / 2 if n else 0.0


def energy_of(cuts_per_minute: float, motion: float, baseline: float = 0.5) -> float:
    """0..1 from the cutting pace and the motion, within ``ENERGY_SPREAD`` of the baseline."""
    pace = min(max(cuts_per_minute / FAST_PACE, 0.0), 1.0)
    moving = min(max((motion - STILL_MOTION) / (BUSY_MOTION - STILL_MOTION), 0.0), 1.0)
    picture = 0.1 + 0.85 * (PACE_WEIGHT * pace + (1 - PACE_WEIGHT) * moving)
    low, high = max(0.0, baseline - ENERGY_SPREAD), min(1.0, baseline + ENERGY_SPREAD)
    return round(min(max(picture, low), high), 2)


def describe(section: ShotSection) -> str:
    """Scene words for a section the picture made, for the prompt and the notes file."""
    if section.cuts_per_minute >= 0.6 * FAST_PACE:
        pace = "fast cutting, a quick montage"
    elif section.cuts_per_minute >= 0.2 * FAST_PACE:
        pace = "steady cutting"
    elif section.cuts_per_minute > 0:
        pace = "long shots, slow cutting"
    else:
        pace = "one long shot"
    if section.motion >= 0.6 * BUSY_MOTION:
        return f"{pace}, lots of movement"
    if section.motion <= 2 * STILL_MOTION:
        return f"{pace}, a still picture"
    return pace


def notes_from_cuts(cuts: PictureCuts, duration: float, *, min_section: float, max_section: float,
                    baseline: float = 0.5) -> list[Note]:
    """One note per section the picture shows, with its energy as a modifier."""
    return [
        Note(start=s.start, text=describe(s), modifiers=(("energy", f"{s.energy:.2f}"),),
             source=f"{CUTS_SOURCE} {format_time(s.start)}")
        for s in shot_sections(cuts, duration, min_section=min_section, max_section=max_section,
                               baseline=baseline)
    ]


def snap_notes_to_cuts(notes: Sequence[Note], cuts: Sequence[float], tolerance: float = SNAP) -> list[Note]:
    """Notes whose start lies within ``tolerance`` of a cut start on the cut instead.

    A note written at 0:12 for a cut at 12.32 s means that cut; the music should change
    with the picture, not a third of a second before it.
    """
    out = []
    for note in notes:
        near = min(cuts, key=lambda c: abs(c - note.start), default=None)
        if near is not None and abs(near - note.start) <= tolerance and note.start > 0:
            note = Note(near, note.text, note.end, note.modifiers, note.source)
        out.append(note)
    return out


def notes_of_sections(sections: Sequence[Section]) -> list[Note]:
    """The sections as notes, each with its energy: what ``plan --notes-out`` writes for editing."""
    out = []
    for s in sections:
        mods = tuple((k, v) for k, v in s.modifiers if k != "energy")
        out.append(Note(s.start, s.text or "music", None, (*mods, ("energy", f"{s.energy:.2f}")), ""))
    return out


def notes_file_text(notes: Sequence[Note], header: str = "") -> str:
    """``notes`` as an ordinary notes file that ``--notes`` reads back unchanged."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for note in notes:
        mods = "".join(f" [{k}: {v}]" if v else f" [{k}]" for k, v in note.modifiers if k != "no")
        mods += "".join(f" [no {v}]" for k, v in note.modifiers if k == "no")
        lines.append(f"{_stamp(note.start)} {note.text}{mods}".rstrip())
    return "\n".join(lines) + "\n"


def _stamp(seconds: float) -> str:
    """m:ss.ss, precise to the centisecond (a frame at 60 fps is 1.7 cs)."""
    minutes = math.floor(seconds / 60)
    rest = seconds - 60 * minutes
    return f"{minutes}:{rest:05.2f}"
