"""Scene notes: what happens when, in the user's own words.

Notes come as plain timestamped lines, SRT, WebVTT or JSON (detected from the extension,
else from the content), or from the chapters embedded in the input file. Every format
ends up as ``models.Note`` values; sorting, clipping to the video and merging short
stretches happen later, in ``prompts.build_sections``, where the duration is known.

Plain text, one note per line (blank lines and ``#`` comments are ignored)::

    0:00 calm intro                      m:ss
    1:05.5 build                         fractions of a second
    00:01:30 - 00:02:10 climax           h:mm:ss, and a range (also "-->" or "–")
    1:05 - build                         a separator after the time is fine (- – — : |)
    95 the drop                          plain seconds (also "95s")

JSON: a list of ``{"start": "0:10" or 10.0, "end": optional, "text": "..."}`` objects, or
``{"notes": [...]}``.

Inline modifiers, written in square brackets anywhere in a note's text:

    ==========================  ==================================================================
    modifier                    effect on that section
    ==========================  ==================================================================
    ``[no drums]``, ``[no X]``  leave X out: "no X" in the prompt and X in the negative prompt
    ``[energy: high]``          energy: low (0.25), medium (0.5), high (0.85) or a number 0 to 1
    ``[tempo: 100]``            this section's BPM (40 to 220) instead of the preset's; the joins
                                into and out of it may be audible, so autoscore warns
    ``[mood: tense]``           mood words added to the prompt
    ``[instruments: a, b]``     instruments featured in this section, on top of the core ones
    ``[arc: peak]``             place in the arc: opening, build, peak or ending (else derived
                                from position and energy words)
    ``[silence]``               no music in this section
    ==========================  ==================================================================

Anything else in square brackets is an error naming the file and line, so a typo such as
``[energy high]`` is caught rather than sent to the generator as words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotesError
from ..models import Chapter, Note
from .presets import PRESET_FIELDS

__all__ = [
    "ARCS",
    "ENERGY_WORDS",
    "MODIFIER_KEYS",
    "NotesResult",
    "energy_value",
    "format_time",
    "notes_from_chapters",
    "parse_modifiers",
    "parse_notes",
    "parse_notes_text",
    "parse_time",
]

FORMATS = ("text", "srt", "vtt", "json")
ARCS = ("opening", "build", "peak", "ending")
ENERGY_WORDS = {"low": 0.25, "medium": 0.5, "high": 0.85}
MODIFIER_KEYS = ("no", "energy", "tempo", "mood", "instruments", "arc", "silence")
_TEMPO = PRESET_FIELDS["music.tempo"]
"""[tempo: ...] obeys the same range as a preset's tempo: one table, one truth."""

_EXAMPLE = "write lines like '0:00 calm intro' or '1:05.5 - build' (m:ss, h:mm:ss or seconds)"


@dataclass(frozen=True)
class NotesResult:
    notes: tuple[Note, ...]
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------
# Times.

_TIME = r"(?:\d+:)?\d+:\d+(?:[.,]\d+)?|\d+(?:\.\d+)?s?"
_TIME_RE = re.compile(rf"^({_TIME})$")


def parse_time(text: str) -> float:
    """Seconds from ``1:05``, ``1:05.5``, ``00:01:30``, ``00:00:01,500`` (SRT), ``95`` or ``95s``.

    Raises ValueError with a reason; callers add the file and line.
    """
    text = text.strip()
    if not _TIME_RE.match(text):
        raise ValueError(f"{text!r} is not a time")
    if ":" not in text:
        return float(text.rstrip("s"))
    parts = text.replace(",", ".").split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2])
    hours = int(parts[0]) if len(parts) == 3 else 0
    if seconds >= 60:
        raise ValueError(f"{text!r} has {parts[-1]} seconds; seconds go up to 59")
    if len(parts) == 3 and minutes >= 60:
        raise ValueError(f"{text!r} has {parts[-2]} minutes; with hours, minutes go up to 59")
    return hours * 3600 + minutes * 60 + seconds


