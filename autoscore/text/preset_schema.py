"""What a preset may say, independent of where it was found.

The dataclasses are the contract other stages read; ``PRESET_FIELDS`` is the one table of
every setting, its type and its allowed range, so the loader, the CLI's options and the
documentation never disagree. Nothing here touches the file system, so the rules can be
applied alike to a TOML file (``validate_file``) and to options typed on the command line
(``override``), and the search path can change without touching them.

File layout (every key optional; unknown keys and wrong types are errors, because a
typo that is silently ignored produces a mix that is quietly wrong)::

    name = "vlog"                 # defaults to the file name without .toml
    description = "One line shown by `autoscore presets list`."
    extends = "default"           # another preset's name, or a path to a .toml file

    [generation]  steps, guidance, format
    [music]       style, negative, tempo, key, energy, instruments, sections
    [mix]         duck_depth_db, attack_ms, release_ms, lookahead_ms, hold_ms, min_speech_ms,
                  duck_on, music_level_db, target_lufs, true_peak_db, fade_in, fade_out, crossfade
    [structure]   mode, intro, outro, min_section
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import OptionError, PresetError

__all__ = [
    "DEFAULT_PRESET",
    "FORMATS",
    "PRESET_FIELDS",
    "SECTION_POLICIES",
    "TABLES",
    "TOP_LEVEL_KEYS",
    "FieldSpec",
    "GenerationSettings",
    "MixSettings",
    "MusicSettings",
    "Preset",
    "StructureSettings",
    "build_preset",
    "check_whole",
    "override",
    "preset_to_toml",
    "validate_file",
]

DEFAULT_PRESET = "default"
FORMATS: tuple[str, ...] = ("mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
"""The generator's output formats (same as ``backends.base.FORMATS``, kept here so that
loading a preset does not import the backends)."""
SECTION_POLICIES: tuple[str, ...] = ("auto", "each", "outpaint", "blend")
"""How sections reach the generator (``--sections``; ``music.policy`` explains each)."""


@dataclass(frozen=True)
class GenerationSettings:
    steps: int = 8
    guidance: float = 1.0
    format: str = "flac"
    """Format asked of the generator: lossless, since we re-encode anyway, and compressed,
    since a two-minute chunk as WAV is 21 MB to download and as FLAC about half."""


@dataclass(frozen=True)
class MusicSettings:
    style: str = (
        "instrumental warm modern background music, uplifting and relaxed, piano, soft pads, "
        "electric bass and gentle drums, clean polished production"
    )
    negative: str = "vocals, singing, speech"
    tempo: float | None = 96
    """BPM shared by every section so chunks and sections join cleanly; None: from style."""
    key: str = "C major"
    """Key or mode words shared by every section, e.g. "D minor", "bright major"."""
    energy: float = 0.5
    """The preset's baseline energy, 0 (still) to 1 (flat out); sections move around it."""
    instruments: tuple[str, ...] = ("piano", "soft pads", "bass", "drums")
    """Core instrumentation named in every section's prompt (continuity)."""
    sections: str = "auto"
    """How the sections' words reach the generator: a request each, outpainting steps, or
    blended into the fewest requests; auto picks by price (``--sections`` overrides it)."""


@dataclass(frozen=True)
class MixSettings:
    duck_depth_db: float = 12.0
    """How far the music dips under speech."""
    attack_ms: float = 120.0
    release_ms: float = 500.0
    lookahead_ms: float = 200.0
    """The dip starts this long before speech so it is complete when the first word lands."""
    hold_ms: float = 400.0
    """Gaps in speech shorter than this stay ducked (no pumping between words)."""
    min_speech_ms: float = 150.0
    """Detected speech shorter than this is ignored (coughs, clicks)."""
    duck_on: str = "speech"
    """'speech' (voice activity) or 'loud' (any sound above the floor)."""
    music_level_db: float = -14.0
    """Unducked music loudness relative to the dialogue's, in LU."""
    target_lufs: float = -14.0
    true_peak_db: float = -1.0
    fade_in: float = 1.0
    fade_out: float = 3.0
    crossfade: float = 4.0
    """Overlap between neighbouring generated chunks, in seconds."""


