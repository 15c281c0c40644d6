"""The ``autoscore`` command: thin click commands over the Python API.

The library raises ``AutoscoreError``; this module turns it into one ``Error: ...`` line
and the error's exit code (2 usage, 1 runtime), with the traceback only under
``--debug``. Commands fill options and call one function each; no logic lives here
that a script using the API would miss.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import __version__
from ..errors import AutoscoreError, OptionError, redact, register_secret
from ..music.backends.base import FORMATS
from ..options import OPTION_SPECS, ScoreOptions
from ..progress import Reporter

_F = TypeVar("_F", bound=Callable[..., Any])

log = logging.getLogger("autoscore")

_state = {"debug": False}



# -- presentation ---------------------------------------------------------------------


class ConsoleReporter(Reporter):
    """Progress for a person: rich bars on a terminal, plain lines elsewhere, nothing with -q."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None
        self._states: dict[int, str] = {}
        self._total = 0
        self._waiting = ""
        self._said_waiting = -1e9

    def _echo(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def stage(self, name: str) -> None:
        if name != "generate":
            self._stop_bar()
        if self.verbose or (not self.tty and name in ("generate", "mix")):
            self._echo(f"[{name}]")

    def chunk(self, index: int, total: int, state: str) -> None:
        self._states[index] = state
        self._total = total
        self._draw(state, index)

    def throttled(self, throttle: Any) -> None:
        """Say when the account's limit holds requests back; plain lines at most every 10 s."""
        if throttle.wait > 0:
            why = f"waiting {throttle.wait:.0f} s on the WaveSpeed account's rate limit"
        else:
            why = f"waiting for one of {throttle.running} running tasks (the account's limit)"
        self._waiting = f"{why}, {throttle.queued} queued"
        if self.quiet:
            return
        if self.tty:
            self._draw("waiting", None)
        elif time.monotonic() - self._said_waiting > 10.0:
            self._said_waiting = time.monotonic()
            self._echo(self._waiting[0].upper() + self._waiting[1:])

    def _draw(self, state: str, index: int | None) -> None:
        total = self._total
        done = sum(1 for s in self._states.values() if s in ("done", "cached"))
        busy = sum(1 for s in self._states.values() if s == "generating")
        if state == "generating" or state in ("done", "cached"):
            self._waiting = ""
        if self.quiet:
            return
        if self.tty:
            if self._progress is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self._progress = Progress(
                    TextColumn("music"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.description}"),
                    TimeElapsedColumn(),
                    transient=True,
                    console=_stderr_console(),
                )
                self._progress.start()
                self._task = self._progress.add_task("", total=total)
            queued = total - done - busy
            text = self._waiting or f"{busy} generating, {queued} queued"
            self._progress.update(self._task, completed=done, description=text)
            if done == total:
                self._stop_bar()
        elif index is not None and (state in ("done", "cached", "failed") or self.verbose):
            self._echo(f"chunk {index + 1}/{total}: {state}")

    def warn(self, message: str) -> None:
        self._stop_bar()
        click.echo(f"Warning: {message}", err=True)

    def plan(self, plan: Any) -> None:
        from ..music.plan import cost_summary

        self._echo(cost_summary(plan))

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class BatchConsole:
    """Progress of a batch: one bar over files on a terminal, one line per file elsewhere.

    Called from worker threads; the lock keeps lines whole.
    """

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if self.quiet or not self.tty:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("files"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_stderr_console(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=total)

    def done(self, outcome: Any) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.advance(self._task)
            if self.quiet or (outcome.status == "skipped" and not self.verbose):
                return
            line = f"{outcome.status}: {outcome.input}"
            if outcome.status == "failed":
                line += f": {outcome.message}"
            self._line(line)

    def warn(self, name: str, message: str) -> None:
        with self._lock:
            self._line(f"Warning: {name}: {message}")

    def _line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            click.echo(text, err=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _setup_logging(verbose: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("autoscore").setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _api_key(option: str | None) -> str | None:
    key = option or os.environ.get("WAVESPEED_API_KEY") or None
    register_secret(key)
    return key


def _money(x: float) -> str:
    return f"${x:.4f}"


# -- the group ------------------------------------------------------------------------


def _apply_verbosity(ctx: click.Context) -> None:
    obj = ctx.find_root().ensure_object(dict)
    debug, verbose, quiet = obj.get("debug", False), obj.get("verbose", False), obj.get("quiet", False)
    _state["debug"] = debug
    _setup_logging(verbose, debug)
    obj["verbose"], obj["quiet"] = verbose or debug, quiet
    ctx.obj = obj


def _flag_callback(name: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_root().ensure_object(dict)[name] = True
            _apply_verbosity(ctx)

    return callback


def _verbosity(f: Any) -> Any:
    """--debug, -v and -q, accepted before or after the command name."""
    for name, decls, text in reversed(
        [
            ("debug", ("--debug",), "Show tracebacks and every ffmpeg command."),
            ("verbose", ("-v", "--verbose"), "Say more about each stage."),
            ("quiet", ("-q", "--quiet"), "Print only errors and the result."),
        ]
    ):
        f = click.option(
            *decls, is_flag=True, expose_value=False, is_eager=True, help=text, callback=_flag_callback(name)
        )(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="autoscore")
@_verbosity
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Score videos and podcasts with music that fits, mixed under the voice."""
    _apply_verbosity(ctx)


def _spec_option(name: str, *decls: str, **extra: Any) -> Callable[[_F], _F]:
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


def _preset_option(param: str, dotted: str, help: str) -> Callable[[_F], _F]:
    """A click option laid over a preset setting, with that setting's range from ``PRESET_FIELDS``."""
    from ..text.presets import PRESET_FIELDS

    spec = PRESET_FIELDS[dotted]
    kind: Any = click.Choice(spec.choices) if spec.kind == "choice" else click.FloatRange(spec.low, spec.high)
    return click.option("--" + param.replace("_", "-"), param, type=kind, help=help)


# Options shared by score, plan and batch, declared once.
def _job_options(f: Any) -> Any:
    decorators = [
        click.option(
            "--preset", "-p", metavar="NAME|FILE", help="Style preset (see 'autoscore presets list')."
        ),
        click.option(
            "--notes",
            "-n",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Scene notes: timestamped text, SRT, WebVTT or JSON.",
        ),
        _spec_option("backend", "--backend", "-b", default="auto", show_default=True),
        click.option("--prompt", help="Replace the preset's style prompt."),
        click.option("--negative", help="Add to the preset's negative prompt."),
        _spec_option("join", default="crossfade", show_default=True),
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


_OVERRIDES: tuple[tuple[str, str, str], ...] = (
    ("duck_db", "mix.duck_depth_db", "How far music dips under speech (dB)."),
    ("duck_on", "mix.duck_on", "Duck under speech or any loud sound."),
    ("music_level", "mix.music_level_db", "Music level relative to the dialogue (LU)."),
    ("loudness", "mix.target_lufs", "Target loudness of the mix (LUFS)."),
    ("crossfade", "mix.crossfade", "Overlap between generated chunks (s)."),
)
"""CLI options laid over a preset: (parameter, preset setting, help)."""


def _mix_overrides(f: Any) -> Any:
    for param, dotted, help in reversed(_OVERRIDES):
        f = _preset_option(param, dotted, help)(f)
    return f


def _resolved_preset(ctx: click.Context, name: str | None) -> Any:
    """The preset with the options the user actually typed laid over it."""
    from ..text.presets import load_preset, override

    preset = load_preset(name)
    changes = {
        key: ctx.params[param]
        for param, key, _help in _OVERRIDES
        if ctx.params.get(param) is not None
        and ctx.get_parameter_source(param) is not click.core.ParameterSource.DEFAULT
    }
    return override(preset, changes) if changes else preset


def _run_options(f: Any) -> Any:
    """Options of any run that makes music: shared by ``score``, ``bed`` and ``batch``."""
    decorators: list[Callable[[Any], Any]] = [
        _spec_option("format", "-f", "--format", "fmt"),
        _job_options,
        _mix_overrides,
        _spec_option("max_cost"),
        _spec_option("fallback"),
        _spec_option("concurrency"),
        _spec_option("timeout"),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where generated music is kept.",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the music cache."),
        click.option("--music-track", is_flag=True, help="Add the ducked music as a second audio track."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _score_options(f: Any) -> Any:
    """Options of a scoring run that writes one file: shared by ``score`` and ``bed``."""
    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "-o",
            "--output",
            type=click.Path(path_type=Path),
            help="Default: INPUT_STEM.scored.EXT beside it.",
        ),
        _run_options,
        click.option("--dry-run", is_flag=True, help="Print the plan and its cost; generate nothing."),
        click.option(
            "--stems", type=click.Path(file_okay=False, path_type=Path), help="Also write WAV stems here."
        ),
        click.option(
            "--report", type=click.Path(dir_okay=False, path_type=Path), help="Draw the mix to this PNG."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _options(ctx: click.Context, params: dict[str, Any], preset: Any = None) -> ScoreOptions:
    """The ``ScoreOptions`` a command's parsed parameters stand for (absent ones keep defaults)."""
    names = {f.name for f in fields(ScoreOptions)}
    given = {name: params[name] for name in names & params.keys()}
    if "fmt" in params:
        given["format"] = params["fmt"]
    if "no_cache" in params:
        given["use_cache"] = not params["no_cache"]
    if "api_key" in params:
        given["api_key"] = _api_key(params["api_key"])
    given["preset"] = preset if preset is not None else _resolved_preset(ctx, params.get("preset"))
    return ScoreOptions(**given)


def _run_score(ctx: click.Context, input: Path, preset: Any, opts: dict[str, Any]) -> None:
    from ..pipeline import score as run_score

    as_json = opts["as_json"]
    reporter = ConsoleReporter(quiet=ctx.obj["quiet"] or as_json, verbose=ctx.obj["verbose"])
    result = run_score(input, opts["output"], _options(ctx, opts, preset), reporter=reporter)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.dry_run:
        from ..music.plan import format_plan

        click.echo(format_plan(result.plan))
        return
    _print_result(result)


@cli.command()
@_verbosity
@click.argument("input", type=click.Path(path_type=Path))
@_score_options
@click.pass_context
def score(ctx: click.Context, /, input: Path, **opts: Any) -> None:
    """Score INPUT (video or audio) and write the scored file."""
    _run_score(ctx, input, _resolved_preset(ctx, opts["preset"]), opts)


@cli.command()
@_verbosity
@click.argument("episode", type=click.Path(path_type=Path))
@click.option(
    "--intro",
    type=click.FloatRange(0, 600),
    default=15.0,
    show_default=True,
    help="Seconds of intro bed: music alone, then ducking under the voice, then a fade.",
)
@click.option(
    "--outro",
    type=click.FloatRange(0, 600),
    default=0.0,
    show_default=True,
    help="Seconds of outro bed, rising under the last words and ending with the episode.",
)
@_score_options
@click.pass_context
def bed(ctx: click.Context, /, episode: Path, intro: float, outro: float, **opts: Any) -> None:
    """Lay an intro (and outro) music bed under a podcast EPISODE; silence in between.

    The style comes from --preset (default: podcast-intro); --intro and --outro set the
    bed lengths.
    """
    from ..text.presets import override

    if intro <= 0 and outro <= 0:
        raise OptionError("Both beds are 0 s long: give --intro or --outro a length above 0.")
    base = _resolved_preset(ctx, opts["preset"] or "podcast-intro")
    preset = override(base, {"structure.mode": "beds", "structure.intro": intro, "structure.outro": outro})
    _run_score(ctx, episode, preset, opts)


def _print_result(result: Any) -> None:
    why = "" if result.backend != "procedural" or result.fallback_used else " (embedded composer)"
    click.echo(f"Backend: {result.backend}{why}")
    click.echo(
        f"Wrote {result.output} ({result.duration:.1f} s, {len(result.sections)} section(s), "
        f"{result.requests} request(s), {result.cache_hits} from cache, cost {_money(result.cost)}) "
        f"in {result.timings.get('total', 0):.1f} s"
    )
    if result.mix is not None and result.mix.integrated_lufs is not None:
        click.echo(
            f"Loudness {result.mix.integrated_lufs:.1f} LUFS, true peak {result.mix.true_peak_dbtp:.1f} dBTP"
        )
    if result.stems:
        click.echo(f"Stems in {result.stems}")
    if result.report:
        click.echo(f"Report {result.report}")


@cli.command()
@_verbosity
@click.argument("input", type=click.Path(path_type=Path))
@_job_options
@_mix_overrides
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx: click.Context, /, input: Path, as_json: bool, **opts: Any) -> None:
    """Show sections, prompts, chunk requests and cost for INPUT, without generating."""
    from ..music.plan import format_plan, plan_to_dict
    from ..pipeline import plan_job

    job = plan_job(input, _options(ctx, opts))
    for w in job.warnings:
        click.echo(f"Warning: {w}", err=True)
    if as_json:
        data = plan_to_dict(job.plan)
        data["notes"] = job.notes_source
        data["preset"] = job.preset.name
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{job.info.path.name}: {job.info.duration:.2f} s, preset {job.preset.name}, "
        f"backend {job.backend_name}" + (f", notes {job.notes_source}" if job.notes_source else "")
    )
    click.echo("Sections:")
    for s in job.sections:
        click.echo(f"  {s.start:7.2f}-{s.end:7.2f}  {s.arc:<8} {s.prompt}")
    click.echo(format_plan(job.plan))


@cli.command()
@_verbosity
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the scored files (default: beside each input).",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 16), default=2, show_default=True, help="Files scored at once."
)
@_run_options
@click.option("--force", is_flag=True, help="Score again even where a finished output exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome of every file as JSON.")
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    inputs: tuple[str, ...],
    out_dir: Path | None,
    jobs: int,
    force: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Score every INPUT (files, folders, glob patterns) into --out, several at once.

    Notes beside each input (clip.notes.txt for clip.mp4) are used; --notes gives one
    notes file to every input. Files whose output exists and is newer than the input
    and its notes are skipped, so a rerun finishes what a failed or stopped run left.
    Exits 1 if any file failed, after scoring all the others.
    """
    from ..batch import run_batch

    console = BatchConsole(quiet=ctx.obj["quiet"] or as_json, verbose=ctx.obj["verbose"])
    try:
        result = run_batch(
            inputs,
            out_dir,
            _options(ctx, opts),
            jobs=jobs,
            force=force,
            on_start=console.start,
            on_done=console.done,
            on_warning=console.warn,
        )
    finally:
        console.stop()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_batch(result)
    failed = result.count("failed")
    if failed:
        names = ", ".join(o.input.name for o in result.outcomes if o.status == "failed")
        raise AutoscoreError(
            f"{failed} of {len(result.outcomes)} file(s) failed ({names}); "
            "fix them and run the same command again: finished files are skipped."
        )


def _print_batch(result: Any) -> None:
    from ..batch import format_summary

    if not sys.stdout.isatty():
        click.echo(format_summary(result))
        return
    from rich.console import Console
    from rich.table import Table

    style = {"ok": "green", "skipped": "dim", "failed": "bold red"}
    table = Table(title=f"{len(result.outcomes)} file(s) in {result.seconds:.1f} s")
    for name in ("status", "input", "output", "time", "note"):
        table.add_column(name, justify="right" if name == "time" else "left", overflow="fold")
    for o in result.outcomes:
        table.add_row(
            f"[{style[o.status]}]{o.status}[/]",
            str(o.input),
            str(o.output or ""),
            f"{o.seconds:.1f} s",
            o.message or "; ".join(o.warnings),
        )
    Console().print(table)
    click.echo(
        f"{result.count('ok')} scored, {result.count('skipped')} skipped, {result.count('failed')} failed"
    )


@cli.command()
@_verbosity
@click.argument("prompt")
@click.option(
    "-d",
    "--duration",
    type=click.FloatRange(min=1, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds of music (past 120 s it is made in chunks and joined).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: music.<format>."
)
@click.option(
    "-f", "--format", "fmt", type=click.Choice(FORMATS), help="Default: from the output's extension."
)
@click.option("--negative", default="", help="What to avoid.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Another seed, another piece (procedural)."
)
@click.option("--steps", type=click.IntRange(1, 100), default=8, show_default=True)
@click.option("--guidance", type=click.FloatRange(0, 25), default=1.0, show_default=True)
@_spec_option("backend", "--backend", "-b", default="auto", show_default=True)
@click.option("--api-key", help="WaveSpeed key (default: $WAVESPEED_API_KEY).")
@click.option("--api-base", envvar="WAVESPEED_BASE_URL", metavar="URL")
@click.option("--explain", is_flag=True, help="Show what the procedural composer understood, then stop.")
@_spec_option("timeout")
@click.pass_context
def generate(
    ctx: click.Context,
    prompt: str,
    duration: float,
    output: Path | None,
    fmt: str | None,
    negative: str,
    seed: int,
    steps: int,
    guidance: float,
    backend: str,
    api_key: str | None,
    api_base: str | None,
    explain: bool,
    timeout: float | None,
) -> None:
    """Generate PROMPT as a music file, no video involved."""
    if explain:
        from ..music.backends.procedural import explain as explain_prompt

        click.echo(explain_prompt(prompt, negative))
        return
    from ..music.standalone import generate_music

    output = output or Path(f"music.{fmt or 'mp3'}")
    fmt = fmt or output.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise OptionError(
            f"Cannot tell the format of {output.name}: add -f with one of {', '.join(FORMATS)}."
        )
    result = generate_music(
        prompt,
        duration,
        output,
        fmt=fmt,
        negative=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        backend=backend,
        api_key=_api_key(api_key),
        api_base=api_base,
        timeout=timeout,
    )
    click.echo(f"Backend: {result.backend}")
    click.echo(f"Wrote {output} ({duration:g} s, {result.requests} request(s), cost {_money(result.cost)})")


@cli.group()
def presets() -> None:
    """List and inspect style presets."""


@presets.command("list")
def presets_list() -> None:
    """Every preset on the search path."""
    from ..text.presets import list_presets

    for info in list_presets():
        click.echo(f"{info.name:<22} {info.description}")


@presets.command("show")
@click.argument("name")
def presets_show(name: str) -> None:
    """The resolved preset NAME (inheritance applied), as TOML."""
    from ..text.presets import load_preset, preset_to_toml

    click.echo(preset_to_toml(load_preset(name)), nl=False)


def _emulator_tiers() -> list[str]:
    from ..emulator.contract import TIERS

    return sorted(TIERS)


@cli.command()
@_verbosity
@click.option("--port", type=click.IntRange(0, 65535), default=8777, show_default=True)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds a task spends generating.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of tasks that end as failed.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--api-key", help="Accept only this key (default: any non-empty key).")
@click.option("--tier", type=click.Choice(_emulator_tiers()),
              help="Emulate an account level's limits (bronze: 2 running, 2 a minute).")
@click.option("--max-running", type=click.IntRange(min=1),
              help="Most tasks running at once; more are refused 429 (overrides --tier).")
@click.option("--per-minute", type=click.IntRange(min=1),
              help="Most tasks started per --window; more are refused 429 (overrides --tier).")
@click.option("--window", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Seconds of the --per-minute window.")
@click.option("--sync-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds a sync-mode request may wait before the gateway answers 504 (default: no limit).")
@click.option("--ttl", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              help="Seconds finished tasks and uploads are kept before they are forgotten.")
def emulator(port: int, latency: float, fail_rate: float, seed: int, api_key: str | None, tier: str | None,
             max_running: int | None, per_minute: int | None, window: float, sync_timeout: float | None,
             ttl: float) -> None:
    """Serve a local emulator of the WaveSpeed API on 127.0.0.1."""
    from ..emulator import serve

    register_secret(api_key)
    serve(port=port, latency=latency, fail_rate=fail_rate, seed=seed, api_key=api_key, tier=tier,
          max_running=max_running, per_minute=per_minute, window=window, sync_timeout=sync_timeout, ttl=ttl)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and map every failure to one line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="autoscore", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AutoscoreError as exc:
        if _state["debug"]:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        click.echo(f"Error: internal error: {redact(repr(exc))}; run again with --debug and report it.",
                   err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()

__all__ = ["cli", "main"]
