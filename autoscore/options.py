"""The user's choices for a job, in one frozen object that every surface builds.

The CLI, ``score()``, ``score_clip``/``AutoScore`` and ``batch`` each used to spell out
the same twenty options, and they drifted apart. Now each of them fills a
``ScoreOptions`` and hands it down; a stage reads what it needs from it. Adding an option
is one field here (with its row in ``OPTION_SPECS`` if it has a range or choices) plus
its use.

``OPTION_SPECS`` is the one table of ranges and choices: ``ScoreOptions`` checks itself
against it, and the CLI derives its click types (so ``--help`` shows the ranges) from it.
The preset's own settings keep their table in ``presets.PRESET_FIELDS``; the mix options
the CLI lays over a preset take their ranges from there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OptionError, register_secret
from .text.preset_schema import SECTION_POLICIES

if TYPE_CHECKING:
    from .models import Note
    from .text.presets import Preset

__all__ = ["OPTION_SPECS", "OptionSpec", "ScoreOptions"]

BACKEND_NAMES: tuple[str, ...] = ("auto", "procedural", "wavespeed")
JOINS: tuple[str, ...] = ("crossfade", "outpaint")
FALLBACKS: tuple[str, ...] = ("procedural",)
CUTS: tuple[str, ...] = ("auto", "on", "off")
OUTPUT_FORMATS: tuple[str, ...] = ("mp4", "m4v", "mov", "mkv", "webm",
                                   "mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
"""Containers a video can be written to, then the seven audio formats (audio only)."""


@dataclass(frozen=True)
class OptionSpec:
    """Type, range and help of one option: what ``ScoreOptions`` checks and the CLI shows."""

    name: str
    kind: str
    """int, float, or choice."""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    low_open: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None; None values mean "not given" and pass."""
        if value is None:
            return None
        if self.kind == "choice":
            return None if value in self.choices else f"is {value!r}; use one of {', '.join(self.choices)}"
        whole = self.kind == "int"
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            return f"must be {'a whole number' if whole else 'a number'}, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and value > self.high
        if below or above:
            return f"is {value:g}, out of range; use {self.allowed()}"
        return None

    def allowed(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        if self.low is not None:
            return f"more than {self.low:g}" if self.low_open else f"{self.low:g} or more"
        return "any number"


OPTION_SPECS: dict[str, OptionSpec] = {
    s.name: s
    for s in (
        OptionSpec("backend", "choice", choices=BACKEND_NAMES,
                   help="auto = wavespeed when WAVESPEED_API_KEY is set, else procedural."),
        OptionSpec("join", "choice", choices=JOINS, help="How chunks past 120 s are joined."),
        OptionSpec("sections", "choice", choices=SECTION_POLICIES,
                   help="How each section's words reach the generator: a request each, outpainting "
                        "steps, or blended into the fewest requests; auto picks by price and --max-cost "
                        "(default: the preset's, else auto)."),
        OptionSpec("cuts", "choice", choices=CUTS,
                   help="Follow the picture's cuts: auto = for videos without notes or chapters; on = also "
                        "with notes (boundaries near a cut move onto it); off = never decode the picture."),
        OptionSpec("fallback", "choice", choices=FALLBACKS,
                   help="If the remote backend fails, compose offline."),
        OptionSpec("format", "choice", choices=OUTPUT_FORMATS, help="Output container or audio format."),
        OptionSpec("concurrency", "int", 1, 32,
                   help="Requests in flight at once, shared by all jobs on one account (default 8, fewer "
                        "after 429s)."),
        OptionSpec("timeout", "float", 0, None, low_open=True,
                   help="Seconds the music of one job may take in all (default: 5 min plus 3 min per "
                        "request)."),
        OptionSpec("max_cost", "float", 0, None, help="Refuse a plan costing more dollars than this."),
    )
}


@dataclass(frozen=True)
class ScoreOptions:
    """What the user chose, whatever surface they chose it on; checked when made."""

    preset: str | Path | Preset | None = None
    """A name, a TOML file, or a ``Preset`` (with any CLI overrides already laid over it)."""
    notes: str | Path | Sequence[Note] | None = None
    """A notes file, or notes already parsed (moviepy clips have no file beside them)."""
    backend: str = "auto"
    api_key: str | None = field(default=None, repr=False, compare=False)
    api_base: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    cache_dir: str | Path | None = None
    use_cache: bool = True
    prompt: str | None = None
    negative: str | None = None
    join: str = "crossfade"
    sections: str | None = None
    cuts: str = "auto"
    """Whether the picture's cuts make the sections, move joins and set the tempo (``media.cuts``)."""
    """The sections policy (``music.policy``); None: the preset's ``[music] sections``."""
    max_cost: float | None = None
    fallback: str | None = None
    format: str | None = None
    dry_run: bool = False
    stems: str | Path | None = None
    music_track: bool = False
    report: str | Path | None = None
    timeline: str | Path | None = None
    """An editor's timeline to write beside the render; the format follows the suffix (``timeline``)."""

    def __post_init__(self) -> None:
        for spec in OPTION_SPECS.values():
            problem = spec.problem(getattr(self, spec.name))
            if problem is not None:
                flag = "--" + spec.name.replace("_", "-")
                raise OptionError(f"{flag} {problem}.")
        if self.api_key is not None:
            key = self.api_key.strip()
            object.__setattr__(self, "api_key", key or None)
            register_secret(key)

    @classmethod
    def of(cls, options: ScoreOptions | None = None, **changes: Any) -> ScoreOptions:
        """``options`` (or the defaults) with ``changes``; an unknown name is a usage error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise OptionError(f"Unknown option {unknown[0]!r}: the options are {', '.join(sorted(known))}.")
        base = options if options is not None else cls()
        return replace(base, **changes) if changes else base
