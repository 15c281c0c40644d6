"""An editor's markers as scene notes: ``--notes cut.otio``, ``cut.xml`` (FCP 7) or ``cut.edl``.

An editor rough-cuts, drops markers where the music should change, and exports; the
markers come back here through OpenTimelineIO's own readers (``otio_json``, ``fcp_xml``,
``cmx_3600``), so autoscore parses no timeline format itself. A marker's name is the
note's text (its ``[energy: high]``-style modifiers work as in a notes file; an unnamed
marker falls back to its comment); a marker with a length is a range.

Where a marker lives decides its clock: markers on the sequence (the timeline's stack)
or on a track are already on the timeline's clock, 0 at its first frame; markers on a
clip (what an EDL's ``* LOC:`` lines become) are on the clip's source clock and are
moved to where the clip sits. The timeline's starting timecode is not added: notes count
from the start of the video.

FCPXML: markers sit on clips (FCP X has no others), on the clip's clock; the FCP X reader
counts an NTSC rate as the whole number below it (29 for 29.97) and truncates to its frames,
so a marker may arrive up to 1/29 s early (a marker on a gap, the spine of an audio-only
timeline, is not read at all).

EDLs: the CMX reader keeps only locators on events (``* LOC:``), starts the timeline at
the first event (a record start of 01:00:00:00 is 0 s), and reads timecode frames at 24
fps because an EDL does not say its rate (a locator at ``:12`` frames of a 25 fps cut
lands 20 ms early: well inside a section's resolution).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ..errors import NotesError
from ..models import Note
from ..text.notes import NotesResult, format_time, parse_modifiers
from . import MARKER_ADAPTERS

__all__ = ["parse_marker_file"]


def parse_marker_file(path: Path) -> NotesResult:
    """The markers of the timeline at ``path`` as notes, in time order."""
    adapter, label = MARKER_ADAPTERS[path.suffix.lower()]
    if importlib.util.find_spec("opentimelineio") is None:
        raise NotesError(f"Reading markers from {path.name} needs opentimelineio: "
                         "pip install 'autoscore[timeline]'.")
    import opentimelineio as otio

    try:
        read = otio.adapters.read_from_file(str(path), adapter_name=adapter)
    except FileNotFoundError:
        raise NotesError(f"Notes file {str(path)!r} does not exist: check the path.") from None
    except Exception as exc:  # each adapter raises its own kinds; all mean "not this format"
        raise NotesError(f"{path.name} cannot be read as {label} ({exc}): export it again from the "
                         "editor, or give a notes file.") from None
    timelines = list(read.find_children(descended_from_type=otio.schema.Timeline)) if isinstance(
        read, otio.schema.SerializableCollection) else [read]
    found: list[tuple[float, float, str, str]] = []
    for timeline in timelines:
        found += _markers_of(otio, timeline)
    if not found:
        raise NotesError(f"{path.name} has no markers: add markers where the music should change (their "
                         "names become the notes), or give a notes file.")
    notes = []
    for number, (start, length, name, comment) in enumerate(sorted(found), 1):
        notes.append(_note(start, length, name or comment, f"{path.name} marker {number}"))
    return NotesResult(tuple(notes), ())


def _markers_of(otio: Any, timeline: Any) -> list[tuple[float, float, str, str]]:
    """(start s, length s, name, comment) of every marker on the timeline, on its clock."""
    out = [_plain(m) for m in timeline.tracks.markers]
    for track in timeline.tracks:
        out += [_plain(m) for m in track.markers]
        for clip in track.find_clips(shallow_search=True):
            placed = clip.range_in_parent().start_time.to_seconds()
            origin = clip.trimmed_range().start_time.to_seconds()
            for m in clip.markers:
                start, length, name, comment = _plain(m)
                out.append((placed + start - origin, length, name, comment))
    return out


def _plain(marker: Any) -> tuple[float, float, str, str]:
    """A marker one frame long is a point: that is how FCP X (and autoscore's FCPXML) write one."""
    r = marker.marked_range
    length = r.duration.to_seconds() if r.duration.value > 1 else 0.0
    return (r.start_time.to_seconds(), length, " ".join(str(marker.name or "").split()),
            " ".join(str(getattr(marker, "comment", "") or "").split()))


def _note(start: float, length: float, text: str, where: str) -> Note:
    if start < 0:
        raise NotesError(f"{where} is at {start:.3f} s, before the timeline starts: move it, or "
                         "export the timeline from its first frame.")
    words, modifiers = parse_modifiers(text, where)
    end = start + length if length > 0 else None
    if end is not None and end <= start:
        raise NotesError(f"{where}: the range ends at {format_time(end)}, not after its start.")
    return Note(start=start, text=words, end=end, modifiers=modifiers, source=where)