def format_time(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) with tenths when needed: how times appear in messages."""
    tenths = round(seconds * 10)
    whole, frac = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{frac}" if frac else text


# --------------------------------------------------------------------------------------
# Modifiers.

_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def parse_modifiers(text: str, where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split ``text`` into its words and its ``[...]`` modifiers, each checked.

    Returns (text without modifiers, ((key, value), ...)) with keys from MODIFIER_KEYS.
    """
    modifiers = [_modifier(m.group(1), where) for m in _BRACKET.finditer(text)]
    rest = _BRACKET.sub(" ", text)
    if "[" in rest or "]" in rest:
        raise NotesError(
            f"{where}: unbalanced square bracket in {text.strip()!r}; modifiers look like [no drums]."
        )
    return " ".join(rest.split()), tuple(modifiers)


def _modifier(inner: str, where: str) -> tuple[str, str]:
    body = " ".join(inner.split())
    low = body.lower()
    if low == "silence":
        return ("silence", "")
    if low == "no" or low.startswith(("no ", "no:")):
        what = body[3:].strip(" :")
        if not what:
            raise NotesError(f"{where}: [{body}] says no to nothing; write e.g. [no drums].")
        return ("no", what)
    if ":" not in body:
        raise NotesError(f"{where}: unknown modifier [{body}]; {_modifier_help()}")
    key, _, value = body.partition(":")
    key, value = key.strip().lower(), value.strip()
    if key not in MODIFIER_KEYS or key in ("no", "silence"):
        raise NotesError(f"{where}: unknown modifier key {key!r} in [{body}]; {_modifier_help()}")
    if not value:
        raise NotesError(f"{where}: [{body}] has no value; e.g. [{key}: {_EXAMPLES[key]}].")
    return (key, _check_value(key, value, body, where))


_EXAMPLES = {
    "energy": "high", "tempo": "100", "mood": "tense", "instruments": "piano, strings", "arc": "peak",
}


def _modifier_help() -> str:
    return "use [no X], [energy: low|medium|high|0-1], [tempo: BPM], [mood: ...], [instruments: ...], " \
           "[arc: opening|build|peak|ending] or [silence]."


def _check_value(key: str, value: str, body: str, where: str) -> str:
    if key == "energy":
        try:
            energy_value(value)
        except ValueError as exc:
            raise NotesError(f"{where}: [{body}]: {exc}.") from None
        return value.lower()
    if key == "tempo":
        if not value.isdigit() or _TEMPO.problem(int(value)):
            raise NotesError(f"{where}: [{body}]: tempo must be {_TEMPO.allowed()}.")
        return str(int(value))
    if key == "arc":
        if value.lower() not in ARCS:
            raise NotesError(f"{where}: [{body}]: arc must be one of {', '.join(ARCS)}.")
        return value.lower()
    if key == "instruments":
        items = [i.strip() for i in value.split(",") if i.strip()]
        return ", ".join(items)
    return value


def energy_value(value: str) -> float:
    """0..1 from ``low``/``medium``/``high`` or a number; ValueError with a reason otherwise."""
    word = value.strip().lower()
    if word in ENERGY_WORDS:
        return ENERGY_WORDS[word]
    try:
        number = float(word)
    except ValueError:
        raise ValueError(f"energy must be low, medium, high or a number from 0 to 1, got {value!r}") from None
    if not 0 <= number <= 1:
        raise ValueError(f"energy must be from 0 to 1, got {value}")
    return number


def _note(start: float, text: str, where: str, end: float | None = None) -> Note:
    words, modifiers = parse_modifiers(text, where)
    if end is not None and end <= start:
        raise NotesError(
            f"{where}: the range ends at {format_time(end)}, not after its start {format_time(start)}; "
            "swap or fix the times."
        )
    return Note(start=start, text=words, end=end, modifiers=modifiers, source=where)


