"""``autoscore batch``: many files at once, in this process's threads or on a Dask cluster."""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import AutoscoreError, OptionError
from .commands import _verbosity, cli
from .console import BatchConsole, print_batch
from .options import options_from, run_options


@cli.command()
@_verbosity
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "out_dir",
    metavar="FOLDER|URL",
    help="Folder for the scored files (default: beside each input); an fsspec URL (s3://bucket/out) "
         "uploads each output there.",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 16), default=2, show_default=True, help="Files scored at once."
)
@run_options
@click.option("--timeline", type=click.Choice(["otio", "xml", "fcpxml"]),
              help="Also write an editor's timeline beside each output, in this format "
                   "(see score --timeline).")
@click.option("--cluster", metavar="ADDRESS|local:N",
              help="Score on a Dask cluster: a scheduler's address (tcp://HOST:8786), or local:N to start N "
                   "worker processes here. Inputs, outputs and --cache-dir must be reachable from every "
                   "worker. Needs pip install 'autoscore[dask]'.")
@click.option("--retries", type=click.IntRange(0, 10), default=1, show_default=True,
              help="With --cluster: times a file that raised on its worker is tried again (a worker that "
                   "dies does not count; Dask moves its file).")
@click.option("--force", is_flag=True, help="Score again even where a finished output exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome of every file as JSON.")
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    inputs: tuple[str, ...],
    out_dir: str | None,
    jobs: int,
    cluster: str | None,
    retries: int,
    force: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Score every INPUT (files, folders, glob patterns, or fsspec URLs of them) into --out, several at once.

    Notes beside each input (clip.notes.txt for clip.mp4) are used; --notes gives one
    notes file to every input. Files whose output exists and is newer than the input
    and its notes are skipped, so a rerun finishes what a failed or stopped run left.
    Exits 1 if any file failed, after scoring all the others.

    With --cluster, each file is scored on a Dask worker (--jobs does not apply: each
    worker's threads do), the whole cluster stays under the account's --concurrency, and
    no chunk is paid for twice, even when a worker dies.
    """
    from ..batch import run_batch

    if cluster is not None and ctx.get_parameter_source("jobs") is click.core.ParameterSource.COMMANDLINE:
        raise OptionError("--jobs does not apply with --cluster: the workers' threads set how many files "
                          "run at once (dask worker --nthreads).")
    console = BatchConsole(quiet=ctx.obj["quiet"] or as_json, verbose=ctx.obj["verbose"])
    try:
        result = run_batch(
            inputs,
            out_dir,
            options_from(ctx, opts),
            jobs=jobs,
            force=force,
            cluster=cluster,
            retries=retries,
            on_start=console.start,
            on_done=console.done,
            on_warning=console.warn,
            on_cluster=console.cluster,
        )
    finally:
        console.stop()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_batch(result)
    failed = result.count("failed")
    if failed:
        names = ", ".join(o.input.name for o in result.outcomes if o.status == "failed")
        raise AutoscoreError(
            f"{failed} of {len(result.outcomes)} file(s) failed ({names}); "
            "fix them and run the same command again: finished files are skipped."
        )