@dataclass(frozen=True)
class StructureSettings:
    mode: str = "full"
    """'full' scores the whole input; 'beds' lays an intro and an outro bed (podcasts)."""
    intro: float = 0.0
    """Length of the intro bed in seconds ('beds' mode)."""
    outro: float = 0.0
    """Length of the outro bed in seconds ('beds' mode)."""
    min_section: float = 5.0
    """Sections shorter than this merge into a neighbour."""
    max_section: float = 40.0
    """Sections made from the picture's cuts end at a cut before they grow longer than this."""


@dataclass(frozen=True)
class Preset:
    name: str = DEFAULT_PRESET
    description: str = "Balanced background music for talking-head video."
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    music: MusicSettings = field(default_factory=MusicSettings)
    mix: MixSettings = field(default_factory=MixSettings)
    structure: StructureSettings = field(default_factory=StructureSettings)
    source: Path | None = None
    """The file this preset was loaded from (None: built from the dataclass defaults)."""
    parents: tuple[str, ...] = ()
    """Names of the presets it extends, nearest first (for `presets show`)."""


TABLES: dict[str, type] = {
    "generation": GenerationSettings,
    "music": MusicSettings,
    "mix": MixSettings,
    "structure": StructureSettings,
}
TOP_LEVEL_KEYS = ("name", "description", "extends")


# --------------------------------------------------------------------------------------
# The table of fields: the single source of truth for types and ranges.


@dataclass(frozen=True)
class FieldSpec:
    """One setting: where it lives, what type it takes and what values are sane."""

    table: str
    key: str
    kind: str
    """'int', 'float', 'str', 'choice' or 'list' (a list of words)."""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.key}"

    def allowed(self) -> str:
        """Human wording of the allowed values, used in every error message."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            unit = f" {self.unit}" if self.unit else ""
            whole = "a whole number from" if self.kind == "int" else "a number from"
            return f"{whole} {_num(self.low)} to {_num(self.high)}{unit}"
        if self.kind == "list":
            return "a list of words, e.g. [\"piano\", \"strings\"]"
        return "text"

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable (a sentence fragment), or None when it is fine.

        Returned rather than raised so the preset loader and the CLI can each wrap it in
        their own error (PresetError naming a file, OptionError naming an option).
        """
        got = f"got {_describe(value)}"
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be a whole number ({got}); use {self.allowed()}"
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return f"must be a number ({got}); use {self.allowed()}"
        elif self.kind in ("str", "choice"):
            if not isinstance(value, str):
                return f"must be text in quotes ({got}); use {self.allowed()}"
            if self.kind == "choice" and value not in self.choices:
                return f"is {value!r}; use {self.allowed()}"
            return None
        elif self.kind == "list":
            words = isinstance(value, list | tuple) and all(isinstance(v, str) and v.strip() for v in value)
            if not words:
                return f"must be {self.allowed()} ({got})"
            return None
        assert isinstance(value, int | float)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return f"is {_num(value)}, out of range; use {self.allowed()}"
        return None

    def convert(self, value: Any) -> Any:
        """The dataclass value for an accepted TOML value."""
        if self.kind == "float":
            return float(value)
        if self.kind == "list":
            return tuple(v.strip() for v in value)
        return value


def _spec(table: str, key: str, kind: str, low: float | None = None, high: float | None = None,
          unit: str = "", help: str = "", choices: tuple[str, ...] = ()) -> FieldSpec:
    return FieldSpec(table, key, kind, low, high, choices, unit, help)


