"""The command line's options, built from the tables that define them.

Types, ranges and choices come from ``options.OPTION_SPECS`` and, for the mix settings
laid over a preset, from ``text.presets.PRESET_FIELDS``; ``--help`` shows them.
``options_from`` turns a command's parsed parameters into the one ``ScoreOptions`` the
pipeline takes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import register_secret
from ..options import OPTION_SPECS, ScoreOptions

__all__ = [
    "OVERRIDES",
    "api_key_from",
    "job_options",
    "mix_overrides",
    "options_from",
    "resolved_preset",
    "run_options",
    "score_options",
    "spec_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def api_key_from(option: str | None) -> str | None:
    key = option or os.environ.get("WAVESPEED_API_KEY") or None
    register_secret(key)
    return key


def spec_option(name: str, *decls: str, **extra: Any) -> Callable[[_F], _F]:
    """A click option whose type, range, choices and help come from ``OPTION_SPECS``."""
    spec = OPTION_SPECS[name]
    kind: Any
    if spec.kind == "choice":
        kind = click.Choice(spec.choices)
    elif spec.kind == "int":
        kind = click.IntRange(None if spec.low is None else int(spec.low),
                              None if spec.high is None else int(spec.high))
    else:
        kind = click.FloatRange(spec.low, spec.high, min_open=spec.low_open)
    flags = decls or ("--" + name.replace("_", "-"),)
    return click.option(*flags, type=kind, help=extra.pop("help", spec.help), **extra)


def preset_option(param: str, dotted: str, help: str) -> Callable[[_F], _F]:
    """A click option laid over a preset setting, with that setting's range from ``PRESET_FIELDS``."""
    from ..text.presets import PRESET_FIELDS

    spec = PRESET_FIELDS[dotted]
    kind: Any = click.Choice(spec.choices) if spec.kind == "choice" else click.FloatRange(spec.low, spec.high)
    return click.option("--" + param.replace("_", "-"), param, type=kind, help=help)


# Options shared by score, plan and batch, declared once.
def job_options(f: Any) -> Any:
    decorators = [
        click.option(
            "--preset", "-p", metavar="NAME|FILE", help="Style preset (see 'autoscore presets list')."
        ),
        click.option(
            "--notes",
            "-n",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Scene notes: timestamped text, SRT, WebVTT or JSON; or an editor's markers in a .otio, "
                 ".xml (Final Cut Pro 7), .fcpxml or .edl timeline.",
        ),
        spec_option("backend", "--backend", "-b", default="auto", show_default=True),
        click.option("--prompt", help="Replace the preset's style prompt."),
        click.option("--negative", help="Add to the preset's negative prompt."),
        spec_option("join", default="crossfade", show_default=True),
        spec_option("sections"),
        spec_option("cuts", default="auto", show_default=True),
        click.option("--api-key", envvar=None, help="WaveSpeed key (default: $WAVESPEED_API_KEY)."),
        click.option(
            "--api-base",
            envvar="WAVESPEED_BASE_URL",
            metavar="URL",
            help="WaveSpeed base URL, e.g. an 'autoscore emulator'.",
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


OVERRIDES: tuple[tuple[str, str, str], ...] = (
    ("duck_db", "mix.duck_depth_db", "How far music dips under speech (dB)."),
    ("duck_on", "mix.duck_on", "Duck under speech or any loud sound."),
    ("music_level", "mix.music_level_db", "Music level relative to the dialogue (LU)."),
    ("loudness", "mix.target_lufs", "Target loudness of the mix (LUFS)."),
    ("crossfade", "mix.crossfade", "Overlap between generated chunks (s)."),
)
"""CLI options laid over a preset: (parameter, preset setting, help)."""


def mix_overrides(f: Any) -> Any:
    for param, dotted, help in reversed(OVERRIDES):
        f = preset_option(param, dotted, help)(f)
    return f


def resolved_preset(ctx: click.Context, name: str | None) -> Any:
    """The preset with the options the user actually typed laid over it."""
    from ..text.presets import load_preset, override

    preset = load_preset(name)
    changes = {
        key: ctx.params[param]
        for param, key, _help in OVERRIDES
        if ctx.params.get(param) is not None
        and ctx.get_parameter_source(param) is not click.core.ParameterSource.DEFAULT
    }
    return override(preset, changes) if changes else preset


def run_options(f: Any) -> Any:
    """Options of any run that makes music: shared by ``score``, ``bed`` and ``batch``."""
    decorators: list[Callable[[Any], Any]] = [
        spec_option("format", "-f", "--format", "fmt"),
        job_options,
        mix_overrides,
        spec_option("max_cost"),
        spec_option("fallback"),
        spec_option("concurrency"),
        spec_option("timeout"),
        click.option(
            "--cache-dir",
            metavar="FOLDER|URL",
            help="Where generated music is kept: a folder, or an fsspec URL (s3://bucket/prefix) that a "
                 "cluster's workers share.",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the music cache."),
        click.option("--music-track", is_flag=True, help="Add the ducked music as a second audio track."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def score_options(f: Any) -> Any:
    """Options of a scoring run that writes one file: shared by ``score`` and ``bed``."""
    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "-o",
            "--output",
            type=click.Path(path_type=Path),
            help="Default: INPUT_STEM.scored.EXT beside it.",
        ),
        run_options,
        click.option("--dry-run", is_flag=True, help="Print the plan and its cost; generate nothing."),
        click.option(
            "--stems", type=click.Path(file_okay=False, path_type=Path), help="Also write WAV stems here."
        ),
        click.option(
            "--report", type=click.Path(dir_okay=False, path_type=Path), help="Draw the mix to this PNG."
        ),
        click.option(
            "--timeline", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
            help="Also write an editor's timeline with the music and its ducking as keyframes: "
                 ".otio (OpenTimelineIO), .xml (Final Cut Pro 7 XML, for Premiere and Resolve) or .fcpxml "
                 "(Final Cut Pro X).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def options_from(ctx: click.Context, params: dict[str, Any], preset: Any = None) -> ScoreOptions:
    """The ``ScoreOptions`` a command's parsed parameters stand for (absent ones keep defaults)."""
    names = {f.name for f in fields(ScoreOptions)}
    given = {name: params[name] for name in names & params.keys()}
    if "fmt" in params:
        given["format"] = params["fmt"]
    if "no_cache" in params:
        given["use_cache"] = not params["no_cache"]
    if "api_key" in params:
        given["api_key"] = api_key_from(params["api_key"])
    if "sections" in params and ctx.get_parameter_source("sections") is click.core.ParameterSource.DEFAULT:
        del given["sections"]  # not typed: the preset's [music] sections decides
    given["preset"] = preset if preset is not None else resolved_preset(ctx, params.get("preset"))
    return ScoreOptions(**given)
