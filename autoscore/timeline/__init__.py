"""``--timeline``: the score handed to an editor as a timeline, and timelines read as notes.

``check_timeline_path`` runs before any work (a bad path, an unknown suffix or a missing
extra are usage errors); ``write_timeline`` runs after the mix, from what the job already
made: the music on disk before it was mixed (never generated again), the ducking envelope
and the gains the mix chose. The format follows the suffix:

- ``.otio``: OpenTimelineIO JSON (``otio_io``), levels in a documented metadata schema;
- ``.xml``: Final Cut Pro 7 XML, which Premiere Pro and DaVinci Resolve import
  (``xmeml``), levels as ``audiolevels`` keyframes;
- ``.fcpxml``: Final Cut Pro X XML (``fcpxml``), levels as ``adjust-volume`` keyframes.

The other way, ``--notes`` reads the markers of ``.otio``, ``.xml`` and ``.edl`` files as
notes (``markers``).

The music goes beside the timeline as ``<timeline stem>.music.flac`` (``.wav`` for either
XML: Final Cut reads no FLAC).
OpenTimelineIO is an optional extra, imported only here and only when asked for.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OptionError, OutputPathError
from ..media.files import unwritable_reason

if TYPE_CHECKING:
    from ..media.pcm import PcmFile
    from ..mixing.mix import MixReport
    from ..models import MediaInfo, Section

__all__ = ["MARKER_ADAPTERS", "TIMELINE_FORMATS", "check_timeline_path", "music_path_for", "timeline_suffix",
           "write_timeline"]

TIMELINE_FORMATS: dict[str, str] = {
    ".otio": "OpenTimelineIO",
    ".xml": "Final Cut Pro 7 XML (Premiere Pro, DaVinci Resolve)",
    ".fcpxml": "Final Cut Pro X XML",
}
_MODULES: dict[str, tuple[str, ...]] = {
    ".otio": ("opentimelineio",),
    ".xml": ("opentimelineio", "otio_fcp_adapter"),
    ".fcpxml": ("opentimelineio", "otio_fcpx_xml_adapter"),
}
MARKER_ADAPTERS: dict[str, tuple[str, str]] = {
    ".otio": ("otio_json", "OpenTimelineIO"),
    ".xml": ("fcp_xml", "Final Cut Pro 7 XML"),
    ".fcpxml": ("fcpx_xml", "Final Cut Pro X XML"),
    ".edl": ("cmx_3600", "a CMX 3600 EDL"),
}
"""Timelines ``--notes`` reads markers from (``markers``): suffix -> (OTIO adapter, what it is)."""
_MUSIC_SUFFIX = {".otio": ".flac", ".xml": ".wav", ".fcpxml": ".wav"}


def music_path_for(timeline: Path) -> Path:
    """Where the music file of ``timeline`` goes: beside it, named after it."""
    return timeline.with_name(f"{timeline.stem}.music{_MUSIC_SUFFIX[timeline.suffix.lower()]}")


def timeline_suffix(format: str | Path) -> str:
    """``otio``, ``.xml`` or ``x.otio`` as the suffix a batch gives each output's timeline.

    A batch names one timeline per input (beside its output), so it takes only the format;
    an unknown one, or a missing extra, is refused before the first file starts.
    """
    text = str(format).lower()
    suffix = Path(text).suffix or "." + text.lstrip(".")
    if suffix not in TIMELINE_FORMATS:
        raise OptionError(f"--timeline {format}: unknown format; use one of "
                          f"{', '.join(s.lstrip('.') for s in TIMELINE_FORMATS)}.")
    _check_extra(suffix)
    return suffix


def _check_extra(suffix: str) -> None:
    missing = [m for m in _MODULES[suffix] if importlib.util.find_spec(m) is None]
    if missing:
        raise OptionError(f"--timeline {suffix} needs {', '.join(missing)}, which is not installed: "
                          "pip install 'autoscore[timeline]'.")


def check_timeline_path(input: Path, timeline: Path, output: Path | None = None) -> None:
    """Refuse before any work: an unknown suffix, a folder that cannot be written, a missing extra."""
    suffix = timeline.suffix.lower()
    if suffix not in TIMELINE_FORMATS:
        known = ", ".join(f"{s} ({name})" for s, name in TIMELINE_FORMATS.items())
        raise OptionError(f"--timeline {timeline.name}: cannot tell the format from "
                          f"'{suffix or 'no suffix'}'; name the file with one of {known}.")
    target = timeline.resolve()
    taken = {p.resolve() for p in (input, output) if p is not None}
    if target in taken or music_path_for(target) in taken:
        raise OutputPathError(f"--timeline {timeline} would overwrite the input or the output (or its "
                              f"music file {music_path_for(timeline).name} would): choose another name.")
    folder = target.parent
    if not folder.is_dir():
        raise OutputPathError(f"--timeline folder {folder} does not exist: create it or choose another "
                              "place.")
    if target.is_dir():
        raise OutputPathError(f"--timeline {timeline} is a folder: give a file name ending {suffix}.")
    reason = unwritable_reason(folder)
    if reason is not None:
        raise OutputPathError(f"--timeline folder {folder} is not writable ({reason}): choose another place.")
    _check_extra(suffix)


def write_timeline(
    timeline: Path,
    info: MediaInfo,
    sections: tuple[Section, ...],
    cuts: tuple[float, ...],
    music: PcmFile,
    mix: MixReport,
) -> Path:
    """Write the music beside ``timeline``, then the timeline itself; each whole or not at all."""
    from .export import write

    return write(timeline, info, sections, cuts, music, mix)