_SPECS: tuple[FieldSpec, ...] = (
    _spec("generation", "steps", "int", 1, 100, help="diffusion steps per request"),
    _spec("generation", "guidance", "float", 0, 25, help="how closely the model follows the prompt"),
    _spec("generation", "format", "choice", choices=FORMATS, help="audio format asked of the generator"),
    _spec("music", "style", "str", help="style prompt: genre, mood, instruments, tempo words, production"),
    _spec("music", "negative", "str", help="what to avoid (also worded as 'no ...' in prompts)"),
    _spec("music", "tempo", "int", 40, 220, "BPM", "tempo shared by every section"),
    _spec("music", "key", "str", help="key or mode words shared by every section, e.g. 'D minor'"),
    _spec("music", "energy", "float", 0, 1, help="baseline energy, 0 still to 1 flat out"),
    _spec("music", "instruments", "list", help="core instrumentation named in every section"),
    _spec("music", "sections", "choice", choices=SECTION_POLICIES,
          help="how sections reach the generator: auto, each, outpaint or blend"),
    _spec("mix", "duck_depth_db", "float", 0, 40, "dB", "how far music dips under speech"),
    _spec("mix", "attack_ms", "float", 5, 2000, "ms", "time to reach the full dip"),
    _spec("mix", "release_ms", "float", 20, 5000, "ms", "time to come back up after speech"),
    _spec("mix", "lookahead_ms", "float", 0, 2000, "ms", "dip starts this long before speech"),
    _spec("mix", "hold_ms", "float", 0, 5000, "ms", "speech gaps shorter than this stay ducked"),
    _spec("mix", "min_speech_ms", "float", 0, 2000, "ms", "speech shorter than this is ignored"),
    _spec("mix", "duck_on", "choice", choices=("speech", "loud"), help="duck under voice or any loud sound"),
    _spec("mix", "music_level_db", "float", -40, 0, "LU", "unducked music relative to dialogue"),
    _spec("mix", "target_lufs", "float", -40, -5, "LUFS", "integrated loudness of the result"),
    _spec("mix", "true_peak_db", "float", -9, 0, "dBTP", "true-peak ceiling of the result"),
    _spec("mix", "fade_in", "float", 0, 30, "s", "music fade-in at the start"),
    _spec("mix", "fade_out", "float", 0, 60, "s", "music fade-out at the end"),
    _spec("mix", "crossfade", "float", 0.5, 20, "s", "overlap between generated chunks"),
    _spec("structure", "mode", "choice", choices=("full", "beds"),
          help="'full' scores everything; 'beds' lays intro/outro beds (podcasts)"),
    _spec("structure", "intro", "float", 0, 600, "s", "intro bed length ('beds' mode)"),
    _spec("structure", "outro", "float", 0, 600, "s", "outro bed length ('beds' mode)"),
    _spec("structure", "min_section", "float", 1, 600, "s", "shorter sections merge into a neighbour"),
    _spec("structure", "max_section", "float", 5, 600, "s", "longest section made from the picture's cuts"),
)

PRESET_FIELDS: dict[str, FieldSpec] = {s.dotted: s for s in _SPECS}
"""Every preset setting by dotted name (``"mix.duck_depth_db"``): the single source of truth
for types and ranges. The CLI derives its option ranges from this table."""


def _check_table_consistency() -> None:
    """The table and the dataclasses must name the same fields; fail at import otherwise."""
    for table, cls in TABLES.items():
        names = {f.name for f in fields(cls)}
        specs = {s.key for s in _SPECS if s.table == table}
        if names != specs:  # pragma: no cover - guards edits to this file
            raise RuntimeError(f"PRESET_FIELDS and {cls.__name__} disagree: {sorted(names ^ specs)}")


_check_table_consistency()


# --------------------------------------------------------------------------------------
# Checking and building: the same rules for files and for command-line options.


def validate_file(data: dict[str, Any], path: Path) -> None:
    """Check every key of one file against the table, so errors name the file that has them."""
    for key, value in data.items():
        if key in TABLES:
            if not isinstance(value, dict):
                got = _describe(value)
                raise PresetError(f"Preset file {path}: {key} must be a table [{key}], got {got}.")
            for sub, subvalue in value.items():
                spec = PRESET_FIELDS.get(f"{key}.{sub}")
                if spec is None:
                    hint = _key_hint(sub, key)
                    raise PresetError(f"Preset file {path}: unknown key {sub!r} in [{key}].{hint}")
                problem = spec.problem(subvalue)
                if problem:
                    raise PresetError(f"Preset file {path}: [{key}] {sub} {problem}.")
        elif key in TOP_LEVEL_KEYS:
            if not isinstance(value, str):
                got = _describe(value)
                raise PresetError(f"Preset file {path}: {key} must be text in quotes, got {got}.")
        else:
            raise PresetError(f"Preset file {path}: unknown key {key!r}.{_key_hint(key, None)}")


