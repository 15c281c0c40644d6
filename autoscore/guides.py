"""What tells the music where things happen: notes, chapters, or the picture's own cuts.

In order of authority: notes someone wrote (given with ``--notes`` or lying beside the
video), then the container's chapters, then the cuts of the picture (``--cuts``). Notes
always win; with ``--cuts on`` a note within half a second of a cut moves onto it.
Whenever cuts are known, the tempo is chosen within ``beats.TEMPO_SPREAD`` of the preset's
so that the most cuts fall on a beat, unless the user's prompt names a BPM.

The pipeline asks ``read_notes`` and ``picture_cuts`` (which decode, through ``media``) and
then ``follow_picture``, which is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import NotesError, OptionError
from .media.remote import is_url
from .models import MediaInfo, Note, PictureCuts
from .music.beats import TempoFit, fit_tempo
from .options import ScoreOptions
from .text.notes import notes_from_chapters, parse_notes
from .text.presets import Preset
from .text.sections import BPM_IN_TEXT, shared_tempo
from .text.shots import CUTS_SOURCE, notes_from_cuts, snap_notes_to_cuts

__all__ = [
    "NOTES_SUFFIXES", "Followed", "check_cuts_option", "find_notes_beside", "follow_picture", "picture_cuts",
    "read_notes",
]

NOTES_SUFFIXES = (".notes.txt", ".notes.srt", ".notes.vtt", ".notes.json", ".srt.notes", ".notes")


def find_notes_beside(media: Path) -> Path | None:
    """``clip.notes.txt`` (or .srt/.vtt/.json) next to ``clip.mp4``, if there is one."""
    for suffix in NOTES_SUFFIXES:
        candidate = media.with_name(media.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_notes(info: MediaInfo, notes: str | Path | None, warnings: list[str]) -> tuple[list[Note], str]:
    """The notes given, else those beside the file, else its chapters: (notes, where from)."""
    if notes is None:
        beside = find_notes_beside(info.path)
        if beside is not None:
            notes = beside
    if notes is not None:
        path = Path(notes)
        if not path.is_file():
            raise NotesError(f"Notes file {path} does not exist: check the path given to --notes.")
        result = parse_notes(path)
        warnings.extend(result.warnings)
        return list(result.notes), str(path)
    if info.chapters:
        return notes_from_chapters(info.chapters), "chapters"
    return [], ""


def check_cuts_option(info: MediaInfo, cuts: str) -> None:
    """``--cuts on`` needs a picture: say so before anything is decoded or spent."""
    if cuts == "on" and info.video is None:
        raise OptionError(
            f"--cuts on follows the picture, and {info.path.name} has none (it is audio only): "
            "drop --cuts, or use --cuts auto."
        )


def picture_cuts(info: MediaInfo, opts: ScoreOptions, has_notes: bool,
                 warn: Callable[[str], None]) -> PictureCuts | None:
    """The picture's cuts when ``--cuts`` asks for them: None without a picture, with ``off``,
    or under ``auto`` when notes or chapters already say where things happen."""
    check_cuts_option(info, opts.cuts)
    if opts.cuts == "off" or info.video is None or (opts.cuts == "auto" and has_notes):
        return None
    from .media.cuts import find_cuts

    # Cuts are cheap to find again and stay on this machine, even when the music cache is shared.
    local = opts.cache_dir is not None and not is_url(opts.cache_dir)
    cache = Path(str(opts.cache_dir).removeprefix("file://")).expanduser() if local else None
    return find_cuts(info.path, info, cache_dir=cache, use_cache=opts.use_cache, warn=warn)


@dataclass(frozen=True)
class Followed:
    """Notes and preset after the picture had its say."""

    notes: tuple[Note, ...]
    source: str
    """Where the sections come from: a notes file, ``chapters``, ``cuts``, or '' (none)."""
    preset: Preset
    """The preset, its tempo set to the one fitted to the cuts."""
    fit: TempoFit | None
    cuts: tuple[float, ...]


def follow_picture(notes: Sequence[Note], source: str, cuts: PictureCuts | None, duration: float,
                   preset: Preset, prompt: str | None = None) -> Followed:
    """Sections from the cuts when nothing else gives them, notes moved onto nearby cuts, and
    the tempo that puts the most cuts on beats."""
    if cuts is None:
        return Followed(tuple(notes), source, preset, None, ())
    if notes:
        notes = snap_notes_to_cuts(notes, cuts.cuts)
    else:
        notes = notes_from_cuts(cuts, duration, min_section=preset.structure.min_section,
                                max_section=preset.structure.max_section, baseline=preset.music.energy)
        source = CUTS_SOURCE
    fit = None
    if not BPM_IN_TEXT.search(prompt or ""):  # a BPM the user typed is kept as typed
        fit = fit_tempo(cuts.cuts, shared_tempo(preset, prompt))
        preset = replace(preset, music=replace(preset.music, tempo=fit.bpm))
    return Followed(tuple(notes), source, preset, fit, cuts.cuts)
