"""Final Cut Pro 7 XML (xmeml): OTIO's ``fcp_xml`` adapter, plus the levels it drops.

The adapter writes the sequence, tracks, clips, file references and markers, but it has
no notion of audio levels, so this module adds them to its output with ElementTree:

- on the music clip, an ``audiolevels`` filter whose ``level`` parameter has one
  ``<keyframe>`` per point of the thinned ducking curve (``<when>`` in frames from the
  clip's start, ``<value>`` a linear gain, 1 = 0 dB, at most 3.98109 = +12 dB as FCP 7,
  Premiere and Resolve read it);
- on the original's audio clip, the same filter with a fixed ``<value>``: the mix's final
  gain on the original;
- on every audio clip, the ``<sourcetrack>`` (audio, channel track 1) that Premiere's own
  FCP 7 XML carries and the adapter leaves out, so each clip says which of its file's
  tracks it plays.

Paths: the adapter writes ``<pathurl>`` as the absolute ``file://`` URL it is given, the
only form FCP 7 and Premiere resolve; moved to another machine, the editor relinks the
media (all of it sits in one folder: the input and the music beside the timeline).
The music is a WAV file: FCP 7 XML importers do not all read FLAC.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ..errors import AutoscoreError
from .model import Keyframe, TimelinePlan, frames
from .otio_io import MUSIC_CLIP_NAME, ORIGINAL_AUDIO_NAME, fcp_xml_string

__all__ = ["MAX_LEVEL", "add_levels", "add_source_tracks", "level_value", "xmeml_bytes"]

MAX_LEVEL = 3.98109
"""+12 dB, the top of the ``level`` parameter's range in FCP 7 XML."""


def level_value(db: float) -> float:
    """dB as FCP 7's linear ``level`` (0 to ``MAX_LEVEL``)."""
    return min(max(10 ** (db / 20), 0.0), MAX_LEVEL)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _audiolevels(gain_db: float, keyframes: Sequence[tuple[int, float]]) -> ET.Element:
    filt = ET.Element("filter")
    effect = _sub(filt, "effect")
    _sub(effect, "name", "Audio Levels")
    _sub(effect, "effectid", "audiolevels")
    _sub(effect, "effectcategory", "audiolevels")
    _sub(effect, "effecttype", "audiolevels")
    _sub(effect, "mediatype", "audio")
    param = _sub(effect, "parameter")
    _sub(param, "parameterid", "level")
    _sub(param, "name", "Level")
    _sub(param, "valuemin", "0")
    _sub(param, "valuemax", f"{MAX_LEVEL:g}")
    _sub(param, "value", f"{level_value(gain_db):.6f}")
    for when, db in keyframes:
        key = _sub(param, "keyframe")
        _sub(key, "when", str(when))
        _sub(key, "value", f"{level_value(db):.6f}")
    return filt


def add_levels(root: ET.Element, plan: TimelinePlan) -> None:
    """Put the ``audiolevels`` filters on the music clip and the original's audio clip."""
    keys = _frame_keyframes(plan.music.keyframes, plan)
    found = set()
    for item in root.iter("clipitem"):
        name = item.findtext("name")
        if name == MUSIC_CLIP_NAME:
            item.append(_audiolevels(plan.music.gain_db, keys))
        elif name == ORIGINAL_AUDIO_NAME:
            item.append(_audiolevels(plan.original_gain_db, ()))
        else:
            continue
        found.add(name)
    if MUSIC_CLIP_NAME not in found:  # the adapter changed how it names clips: fail loudly, not silently
        raise AutoscoreError("The fcp_xml adapter wrote no music clip, so the levels have nowhere to go: "
                             "install otio-fcp-adapter 1.0 (pip install 'autoscore[timeline]') or report it.")


def _frame_keyframes(keyframes: Sequence[Keyframe], plan: TimelinePlan) -> list[tuple[int, float]]:
    """Keyframes at whole frames; two on the same frame keep the later (the curve's next step)."""
    out: list[tuple[int, float]] = []
    for k in keyframes:
        when = frames(k.time, plan.rate)
        if out and out[-1][0] == when:
            out[-1] = (when, k.db)
        else:
            out.append((when, k.db))
    return out


def add_source_tracks(root: ET.Element) -> None:
    """Give every audio clip item a ``<sourcetrack>`` naming the file's first audio track."""
    for audio in root.iter("audio"):
        for track in audio.findall("track"):
            for item in track.findall("clipitem"):
                if item.find("sourcetrack") is None:
                    source = _sub(item, "sourcetrack")
                    _sub(source, "mediatype", "audio")
                    _sub(source, "trackindex", "1")


def xmeml_bytes(plan: TimelinePlan) -> bytes:
    """The whole FCP 7 XML document for ``plan``, levels included."""
    root = ET.fromstring(fcp_xml_string(plan))
    add_levels(root, plan)
    add_source_tracks(root)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + body + b"\n"
