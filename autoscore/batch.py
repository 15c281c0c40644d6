"""``autoscore batch``: score many files at once, and pick up where a previous run stopped.

Each file is one ``score()`` call in a thread of a small pool: while one file waits on
the generator, another renders, and ``jobs`` bounds how many run at all. A file that
fails is recorded and the rest carry on, because the person running a batch over a
folder wants the 199 good files, not a stop at the first bad one. A finished output is
only ever renamed into place whole, so "the output exists and is newer than the input
(and its notes)" is enough to skip it on the next run; ``force`` redoes everything.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import AutoscoreError, OptionError, OutputPathError, redact
from .guides import NOTES_SUFFIXES
from .media import remote
from .media.files import scratch_folder
from .media.remote import RemoteFile
from .media.render import VIDEO_CONTAINERS
from .music.backends.base import FORMATS
from .options import ScoreOptions
from .pipeline import ScoreResult, find_notes_beside, score
from .progress import Reporter

log = logging.getLogger(__name__)

__all__ = [
    "MEDIA_SUFFIXES",
    "BatchResult",
    "Collect",
    "FileOutcome",
    "expand_inputs",
    "format_summary",
    "output_for",
    "run_batch",
    "score_one",
]

MEDIA_SUFFIXES = frozenset(
    {*VIDEO_CONTAINERS, *FORMATS, "avi", "mpg", "mpeg", "ts", "mts", "wma", "aiff", "aif"}
)
"""What a folder or glob contributes; anything else there (notes, images, outputs) is ignored."""
SCORED_MARK = ".scored"
"""Outputs are ``<stem>.scored.<ext>``: a rerun over the same folder never scores its own outputs."""

OK, SKIPPED, FAILED = "ok", "skipped", "failed"

Location = Path | RemoteFile
"""A local path, or a file behind an fsspec URL (staged through a local copy, ``media.remote``)."""


@dataclass
class FileOutcome:
    """What happened to one input."""

    input: Location
    output: Location | None
    status: str
    """ok, skipped or failed."""
    message: str = ""
    seconds: float = 0.0
    exit_code: int = 0
    """For a failure, the exit code ``autoscore score`` would have given it."""
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """For a scored file: backend, notes, requests, cache hits, cost."""
    worker: str | None = None
    """On a cluster, the address of the worker that scored (or failed) the file."""

    def to_dict(self) -> dict[str, Any]:
        found = {
            "input": str(self.input),
            "output": str(self.output) if self.output else None,
            "status": self.status,
            "message": self.message,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
            **self.details,
        }
        if self.worker is not None:
            found["worker"] = self.worker
        return found


@dataclass
class BatchResult:
    outcomes: list[FileOutcome]
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def exit_code(self) -> int:
        """1 when any file failed, whatever the kind of failure: the batch as a whole did not finish."""
        return 1 if self.count(FAILED) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.count(OK),
            "skipped": self.count(SKIPPED),
            "failed": self.count(FAILED),
            "seconds": round(self.seconds, 3),
            "files": [o.to_dict() for o in self.outcomes],
        }


def expand_inputs(inputs: Iterable[str | Path]) -> tuple[list[Location], list[FileOutcome]]:
    """Files, folders (their media files, not recursive) and globs, in order, each once;
    local, or behind fsspec URLs.

    Returns the inputs and, for each argument that named nothing, a failed outcome: a typo
    in one argument should not cost the user the rest of the batch.
    """
    found: list[Location] = []
    missing: list[FileOutcome] = []
    for arg in inputs:
        text = str(arg)
        if remote.is_url(text):
            try:
                named = remote.expand(text, lambda name: _is_media(Path(name)))
            except AutoscoreError:
                raise  # no fsspec, or no driver for the protocol: a usage error for the whole batch
            except Exception as exc:  # the store's own trouble: credentials, the network
                missing.append(_failed(RemoteFile(text), f"{text} cannot be listed "
                                       f"({remote.first_line(exc)}): check the URL and its credentials.", 1))
                continue
            if not named:
                missing.append(_failed(RemoteFile(text), f"Nothing to score at {text}: check the URL."))
            found.extend(named)
            continue
        path = Path(text.removeprefix("file://"))
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and _is_media(p)))
        elif path.is_file():
            found.append(path)  # named explicitly: scored whatever its extension
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            media = [m for m in matches if m.is_file() and _is_media(m)]
            if not media:
                missing.append(_failed(path, f"No media files match {text}: check the pattern."))
            found.extend(media)
        else:
            missing.append(_failed(path, f"Input {text} does not exist: check the path."))
    unique: dict[object, Location] = {}
    for p in found:
        unique.setdefault(p.resolve() if isinstance(p, Path) else p.identity, p)
    return list(unique.values()), missing


def _is_media(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in MEDIA_SUFFIXES and SCORED_MARK not in path.suffixes


def _failed(path: Location, message: str, code: int = 2) -> FileOutcome:
    return FileOutcome(path, None, FAILED, message, exit_code=code)


def output_for(input: Location, out_dir: Location | None, format: str | None = None) -> Location:
    """``<out_dir>/<stem>.scored.<ext>``, beside the input when ``out_dir`` is None.

    Decided from the name alone, so skipping a finished file costs no probe. An audio file
    asked to become a video fails in ``score`` with a message saying so.
    """
    ext = (format or input.suffix.lstrip(".") or "mp4").lower()
    name = f"{input.stem}{SCORED_MARK}.{ext}"
    if out_dir is None:
        return input.sibling(name) if isinstance(input, RemoteFile) else input.parent / name
    return out_dir.child(name) if isinstance(out_dir, RemoteFile) else out_dir / name


def is_finished(input: Path, output: Path, notes: Path | None = None) -> bool:
    """True when ``output`` exists and is newer than the input and the notes that shaped it."""
    if not output.is_file():
        return False
    sources = [input, notes if notes is not None else find_notes_beside(input)]
    newest = max(p.stat().st_mtime for p in sources if p is not None and p.exists())
    return output.stat().st_mtime >= newest


class Collect(Reporter):
    """Per-file reporter: keeps warnings for the summary instead of interleaving threads' output.

    ``on_chunk(name, index, state)`` follows the file's requests, for a progress display
    that counts what is in flight across files.
    """

    def __init__(self, name: str, on_warning: Callable[[str, str], None] | None,
                 on_chunk: Callable[[str, int, str], None] | None = None) -> None:
        self.name = name
        self.warnings: list[str] = []
        self.on_warning = on_warning
        self.on_chunk = on_chunk

    def stage(self, name: str) -> None:
        log.debug("%s: %s", self.name, name)

    def chunk(self, index: int, total: int, state: str) -> None:
        log.debug("%s: chunk %d/%d %s", self.name, index + 1, total, state)
        if self.on_chunk is not None:
            self.on_chunk(self.name, index, state)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(self.name, message)


def run_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path | None = None,
    options: ScoreOptions | None = None,
    *,
    jobs: int = 2,
    force: bool = False,
    cluster: Any = None,
    retries: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[FileOutcome], None] | None = None,
    on_warning: Callable[[str, str], None] | None = None,
    on_cluster: Callable[[Any], None] | None = None,
    **changes: Any,
) -> BatchResult:
    """Score every input into ``out_dir``; never raises for one file's failure.

    ``options`` and keyword ``changes`` to it are one ``ScoreOptions`` for every file;
    notes are found beside each input unless ``options.notes`` names one file for all.
    ``on_start(total)`` and ``on_done(outcome)`` drive a progress display; ``on_done`` runs
    in worker threads, one call at a time per file.

    ``cluster`` sends the files to Dask instead of this process's threads: a scheduler
    address, ``"local:N"``, or a ``distributed.Client`` (see ``autoscore.cluster``). Each
    worker's threads then set how many files run at once (``jobs`` is not used), a file
    whose worker dies is run again elsewhere up to ``retries`` times, and ``on_cluster``
    receives a ``ClusterStatus`` whenever files or requests start or end.
    Raises ``OptionError`` only for a batch that cannot start at all, ``ClusterError`` for
    a cluster that cannot be reached or cannot run autoscore.
    """
    opts = ScoreOptions.of(options, **changes)
    t0 = time.perf_counter()
    if not 1 <= jobs <= 16:
        raise OptionError(f"--jobs {jobs} is out of range: use 1 to 16.")
    if not 0 <= retries <= 10:
        raise OptionError(f"--retries {retries} is out of range: use 0 to 10.")
    for per_file in ("stems", "report", "dry_run"):
        if getattr(opts, per_file) not in (None, False):
            raise OptionError(f"run_batch does not take {per_file!r}: outputs are named per file.")
    if opts.notes is not None and not isinstance(opts.notes, str | Path):
        raise OptionError("run_batch takes notes as one notes file for every input, or none.")
    if cluster is not None:
        from .cluster import check_cluster_option

        check_cluster_option(cluster)
    timeline = None
    if opts.timeline is not None:  # a format here: each output gets its own timeline beside it
        from .timeline import timeline_suffix

        timeline = timeline_suffix(opts.timeline)
    folder = remote.as_location(out_dir) if out_dir is not None else None
    if folder is not None:
        _make_folder(folder)
    files, outcomes = expand_inputs(inputs)
    if not files and not outcomes:
        raise OptionError("No inputs given: name files, folders or glob patterns.")
    _check_names_apart(files, folder, opts.format)

    def task(path: Location) -> tuple[Location, Location, ScoreOptions]:
        output = output_for(path, folder, opts.format)
        if timeline is None:
            return path, output, opts
        if isinstance(output, RemoteFile):
            raise OptionError(f"--timeline writes beside each output, and {output.url} is a URL: score "
                              "into a folder to get timelines.")
        return path, output, replace(opts, timeline=output.with_suffix(timeline))

    tasks = [task(path) for path in files]
    if cluster is not None:
        from .cluster import score_on_cluster

        scored = score_on_cluster(tasks, cluster, force=force, retries=retries, outcomes=outcomes,
                                  on_start=on_start, on_done=on_done, on_warning=on_warning,
                                  on_status=on_cluster)
        return BatchResult([*outcomes, *scored], time.perf_counter() - t0)
    if on_start is not None:
        on_start(len(files) + len(outcomes))
    for o in outcomes:
        if on_done is not None:
            on_done(o)

    def one(path: Location, output: Location, each: ScoreOptions) -> FileOutcome:
        outcome = score_one(path, output, each, force=force, on_warning=on_warning)
        if on_done is not None:
            on_done(outcome)
        return outcome

    done: dict[Location, FileOutcome] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="autoscore-batch") as pool:
        futures = {pool.submit(one, *t): t[0] for t in tasks}
        try:
            for future in as_completed(futures):
                done[futures[future]] = future.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    ordered = [*outcomes, *(done[p] for p in files)]
    return BatchResult(ordered, time.perf_counter() - t0)


def _make_folder(folder: Location) -> None:
    if isinstance(folder, RemoteFile):
        remote.make_folder(folder)
        return
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"--out {folder} is a file, not a folder: name a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"Cannot create the output folder {folder} ({exc.strerror}): choose another."
        ) from exc


def _check_names_apart(files: Sequence[Location], folder: Location | None, format: str | None) -> None:
    """Two inputs must not write one output (``a/clip.mp4`` and ``b/clip.mp4`` into one folder)."""
    seen: dict[object, Location] = {}
    for path in files:
        named = output_for(path, folder, format)
        out = named.resolve() if isinstance(named, Path) else named.identity
        if out in seen:
            raise OptionError(
                f"{seen[out]} and {path} would both be written to {named}: score them into "
                "separate --out folders."
            )
        seen[out] = path


def already_scored(path: Location, output: Location, opts: ScoreOptions) -> bool:
    """A finished output (and timeline, when one is asked for) newer than the input and notes."""
    notes_path = Path(opts.notes) if isinstance(opts.notes, str | Path) else None
    if isinstance(path, RemoteFile) or isinstance(output, RemoteFile):
        if isinstance(output, RemoteFile):
            return remote.finished(path, output, notes_path or _remote_notes(path))
        return is_finished(Path(output), output, notes_path)  # remote input, local output: the output's age
    timeline = Path(opts.timeline) if opts.timeline is not None else None
    return is_finished(path, output, notes_path) and (timeline is None or timeline.is_file())


def _remote_notes(input: Location) -> RemoteFile | None:
    """The notes file beside a remote input (``clip.notes.txt`` for ``clip.mp4``), if the store has one."""
    if not isinstance(input, RemoteFile):
        return None
    for suffix in NOTES_SUFFIXES:
        candidate = input.sibling(input.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _score_staged(path: Location, output: Location, opts: ScoreOptions, reporter: Collect) -> ScoreResult:
    """``score`` for a remote input or output: through local copies in a scratch folder."""
    with scratch_folder("autoscore-stage-") as stage:
        local_in = path
        if isinstance(path, RemoteFile):
            local_in = remote.fetch(path, stage)
            notes = _remote_notes(path) if opts.notes is None else None
            if notes is not None:
                remote.fetch(notes, stage)  # beside the staged input, where score finds it
        local_out = stage / "out" / output.name if isinstance(output, RemoteFile) else output
        local_out.parent.mkdir(exist_ok=True)
        assert isinstance(local_in, Path)
        result = score(local_in, local_out, opts, reporter=reporter)
        if isinstance(output, RemoteFile):
            remote.publish(local_out, output)
        return result


def score_one(path: Location, output: Location, opts: ScoreOptions, *, force: bool,
              on_warning: Callable[[str, str], None] | None = None,
              reporter: Collect | None = None) -> FileOutcome:
    """One file of a batch, whatever runs it (a thread here, a cluster worker): never raises
    for the file's own failure."""
    t0 = time.perf_counter()
    if not force and already_scored(path, output, opts):
        return FileOutcome(path, output, SKIPPED, "already scored", time.perf_counter() - t0)
    reporter = reporter or Collect(path.name, on_warning)
    try:
        if isinstance(path, RemoteFile) or isinstance(output, RemoteFile):
            result = _score_staged(path, output, opts, reporter)
        else:
            result = score(path, output, opts, reporter=reporter)
    except AutoscoreError as exc:
        return FileOutcome(path, None, FAILED, str(exc), time.perf_counter() - t0, exc.exit_code,
                           list(reporter.warnings))
    except Exception as exc:  # a bug in one file's run must not lose the others
        log.debug("internal error on %s", path, exc_info=True)
        message = f"internal error: {redact(repr(exc))}; rerun this file with --debug."
        return FileOutcome(path, None, FAILED, message, time.perf_counter() - t0, 1, list(reporter.warnings))
    details = {
        "backend": result.backend,
        "notes": result.notes_source,
        "requests": result.requests,
        "cache_hits": result.cache_hits,
        "resumed": result.resumed,
        "cost": round(result.cost, 4),
        "duration": result.duration,
    }
    return FileOutcome(path, output, OK, "", time.perf_counter() - t0, 0, list(result.warnings), details)


def format_summary(result: BatchResult) -> str:
    """The summary as plain text, one line a file: for logs and pipes."""
    lines = []
    for o in result.outcomes:
        where = f" -> {o.output}" if o.output is not None and o.status == OK else ""
        why = f": {o.message}" if o.message and o.status != OK else ""
        by = f" on {o.worker}" if o.worker else ""
        lines.append(f"{o.status:<8} {o.input}{where} ({o.seconds:.1f} s{by}){why}")
    lines.append(
        f"{result.count(OK)} scored, {result.count(SKIPPED)} skipped, {result.count(FAILED)} failed "
        f"in {result.seconds:.1f} s"
    )
    return "\n".join(lines)
