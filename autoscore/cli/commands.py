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
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .. import __version__
from ..errors import AutoscoreError, OptionError, redact, register_secret
from ..music.backends.base import FORMATS
from .console import ConsoleReporter, money, print_result

if TYPE_CHECKING:
    from ..pipeline import FileJob
from .options import (
    api_key_from,
    job_options,
    mix_overrides,
    options_from,
    resolved_preset,
    score_options,
    spec_option,
)

log = logging.getLogger("autoscore")

_state = {"debug": False}



# -- presentation ---------------------------------------------------------------------


def _setup_logging(verbose: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("autoscore").setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Dask logs its own life (workers joining, leaving, closing) at INFO, and warns of slow event
    # loops under load; a batch's user needs its errors, the rest with -v or --debug. Dask sets
    # its loggers' levels from its config when it is imported (late, and in every worker
    # process), so the level goes into that config's environment variable.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if debug else "warning" if verbose else "error")


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


def _run_score(ctx: click.Context, input: Path, preset: Any, opts: dict[str, Any]) -> None:
    from ..pipeline import score as run_score

    as_json = opts["as_json"]
    reporter = ConsoleReporter(quiet=ctx.obj["quiet"] or as_json, verbose=ctx.obj["verbose"])
    result = run_score(input, opts["output"], options_from(ctx, opts, preset), reporter=reporter)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.dry_run:
        from ..music.plan import format_plan

        click.echo(format_plan(result.plan))
        return
    print_result(result)


@cli.command()
@_verbosity
@click.argument("input", type=click.Path(path_type=Path))
@score_options
@click.pass_context
def score(ctx: click.Context, /, input: Path, **opts: Any) -> None:
    """Score INPUT (video or audio) and write the scored file."""
    _run_score(ctx, input, resolved_preset(ctx, opts["preset"]), opts)


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
@score_options
@click.pass_context
def bed(ctx: click.Context, /, episode: Path, intro: float, outro: float, **opts: Any) -> None:
    """Lay an intro (and outro) music bed under a podcast EPISODE; silence in between.

    The style comes from --preset (default: podcast-intro); --intro and --outro set the
    bed lengths.
    """
    from ..text.presets import override

    if intro <= 0 and outro <= 0:
        raise OptionError("Both beds are 0 s long: give --intro or --outro a length above 0.")
    base = resolved_preset(ctx, opts["preset"] or "podcast-intro")
    preset = override(base, {"structure.mode": "beds", "structure.intro": intro, "structure.outro": outro})
    _run_score(ctx, episode, preset, opts)


@cli.command()
@_verbosity
@click.argument("input", type=click.Path(path_type=Path))
@job_options
@mix_overrides
@spec_option("max_cost", help="Plan as a run with this --max-cost would (it guides --sections auto).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--notes-out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="Also write the sections as a notes file (edit it, then pass it back with --notes).",
)
@click.pass_context
def plan(ctx: click.Context, /, input: Path, as_json: bool, notes_out: Path | None, **opts: Any) -> None:
    """Show sections, prompts, chunk requests and cost for INPUT, without generating."""
    from ..music.plan import format_plan, plan_to_dict
    from ..pipeline import check_cost, plan_job

    options = options_from(ctx, opts)
    job = plan_job(input, options)
    check_cost(job.plan, options.max_cost)
    for w in job.warnings:
        click.echo(f"Warning: {w}", err=True)
    if notes_out is not None:
        _write_notes(notes_out, job)
    if as_json:
        data = plan_to_dict(job.plan)
        data["notes"] = job.notes_source
        data["preset"] = job.preset.name
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{job.info.path.name}: {job.info.duration:.2f} s, preset {job.preset.name}, "
        f"backend {job.backend_name}" + _sections_from(job.notes_source)
    )
    click.echo("Sections:")
    for s in job.sections:
        click.echo(f"  {s.start:7.2f}-{s.end:7.2f}  {s.arc:<8} {s.prompt}")
    click.echo(format_plan(job.plan))


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
@spec_option("backend", "--backend", "-b", default="auto", show_default=True)
@click.option("--api-key", help="WaveSpeed key (default: $WAVESPEED_API_KEY).")
@click.option("--api-base", envvar="WAVESPEED_BASE_URL", metavar="URL")
@click.option(
    "--explain", is_flag=True, help="Show what the procedural composer understood and its form, then stop."
)
@spec_option("fallback")
@spec_option("max_cost")
@spec_option("timeout")
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
    fallback: str | None,
    max_cost: float | None,
    timeout: float | None,
) -> None:
    """Generate PROMPT as a music file, no video involved (the same generation path as score)."""
    if explain:
        from ..music.backends.procedural import explain as explain_prompt

        click.echo(explain_prompt(prompt, negative, guidance, duration=duration, seed=seed))
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
        reporter=ConsoleReporter(quiet=ctx.obj["quiet"], verbose=ctx.obj["verbose"]),
        api_key=api_key_from(api_key),
        api_base=api_base,
        fallback=fallback,
        max_cost=max_cost,
        timeout=timeout,
    )
    click.echo(f"Backend: {result.backend}")
    click.echo(f"Wrote {output} ({duration:g} s, {result.requests} request(s), cost {money(result.cost)})")


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


def _write_notes(path: Path, job: FileJob) -> None:
    """The job's sections as an ordinary notes file, whole or not at all."""
    from ..media.files import write_atomically
    from ..text.shots import notes_file_text, notes_of_sections

    origin = job.notes_source or "the preset"
    header = (f"Sections of {job.info.path.name} (from {origin}), written by autoscore plan --notes-out.\n"
              "Edit the words, times and [energy: ...], then pass this file back with --notes.")
    write_atomically(path, notes_file_text(notes_of_sections(job.sections), header).encode("utf-8"))


def _sections_from(source: str) -> str:
    """Where the plan's sections came from, for its header line."""
    if source == "cuts":
        return ", sections from the picture's cuts"
    return f", notes {source}" if source else ""


class Terminated(KeyboardInterrupt):
    """SIGTERM, as containers, Dask's nanny and process managers stop a program.

    Raised in the main thread like Ctrl-C's KeyboardInterrupt, so the same ``finally``
    blocks and context managers run: no ``.part`` output, no scratch folder left behind.
    """


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _stopped() -> NoReturn:
    click.echo("Stopped (SIGTERM); nothing half-written was left behind.", err=True)
    sys.exit(143)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and map every failure to one line and an exit code."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        code = cli.main(args=argv, prog_name="autoscore", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt (and so SIGTERM) into Abort
        if isinstance(exc.__cause__, Terminated):
            _stopped()
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
    except Terminated:
        _stopped()
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