def _key_hint(key: str, table: str | None) -> str:
    """Point at the right table for a misplaced key, or the nearest spelling for a typo."""
    homes = [s.table for s in _SPECS if s.key == key and s.table != table]
    if homes:
        return f" It belongs in [{homes[0]}]."
    known = [s.key for s in _SPECS if s.table == table] if table else [*TOP_LEVEL_KEYS, *TABLES]
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f" Did you mean {close[0]!r}?"
    return f" Known keys: {', '.join(known)}."


def build_preset(raw: dict[str, Any], path: Path, parents: tuple[str, ...]) -> Preset:
    """The preset for one file's raw data, ``extends`` already merged in and validated."""
    tables = {}
    for table, cls in TABLES.items():
        values = {k: PRESET_FIELDS[f"{table}.{k}"].convert(v) for k, v in raw.get(table, {}).items()}
        tables[table] = cls(**values)
    preset = Preset(
        name=raw.get("name") or path.stem,
        description=raw.get("description", Preset.description),
        source=path,
        parents=parents,
        **tables,
    )
    check_whole(preset, path)
    return preset


def check_whole(preset: Preset, path: Path | None) -> None:
    """Rules that involve more than one key, checked once inheritance is applied."""
    where = f"Preset file {path}" if path else f"Preset {preset.name!r}"
    if not preset.music.style.strip():
        raise PresetError(f"{where}: [music] style is empty; describe the music (genre, mood, instruments).")
    s = preset.structure
    if s.mode == "beds" and s.intro <= 0 and s.outro <= 0:
        raise PresetError(f"{where}: [structure] mode 'beds' needs intro or outro above 0 seconds.")


def override(preset: Preset, values: Mapping[str, object]) -> Preset:
    """``preset`` with some fields replaced, e.g. ``{"mix.duck_depth_db": 6}`` from CLI options.

    Checked against the same table as files; raises OptionError (the user typed it).
    """
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        spec = PRESET_FIELDS.get(dotted)
        if spec is None:
            raise OptionError(f"Unknown preset setting {dotted!r}: use one of {', '.join(PRESET_FIELDS)}.")
        if spec.kind == "list" and isinstance(value, str):
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        problem = spec.problem(value)
        if problem:
            raise OptionError(f"Setting {dotted} {problem}.")
        changes.setdefault(spec.table, {})[spec.key] = spec.convert(value)
    result = replace(preset, **{t: replace(getattr(preset, t), **c) for t, c in changes.items()})
    try:
        check_whole(result, None)
    except PresetError as exc:
        raise OptionError(str(exc)) from None
    return result


def preset_to_toml(preset: Preset) -> str:
    """The resolved preset as TOML (inheritance applied): loading it gives the same preset."""
    lines = []
    if preset.source is not None:
        lines.append(f"# from {preset.source}")
    if preset.parents:
        lines.append(f"# extends {' -> '.join(preset.parents)} (merged below)")
    lines.append(f"name = {_toml_value(preset.name)}")
    lines.append(f"description = {_toml_value(preset.description)}")
    for table in TABLES:
        lines.append("")
        lines.append(f"[{table}]")
        section = getattr(preset, table)
        for spec in (s for s in _SPECS if s.table == table):
            value = getattr(section, spec.key)
            if value is None:
                lines.append(f"# {spec.key}: not set ({spec.help})")
            else:
                lines.append(f"{spec.key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        escaped = (
            value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        )
        escaped = "".join(c if ord(c) >= 0x20 and ord(c) != 0x7F else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _num(value: float) -> str:
    return f"{value:g}"


def _describe(value: object) -> str:
    kind = {bool: "true/false", int: "a whole number", float: "a number", str: "text",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"