# --------------------------------------------------------------------------------------
# Entry points.


def parse_notes(path: Path) -> NotesResult:
    """Read a notes file of any supported format."""
    path = Path(path)
    from ..timeline import MARKER_ADAPTERS

    if path.suffix.lower() in MARKER_ADAPTERS:  # an editor's markers: timeline.markers reads them
        from ..timeline.markers import parse_marker_file

        return parse_marker_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NotesError(f"Notes file {str(path)!r} does not exist: check the path.") from None
    except UnicodeDecodeError:
        raise NotesError(f"Notes file {path} is not UTF-8 text; save it as UTF-8.") from None
    except OSError as exc:
        raise NotesError(f"Notes file {path} cannot be read: {exc.strerror or exc}.") from None
    return parse_notes_text(text, name=path.name, fmt=_format_from_suffix(path.suffix))


def parse_notes_text(text: str, name: str = "notes", fmt: str | None = None) -> NotesResult:
    """Parse notes given as text; ``fmt`` is text, srt, vtt or json (None: detect)."""
    text = text.lstrip("\ufeff")
    fmt = fmt or _sniff(text)
    if fmt not in FORMATS:
        raise NotesError(f"Unknown notes format {fmt!r}: use one of {', '.join(FORMATS)}.")
    parser = {"text": _parse_plain, "srt": _parse_srt, "vtt": _parse_vtt, "json": _parse_json}[fmt]
    notes, warnings = parser(text, name)
    if not notes:
        raise NotesError(f"{name} has no notes: {_EXAMPLE}.")
    return NotesResult(tuple(notes), tuple(warnings))


def notes_from_chapters(chapters: Sequence[Chapter]) -> list[Note]:
    """Notes from the chapters embedded in the input (used when no notes file is given).

    Chapter titles are written for viewers, not for autoscore, so brackets in them are kept
    as words rather than rejected, and generic titles ("Chapter 3") carry no words.
    """
    notes = []
    for number, chapter in enumerate(chapters, 1):
        if chapter.end <= chapter.start:
            continue
        title = " ".join(chapter.title.split())
        if re.fullmatch(r"(?i)(chapter|part|section|ch\.?)\s*\d+", title):
            title = ""
        notes.append(Note(start=chapter.start, text=title, end=chapter.end, source=f"chapter {number}"))
    return notes


def _format_from_suffix(suffix: str) -> str | None:
    return {".srt": "srt", ".vtt": "vtt", ".json": "json"}.get(suffix.lower())


