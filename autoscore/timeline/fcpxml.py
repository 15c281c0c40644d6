"""Final Cut Pro X XML (FCPXML 1.8): OTIO's ``fcpx_xml`` adapter, plus what it drops.

The adapter writes the resources (formats, assets), the project's spine with the picture,
and the audio clips connected to it on lanes -1 and -2. What it does not carry is added
here with ElementTree, after it has written:

- ``adjust-volume`` on the music clip, its ``amount`` param animated by a
  ``keyframeAnimation`` (``<keyframe time="53053/30000s" value="-17.4dB"/>``, times on the
  clip's own clock, which starts at 0 like the timeline's), and a fixed ``amount`` on the
  original's audio clip (the mix's final gain);
- the markers: the adapter keeps only markers on clips and drops the sequence's, and FCP X
  has markers on clips only, so every section and cut marker goes on the spine's first
  item, with the section's prompt as the marker's ``note``;
- the format's ``width`` and ``height`` (the adapter asks a system ffprobe, which autoscore
  does not need).

Rates: the adapter looks a rate up in its own table (23.98, 29.97, 59.94 and whole
numbers), which misses an exact NTSC rate such as 30000/1001, so the exact rate's
``frameDuration`` is added to that table before writing; its times are then exact
fractions of a second. An input without a picture gets a spine of one gap (``otio_io``).
Media paths are absolute ``file://`` URLs, as FCP X requires.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from ..errors import AutoscoreError
from .model import TimelinePlan, frames
from .otio_io import MUSIC_CLIP_NAME, ORIGINAL_AUDIO_NAME, build_timeline

__all__ = ["fcpxml_bytes", "rational"]


def rational(frame_count: int, rate: Fraction) -> str:
    """``frame_count`` frames at ``rate`` as FCPXML's rational seconds: ``0s``, ``6s``, ``1001/30000s``."""
    seconds = Fraction(frame_count) / rate
    if seconds == 0:
        return "0s"
    top, bottom = seconds.numerator, seconds.denominator
    return f"{top}s" if bottom == 1 else f"{top}/{bottom}s"


def _adapter_string(plan: TimelinePlan) -> str:
    # The adapter's own module, called directly: OTIO's plugin loader may load a second copy,
    # whose rate table would not have the exact rate.
    from otio_fcpx_xml_adapter import fcpx_xml

    table = fcpx_xml.FRAMERATE_FRAMEDURATION
    table.setdefault(float(plan.rate), f"{plan.rate.denominator}/{plan.rate.numerator}s")
    text: str = fcpx_xml.write_to_string(build_timeline(plan, Path.cwd(), fcp=True, spine=True))
    return text


def _volume(db: float, keys: list[tuple[int, float]], rate: Fraction) -> ET.Element:
    adjust = ET.Element("adjust-volume", {"amount": f"{db:.2f}dB"})
    if keys:
        param = ET.SubElement(adjust, "param", {"name": "amount"})
        animation = ET.SubElement(param, "keyframeAnimation")
        for when, level in keys:
            ET.SubElement(animation, "keyframe", {"time": rational(when, rate), "value": f"{level:.2f}dB"})
    return adjust


def _add(root: ET.Element, plan: TimelinePlan) -> None:
    rate = plan.rate
    for fmt in root.iter("format"):
        if not fmt.get("frameDuration"):
            fmt.set("frameDuration", f"{rate.denominator}/{rate.numerator}s")
        if plan.width and plan.height:
            fmt.set("width", str(plan.width))
            fmt.set("height", str(plan.height))
    keys: list[tuple[int, float]] = []
    for k in plan.music.keyframes:
        when = frames(k.time, rate)
        keys = [*keys[:-1], (when, k.db)] if keys and keys[-1][0] == when else [*keys, (when, k.db)]
    spine = root.find(".//sequence/spine")
    clips = {c.get("name"): c for c in root.iter("clip") if c.get("lane")}
    if spine is None or len(spine) == 0 or MUSIC_CLIP_NAME not in clips:
        raise AutoscoreError("The fcpx_xml adapter wrote no spine or no music clip, so the levels have "
                             "nowhere to go: install otio-fcpx-xml-adapter 1.0 (pip install "
                             "'autoscore[timeline]').")
    clips[MUSIC_CLIP_NAME].insert(0, _volume(plan.music.gain_db, keys, rate))
    if ORIGINAL_AUDIO_NAME in clips:
        clips[ORIGINAL_AUDIO_NAME].insert(0, _volume(plan.original_gain_db, [], rate))
    first = spine[0]
    for m in plan.markers:  # last in the clip, after its connected clips, as the DTD orders them
        start = frames(m.start, rate)
        length = max(frames(m.start + m.duration, rate) - start, 1)
        attrs = {"start": rational(start, rate), "duration": rational(length, rate), "value": m.name}
        if m.comment:
            attrs["note"] = m.comment
        first.append(ET.Element("marker", attrs))


def fcpxml_bytes(plan: TimelinePlan) -> bytes:
    """The whole FCPXML document for ``plan``, levels and markers included."""
    text = _adapter_string(plan)
    body = text.split("<!DOCTYPE fcpxml>", 1)[-1]
    root = ET.fromstring(body.strip())
    _add(root, plan)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n' + data + b"\n"
