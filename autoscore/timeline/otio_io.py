"""A ``TimelinePlan`` as an OpenTimelineIO timeline, and written through OTIO's adapters.

Every time is ``RationalTime(frames(seconds, rate), rate)`` at the input's own rate
(``model.frames`` is the one conversion), so clips, markers and keyframes land on the
same frames in every format.

OTIO has no volume effect, so the music clip carries its levels in metadata, a schema
of our own that a script (or a future adapter) can read::

    clip.metadata["autoscore"] = {
        "schema": "autoscore.levels/1",
        "gain_db": -14.2,               # the music's level with no ducking
        "keyframes": [                  # linear between points, as editors draw them
            {"time": RationalTime, "seconds": 0.0, "db": -14.2},
            ...
        ],
        "interpolation": "linear",
    }

The original's audio clip carries ``{"schema": "autoscore.levels/1", "gain_db": ...,
"keyframes": []}`` (the final gain of the mix). Markers sit on the timeline's stack,
at stack time (0 = the first frame), with ``metadata["autoscore"] = {"kind":
"section"|"cut", "prompt": ...}`` and the prompt also in OTIO's own ``comment``.

Media paths in a ``.otio`` file are relative URLs (``clip.mp4``, ``../media/clip.mp4``),
resolved against the folder of the ``.otio`` file, so the folder can be moved whole; the
timeline's ``metadata["autoscore"]["paths"]`` says so. FCP7 XML wants absolute
``file://`` URLs, which is what its adapter writes and Premiere and Resolve expect.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

import opentimelineio as otio

from .model import Marker, TimelinePlan, frames

__all__ = ["LEVELS_SCHEMA", "MUSIC_CLIP_NAME", "ORIGINAL_AUDIO_NAME", "build_timeline", "media_url"]

LEVELS_SCHEMA = "autoscore.levels/1"
MUSIC_CLIP_NAME = "autoscore music"
ORIGINAL_AUDIO_NAME = "original audio"
"""Clip names the XML pass finds its clips by."""
_COLOURS = {"section": otio.schema.MarkerColor.GREEN, "cut": otio.schema.MarkerColor.RED}


def media_url(path: Path, base: Path, *, relative: bool) -> str:
    """``path`` as a URL relative to the folder ``base`` when asked and possible, else file://."""
    path = path.resolve()
    if relative:
        try:
            rel = os.path.relpath(path, base.resolve())
        except ValueError:  # another drive on Windows: no relative path exists
            return path.as_uri()
        return urllib.parse.quote(Path(rel).as_posix())
    return path.as_uri()


class _Clock:
    def __init__(self, plan: TimelinePlan) -> None:
        self.rate = float(plan.rate)
        self.fraction = plan.rate

    def at(self, seconds: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frames(seconds, self.fraction), self.rate)

    def span(self, start: float, duration: float) -> otio.opentime.TimeRange:
        first = frames(start, self.fraction)
        # the end rounded from seconds too, so adjacent ranges never gain or lose a frame
        last = frames(start + duration, self.fraction)
        return otio.opentime.TimeRange(otio.opentime.RationalTime(first, self.rate),
                                       otio.opentime.RationalTime(last - first, self.rate))


def _levels(clock: _Clock, gain_db: float, keyframes: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "schema": LEVELS_SCHEMA,
        "gain_db": round(gain_db, 3),
        "interpolation": "linear",
        "keyframes": [{"time": clock.at(t), "seconds": round(t, 6), "db": round(db, 3)}
                      for t, db in keyframes],
    }


def _marker(clock: _Clock, m: Marker, *, fcp: bool) -> otio.schema.Marker:
    metadata: dict[str, Any] = {"autoscore": {"kind": m.kind, "prompt": m.comment}}
    if fcp and m.comment:
        metadata["fcp_xml"] = {"comment": m.comment}  # FCP7 markers have a <comment>
    return otio.schema.Marker(name=m.name, marked_range=clock.span(m.start, m.duration),
                              color=_COLOURS.get(m.kind, otio.schema.MarkerColor.BLUE),
                              metadata=metadata, comment=m.comment)


def build_timeline(plan: TimelinePlan, base: Path, *, fcp: bool = False, spine: bool = False
                   ) -> otio.schema.Timeline:
    """The timeline of ``plan``; media URLs relative to ``base`` unless ``fcp`` (FCP XML, 7 or X).

    ``spine``: an input without a picture gets a video track holding one gap, because the
    FCP X adapter connects audio clips to an item of the (video) spine.
    """
    clock = _Clock(plan)
    drop_frame = plan.rate.denominator == 1001 and plan.rate.numerator in (30000, 60000)
    meta: dict[str, Any] = {"autoscore": {
        "paths": "absolute file:// URLs" if fcp else "relative to the folder of this file",
        "rate": f"{plan.rate.numerator}/{plan.rate.denominator}",
        "drop_frame": drop_frame,
    }}
    if fcp and drop_frame:
        meta["fcp_xml"] = {"timecode": {"displayformat": "DF"}}
    timeline = otio.schema.Timeline(name=plan.name, global_start_time=clock.at(plan.start), metadata=meta)

    whole = clock.span(plan.start, plan.duration)
    source_url = media_url(plan.source, base, relative=not fcp)

    def original(name: str, metadata: dict[str, Any] | None = None) -> otio.schema.Clip:
        ref = otio.schema.ExternalReference(target_url=source_url, available_range=whole)
        ref.name = plan.source.name
        return otio.schema.Clip(name=name, media_reference=ref, source_range=whole, metadata=metadata or {})

    if plan.has_video:
        picture = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
        picture.append(original(plan.source.name))
        timeline.tracks.append(picture)
    elif spine:
        picture = otio.schema.Track(name="Picture", kind=otio.schema.TrackKind.Video)
        picture.append(otio.schema.Gap(source_range=whole))
        timeline.tracks.append(picture)
    if plan.has_audio:
        track = otio.schema.Track(name="Original audio", kind=otio.schema.TrackKind.Audio)
        track.append(original(ORIGINAL_AUDIO_NAME, {"autoscore": _levels(clock, plan.original_gain_db, [])}))
        timeline.tracks.append(track)

    music = plan.music
    music_range = clock.span(0.0, music.duration)
    music_ref = otio.schema.ExternalReference(
        target_url=media_url(music.path, base, relative=not fcp), available_range=music_range)
    music_ref.name = music.path.name
    keys = [(k.time, k.db) for k in music.keyframes]
    music_track = otio.schema.Track(name="Music", kind=otio.schema.TrackKind.Audio)
    music_track.append(otio.schema.Clip(name=MUSIC_CLIP_NAME, media_reference=music_ref,
                                        source_range=music_range,
                                        metadata={"autoscore": _levels(clock, music.gain_db, keys)}))
    timeline.tracks.append(music_track)
    timeline.tracks.markers.extend(_marker(clock, m, fcp=fcp) for m in plan.markers)
    return timeline


def write_otio(plan: TimelinePlan, path: Path) -> None:
    """``plan`` as a ``.otio`` (OTIO JSON) file at ``path`` (the caller renames it into place)."""
    otio.adapters.write_to_file(build_timeline(plan, path.parent), str(path), adapter_name="otio_json")


def fcp_xml_string(plan: TimelinePlan) -> str:
    """``plan`` as FCP7 XML from the adapter, before ``xmeml`` adds what it drops."""
    text: str = otio.adapters.write_to_string(build_timeline(plan, Path.cwd(), fcp=True), "fcp_xml")
    return text