def _sniff(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith("WEBVTT"):
        return "vtt"
    if stripped[:1] in ("[", "{"):
        return "json"
    lines = [ln.strip() for ln in stripped.splitlines()[:3]]
    if len(lines) >= 2 and lines[0].isdigit() and "-->" in lines[1]:
        return "srt"
    return "text"


# --------------------------------------------------------------------------------------
# Plain text.

_SEP = r"\s*(?:-->|[-–—:|])?\s*"
_LINE = re.compile(rf"^({_TIME})(?!:?\d)(?:\s*(?:-->|[-–—]|\bto\b)\s*({_TIME})(?=\s|$))?(?:{_SEP}(.*))?$")


def _parse_plain(text: str, name: str) -> tuple[list[Note], list[str]]:
    notes: list[Note] = []
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        match = _LINE.match(line)
        if not match:
            raise NotesError(f"{where}: cannot read a time at the start of {line!r}; {_EXAMPLE}.")
        start_text, end_text, rest = match.groups()
        try:
            start = parse_time(start_text)
            end = parse_time(end_text) if end_text else None
        except ValueError as exc:
            raise NotesError(f"{where}: {exc}; {_EXAMPLE}.") from None
        note = _note(start, rest or "", where, end)
        if not note.text and not note.modifiers:
            at = format_time(start)
            warnings.append(f"{where}: the note at {at} has no words; it only starts a section.")
        notes.append(note)
    return notes, warnings


# --------------------------------------------------------------------------------------
# SRT and WebVTT: blocks of a cue time line followed by text lines.

_CUE = re.compile(rf"^\s*({_TIME})\s*-->\s*({_TIME})(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>")


def _parse_srt(text: str, name: str) -> tuple[list[Note], list[str]]:
    return _parse_cues(text, name, vtt=False)


def _parse_vtt(text: str, name: str) -> tuple[list[Note], list[str]]:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    if not first.startswith("WEBVTT"):
        raise NotesError(f"{name}:1: a WebVTT file must start with 'WEBVTT'.")
    return _parse_cues(text, name, vtt=True)


def _parse_cues(text: str, name: str, vtt: bool) -> tuple[list[Note], list[str]]:
    notes: list[Note] = []
    lines = text.splitlines()
    index = 0
    if vtt:
        index = 1
        while index < len(lines) and lines[index].strip():  # header lines after WEBVTT
            index += 1
    while index < len(lines):
        while index < len(lines) and not lines[index].strip():
            index += 1
        block_start = index
        block = []
        while index < len(lines) and lines[index].strip():
            block.append(lines[index].strip())
            index += 1
        if not block:
            break
        if vtt and block[0].split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        notes.append(_cue(block, block_start, name, vtt))
    return notes, []


def _cue(block: list[str], block_start: int, name: str, vtt: bool) -> Note:
    """One cue: optional identifier line, the time line, then text lines."""
    offset = 0 if "-->" in block[0] else 1
    line_number = block_start + offset + 1
    where = f"{name}:{line_number}"
    if offset >= len(block) or not (match := _CUE.match(block[offset])):
        kind = "WebVTT" if vtt else "SRT"
        raise NotesError(
            f"{where}: expected a {kind} time line like '00:00:01{'.' if vtt else ','}000 --> "
            f"00:00:04{'.' if vtt else ','}000', got {block[min(offset, len(block) - 1)]!r}."
        )
    try:
        start, end = parse_time(match.group(1)), parse_time(match.group(2))
    except ValueError as exc:
        raise NotesError(f"{where}: {exc}.") from None
    words = " ".join(_TAG.sub("", line) for line in block[offset + 1:])
    return _note(start, words, where, end)


# --------------------------------------------------------------------------------------
# JSON.


def _parse_json(text: str, name: str) -> tuple[list[Note], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotesError(f"{name}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}).") from None
    if isinstance(data, dict):
        if set(data) != {"notes"}:
            raise NotesError(f"{name}: a JSON object must have exactly one key, \"notes\", holding a list.")
        data = data["notes"]
    if not isinstance(data, list):
        raise NotesError(f"{name}: JSON notes must be a list of {{\"start\", \"end\", \"text\"}} objects.")
    return [_json_note(item, f"{name}[{i}]") for i, item in enumerate(data)], []


def _json_note(item: Any, where: str) -> Note:
    if not isinstance(item, dict):
        raise NotesError(f'{where}: each note must be an object like {{"start": "0:10", "text": "..."}}.')
    unknown = set(item) - {"start", "end", "text"}
    if unknown:
        raise NotesError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; use start, end and text.")
    if "start" not in item:
        raise NotesError(f"{where}: the note has no \"start\".")
    text = item.get("text", "")
    if not isinstance(text, str):
        raise NotesError(f"{where}: \"text\" must be a string.")
    start = _json_time(item["start"], where, "start")
    end = _json_time(item["end"], where, "end") if item.get("end") is not None else None
    return _note(start, text, where, end)


def _json_time(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NotesError(f"{where}: \"{field}\" must be seconds (10.5) or a time string (\"0:10.5\").")
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError as exc:
            raise NotesError(f"{where}: \"{field}\": {exc}.") from None
    if value < 0 or value != value or value in (float("inf"), float("-inf")):
        raise NotesError(f"{where}: \"{field}\" must be zero or more seconds, got {value}.")
    return float(value)
