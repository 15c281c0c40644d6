"""What a person sees: progress bars on a terminal, plain lines elsewhere, and the results.

Kept apart from the commands so the pipeline's ``Reporter`` hooks can be drawn without
the commands, and the commands stay a thin layer that fills options and calls the
pipeline.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from ..progress import Reporter

__all__ = ["BatchConsole", "ConsoleReporter", "money", "print_batch", "print_result", "stderr_console"]


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
                    console=stderr_console(),
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
        self._told_cluster = False

    def start(self, total: int) -> None:
        if self.quiet or not self.tty:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("files"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=stderr_console(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=total)

    def cluster(self, status: Any) -> None:
        """A batch on Dask: the cluster once, then running, queued and requests in flight."""
        with self._lock:
            if not self._told_cluster and not self.quiet:
                self._told_cluster = True
                where = f"; dashboard {status.dashboard}" if status.dashboard else ""
                self._line(f"Cluster: {status.workers} worker(s){where}")
            if self._progress is not None:
                limit = f" (account: {status.account_limit} at once)" if status.account_limit else ""
                self._progress.update(self._task, description=(
                    f"{status.running} running, {status.queued} queued, "
                    f"{status.in_flight} request(s) in flight{limit}"
                ))

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


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def money(x: float) -> str:
    return f"${x:.4f}"



def print_result(result: Any) -> None:
    why = "" if result.backend != "procedural" or result.fallback_used else " (embedded composer)"
    click.echo(f"Backend: {result.backend}{why}")
    click.echo(
        f"Wrote {result.output} ({result.duration:.1f} s, {len(result.sections)} section(s), "
        f"{result.requests} request(s), {result.cache_hits} from cache, cost {money(result.cost)}) "
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


def print_batch(result: Any) -> None:
    from ..batch import format_summary

    if not sys.stdout.isatty():
        click.echo(format_summary(result))
        return
    from rich.console import Console
    from rich.table import Table

    style = {"ok": "green", "skipped": "dim", "failed": "bold red"}
    on_cluster = any(o.worker for o in result.outcomes)
    table = Table(title=f"{len(result.outcomes)} file(s) in {result.seconds:.1f} s")
    columns = ("status", "input", "output", *(("worker",) if on_cluster else ()), "time", "note")
    for name in columns:
        table.add_column(name, justify="right" if name == "time" else "left", overflow="fold")
    for o in result.outcomes:
        table.add_row(
            f"[{style[o.status]}]{o.status}[/]",
            str(o.input),
            str(o.output or ""),
            *((o.worker or "",) if on_cluster else ()),
            f"{o.seconds:.1f} s",
            o.message or "; ".join(o.warnings),
        )
    Console().print(table)
    click.echo(
        f"{result.count('ok')} scored, {result.count('skipped')} skipped, {result.count('failed')} failed"
    )
