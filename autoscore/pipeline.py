"""``score()``: the whole job, stage by stage, and the one thing the CLI calls.

probe -> notes and preset -> sections and prompts -> plan -> generate -> assemble ->
duck and mix -> render. Every check that can fail on the user's input runs before any
music is generated or any money spent, and every output is written under a temporary
name and renamed only when complete.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import BackendError, CostLimitError, NotesError, OptionError
from .guides import NOTES_SUFFIXES, find_notes_beside, follow_picture, picture_cuts, read_notes
from .media import render
from .media.files import scratch_folder, unwritable_reason
from .media.pcm import PcmFile, PcmWriter, decode_for_mixing
from .media.probe import probe
from .mixing.mix import MixReport, mix_audio
from .models import MIX_RATE, Chunk, MediaInfo, Note, PictureCuts, Section
from .music.assemble import DEFAULT_MAX_SHIFT, assemble_spans
from .music.backends import backend_prices, make_backend, resolve_backend_name
from .music.backends.base import Backend
from .music.cache import AudioCache
from .music.generate import ChunkStore, GenerationStats, generate_chunks
from .music.plan import Plan, cost_summary, make_plan, span_chunks
from .music.policy import over_budget
from .options import ScoreOptions
from .progress import Reporter
from .text.presets import Preset, load_preset
from .text.sections import build_sections

log = logging.getLogger(__name__)

__all__ = [
    "NOTES_SUFFIXES",
    "Composed",
    "FileJob",
    "MusicJob",
    "Reporter",
    "ScoreOptions",
    "ScoreResult",
    "check_cost",
    "compose_music",
    "find_notes_beside",
    "plan_job",
    "plan_music",
    "score",
]

HEAVY_LIMITING_DB = 6.0
"""Peak limiting beyond this is audible on speech; the user is told and offered a lower target."""

"""Notes files picked up automatically beside an input: ``clip.notes.txt`` for ``clip.mp4``."""


class _Quiet(Reporter):
    def stage(self, name: str) -> None:
        log.debug("stage: %s", name)

    def chunk(self, index: int, total: int, state: str) -> None:
        log.debug("chunk %d/%d: %s", index + 1, total, state)

    def warn(self, message: str) -> None:
        log.warning("%s", message)

    def plan(self, plan: Plan) -> None:
        log.info("%s", cost_summary(plan))


@dataclass
class ScoreResult:
    """What a job did; the CLI prints it and ``--json`` dumps it."""

    input: Path
    output: Path | None
    duration: float
    backend: str
    sections: tuple[Section, ...]
    plan: Plan
    requests: int = 0
    cache_hits: int = 0
    resumed: int = 0
    """Chunks collected from tasks an earlier, interrupted job had paid for."""
    cost: float = 0.0
    """Dollars actually spent on requests sent (cached chunks are free)."""
    dry_run: bool = False
    fallback_used: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mix: MixReport | None = None
    notes_source: str = ""
    stems: Path | None = None
    report: Path | None = None
    timeline: Path | None = None

    def to_dict(self) -> dict[str, object]:
        from .music.plan import plan_to_dict

        mix = None
        if self.mix is not None:
            m = self.mix
            mix = {
                "dialogue_lufs": m.dialogue_lufs,
                "music_lufs": m.music_lufs,
                "music_gain_db": m.music_gain_db,
                "final_gain_db": m.final_gain_db,
                "integrated_lufs": m.integrated_lufs,
                "true_peak_dbtp": m.true_peak_dbtp,
                "speech_regions": [list(r) for r in m.speech_regions],
            }
        return {
            "input": str(self.input),
            "output": str(self.output) if self.output else None,
            "duration": self.duration,
            "backend": self.backend,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "resumed": self.resumed,
            "cost": round(self.cost, 4),
            "dry_run": self.dry_run,
            "fallback_used": self.fallback_used,
            "notes": self.notes_source,
            "timeline": str(self.timeline) if self.timeline else None,
            "warnings": list(self.warnings),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "mix": mix,
            "plan": plan_to_dict(self.plan),
        }


@dataclass(frozen=True)
class MusicJob:
    """What the music needs, with no media file behind it.

    A file's job adds its ``MediaInfo`` (``FileJob``); a moviepy clip has only a duration
    and maybe some audio, and plans, composes and mixes through the same functions.
    """

    duration: float
    preset: Preset
    sections: tuple[Section, ...]
    plan: Plan
    backend_name: str
    notes_source: str
    warnings: tuple[str, ...]
    tempo: float
    """The BPM every section's prompt states: what the joins line up beats with."""


@dataclass(frozen=True)
class FileJob(MusicJob):
    """A ``MusicJob`` for a media file, with what probing found."""

    info: MediaInfo


def plan_music(
    duration: float,
    notes: Sequence[Note] = (),
    options: ScoreOptions | None = None,
    *,
    notes_source: str = "",
    warnings: Sequence[str] = (),
    cuts: PictureCuts | None = None,
    **changes: Any,
) -> MusicJob:
    """Sections, prompts and chunk plan for ``duration`` seconds: offline, and where bad input is caught.

    ``cuts`` (the picture's, see ``guides``) make the sections when there are no notes, pull
    notes and joins onto them, and set the tempo that puts them on beats.
    """
    opts = ScoreOptions.of(options, **changes)
    followed = follow_picture(notes, notes_source, cuts, duration,
                              opts.preset if isinstance(opts.preset, Preset) else load_preset(opts.preset),
                              opts.prompt)
    the_preset = followed.preset
    all_warnings = list(warnings)
    built = build_sections(list(followed.notes), duration, the_preset, prompt=opts.prompt,
                           negative=opts.negative)
    all_warnings.extend(built.warnings)
    backend_name = resolve_backend_name(opts.backend, opts.api_key)
    price, outpaint_price = backend_prices(backend_name)
    the_plan = make_plan(
        duration,
        built.sections,
        the_preset,
        backend_name=backend_name,
        price_per_request=price,
        outpaint_price=outpaint_price,
        join=opts.join,
        policy=opts.sections or the_preset.music.sections,
        max_cost=opts.max_cost,
        prompt=opts.prompt,
        cuts=followed.cuts,
        tempo=followed.fit.bpm if followed.fit else None,
        downbeat=followed.fit.downbeat if followed.fit else None,
        source=followed.source,
    )
    all_warnings.extend(the_plan.warnings)
    return MusicJob(duration, the_preset, built.sections, the_plan, backend_name, followed.source,
                    tuple(all_warnings), the_plan.tempo)


def plan_job(
    input: str | Path,
    options: ScoreOptions | None = None,
    *,
    info: MediaInfo | None = None,
    **changes: Any,
) -> FileJob:
    """Everything up to the plan for a media file: probe, notes (given, beside it or chapters), plan."""
    opts = ScoreOptions.of(options, **changes)
    info = info or probe(input)
    warnings: list[str] = []
    if opts.notes is not None and not isinstance(opts.notes, str | Path):
        raise NotesError("Notes for a file are a notes file: pass its path (parsed notes are for clips).")
    note_list, notes_source = read_notes(info, opts.notes, warnings)
    cuts = picture_cuts(info, opts, bool(note_list), warnings.append)
    music = plan_music(info.duration, note_list, opts, notes_source=notes_source, warnings=warnings,
                       cuts=cuts)
    return FileJob(**{f.name: getattr(music, f.name) for f in fields(MusicJob)}, info=info)


@contextlib.contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def _generate(
    job: MusicJob,
    chunks: tuple[Chunk, ...],
    backend: Backend,
    cache: AudioCache,
    store: ChunkStore,
    reporter: Reporter,
    timeout: float | None,
) -> GenerationStats:
    total = len(chunks)
    # A reporter written before ``throttled`` existed still works: it just is not told.
    backend.on_throttle = getattr(reporter, "throttled", None)
    return generate_chunks(
        chunks,
        backend,
        cache,
        store,
        job.preset.generation,
        join=job.plan.join,
        event=lambda i, s: reporter.chunk(i, total, s),
        warn=reporter.warn,
        timeout=timeout,
    )


@dataclass
class Composed:
    """The music of a job on disk, and what making it took."""

    music: PcmFile
    backend: str
    """The backend that made it: the planned one, or 'procedural' after a fallback."""
    requests: int = 0
    cache_hits: int = 0
    cost: float = 0.0
    fallback_used: bool = False
    warnings: list[str] = field(default_factory=list)
    resumed: int = 0


def compose_music(
    job: MusicJob,
    work: Path,
    options: ScoreOptions | None = None,
    *,
    cache: AudioCache | None = None,
    reporter: Reporter | None = None,
    timings: dict[str, float] | None = None,
) -> Composed:
    """Generate every chunk of ``job.plan`` and join them into ``work/music.f32``, ``job.duration`` long.

    The one generation path for files and moviepy clips alike: same cache, same
    fallback, same crossfades. ``work`` is a scratch folder the caller owns and removes.
    """
    opts = options or ScoreOptions()
    rep: Reporter = reporter or _Quiet()
    timings = timings if timings is not None else {}
    cache = cache or AudioCache(None)
    store = ChunkStore(work / "chunks")
    warnings: list[str] = []
    backend_used, fallback_used = job.backend_name, False
    rep.stage("generate")
    chosen: Backend | None = None
    with _timer(timings, "generate"):
        try:
            chosen = make_backend(job.backend_name, api_key=opts.api_key, api_base=opts.api_base,
                                  concurrency=opts.concurrency)
            stats = _generate(job, job.plan.chunks, chosen, cache, store, rep, opts.timeout)
            cost = stats.cost
        except BackendError as exc:
            if opts.fallback != "procedural" or job.backend_name == "procedural":
                raise
            # The composer makes the whole piece, so that it sounds like one; what the remote
            # part finished was paid for and stays cached for a rerun without --fallback.
            cost = chosen.spent if chosen is not None else 0.0
            paid = (f" (${cost:.4f} was spent on the chunks it finished; they are cached for a rerun "
                    "without --fallback)") if cost else ""
            message = (
                f"The {job.backend_name} backend failed ({exc}); the music was made by the "
                f"procedural composer instead{paid}."
            )
            rep.warn(message)
            warnings.append(message)
            backend_used, fallback_used = "procedural", True
            stats = _generate(job, job.plan.chunks, make_backend("procedural"), cache, store, rep,
                              opts.timeout)

    rep.stage("assemble")
    with _timer(timings, "assemble"), PcmWriter(work / "music.f32", MIX_RATE) as writer:
        tempo = job.tempo
        assemble_spans(
            span_chunks(job.plan), store.load, job.duration, writer,
            rate=MIX_RATE, fade_in=job.preset.mix.fade_in, fade_out=job.preset.mix.fade_out,
            # Slide chunks at most half a beat when lining up their beats.
            max_shift=min(DEFAULT_MAX_SHIFT, 30.0 / tempo),
        )
    return Composed(writer.file, backend_used, stats.requests, stats.cache_hits, cost,
                    fallback_used, warnings, stats.resumed)


def check_cost(plan: Plan, max_cost: float | None) -> None:
    """A plan above ``max_cost`` is a usage error, raised before anything is spent."""
    costs = {p.name: p for p in plan.policy_costs}
    problem = over_budget(plan.policy_asked, plan.policy, costs, max_cost)
    if problem is None and max_cost is not None and plan.cost > max_cost + 1e-9:
        problem = (f"This job needs {plan.requests} requests costing ${plan.cost:.4f}, above "
                   f"--max-cost ${max_cost:.4f}: raise the limit or shorten the input.")
    if problem is not None:
        raise CostLimitError(problem)


def score(
    input: str | Path,
    output: str | Path | None = None,
    options: ScoreOptions | None = None,
    *,
    reporter: Reporter | None = None,
    **changes: Any,
) -> ScoreResult:
    """Score ``input`` and write the result.

    ``options`` (a ``ScoreOptions``) and keyword ``changes`` to it (``preset=``,
    ``notes=``, ``backend=``, ...; see ``ScoreOptions``) say how. Returns a
    ``ScoreResult``. Raises an ``AutoscoreError`` subclass with a message fit for a user on
    any failure, after removing anything half-written.
    """
    opts = ScoreOptions.of(options, **changes)
    rep: Reporter = reporter or _Quiet()
    timings: dict[str, float] = {}

    rep.stage("probe")
    with _timer(timings, "probe"):
        info = probe(input)
    out_path = Path(output) if output else render.default_output_path(info, opts.format)
    spec = render.output_spec(info, out_path, opts.format)
    render.check_output_path(info.path, out_path)
    if opts.stems is not None:
        _check_folder(Path(opts.stems), "--stems")
    if opts.report is not None:
        check_report_path(info.path, Path(opts.report))
    if opts.timeline is not None:
        from .timeline import check_timeline_path

        check_timeline_path(info.path, Path(opts.timeline), out_path)

    rep.stage("plan")
    with _timer(timings, "plan"):
        job = plan_job(info.path, opts, info=info)
    warnings = list(job.warnings)
    music_track = opts.music_track
    if music_track and spec.audio_only:
        warnings.append(f"--music-track needs a video output; {out_path.name} gets the mix alone.")
        music_track = False
    for w in warnings:
        rep.warn(w)
    result = ScoreResult(
        input=info.path, output=None if opts.dry_run else out_path, duration=info.duration,
        dry_run=opts.dry_run,
        backend=job.backend_name, sections=job.sections, plan=job.plan,
        warnings=warnings, timings=timings, notes_source=job.notes_source,
    )
    check_cost(job.plan, opts.max_cost)
    if opts.dry_run:
        return result
    rep.plan(job.plan)

    cache = AudioCache.for_job(opts.cache_dir, opts.use_cache)
    with scratch_folder() as work:
        composed = compose_music(job, work, opts, cache=cache, reporter=rep, timings=timings)
        result.backend, result.fallback_used = composed.backend, composed.fallback_used
        result.requests, result.cache_hits = composed.requests, composed.cache_hits
        result.resumed = composed.resumed
        result.cost = composed.cost
        result.warnings.extend(composed.warnings)
        music = composed.music

        rep.stage("mix")
        with _timer(timings, "mix"):
            result.mix = _mix_and_render(info, spec, job, music, work, opts.stems, music_track)
        if result.mix.limiter_reduction_max_db > HEAVY_LIMITING_DB:
            message = (
                f"Reaching {job.preset.mix.target_lufs:g} LUFS took up to "
                f"{result.mix.limiter_reduction_max_db:.1f} dB of peak limiting: the dialogue is very "
                "peaky. A lower target (--loudness -16 or -18) keeps more of its dynamics."
            )
            rep.warn(message)
            result.warnings.append(message)
        result.stems = Path(opts.stems) if opts.stems else None
        if opts.report is not None:
            from .mixing.picture import write_report

            with _timer(timings, "report"):
                write_report(Path(opts.report), result.mix,
                             sections=[s.start for s in job.sections],
                             chunks=[c.start for c in job.plan.chunks])
            result.report = Path(opts.report)
        if opts.timeline is not None:
            from .timeline import write_timeline

            with _timer(timings, "timeline"):
                result.timeline = write_timeline(Path(opts.timeline), info, job.sections, job.plan.cuts,
                                                 music, result.mix)
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    return result


def check_report_path(input: Path, report: Path) -> None:
    """``--report`` fails before any work or money is spent: a bad path, or no matplotlib."""
    render.check_output_path(input, report)
    if importlib.util.find_spec("matplotlib") is None:
        raise OptionError(
            "--report needs matplotlib, which is not installed: pip install 'autoscore[report]'."
        )


def _check_folder(folder: Path, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{option} {folder} is a file, not a folder: name a folder.")
    parent = folder if folder.exists() else folder.parent
    if not parent.exists() or unwritable_reason(parent) is not None:
        raise OptionError(f"{option} folder {folder} cannot be written: choose another place.")


def _mix_and_render(
    info: MediaInfo,
    spec: render.OutputSpec,
    job: FileJob,
    music: PcmFile,
    work: Path,
    stems: str | Path | None,
    music_track: bool,
) -> MixReport:
    """Mix while encoding, straight into the output.

    The encoders run as ffmpeg processes fed block by block, so encoding overlaps the
    mixing instead of following it. An audio-only output is the encoded file; for a video
    the same ffmpeg copies the picture in as the audio arrives. Only ``--music-track``,
    with two audio streams to encode, writes them to files first and muxes afterwards.
    """
    stems_dir = Path(stems) if stems else None
    if stems_dir is not None:
        stems_dir.mkdir(parents=True, exist_ok=True)
    with render.atomic_output(spec.path) as tmp_out:
        if spec.audio_only:
            encoders = [render.Encoder.audio(spec, tmp_out, metadata_from=info.path)]
        elif not music_track:
            encoders = [render.Encoder.video(info, spec, tmp_out)]
        else:
            encoders = [render.Encoder.audio(spec, work / f"{name}{spec.temp_suffix}")
                        for name in ("mix", "music")]
        try:
            # The decode runs while the mixer measures the music (it needs nothing from the input).
            with ThreadPoolExecutor(max_workers=1) as pool:
                original = None if info.audio is None else pool.submit(
                    decode_for_mixing, info.path, work, stream=info.audio.index)
                mixed = mix_audio(
                    original, music, job.preset.mix, duration=info.duration,
                    sink=encoders[0].write, music_sink=encoders[1].write if len(encoders) > 1 else None,
                    stems_dir=stems_dir,
                )
            for encoder in encoders:
                encoder.close()
        except BaseException:
            for encoder in encoders:
                encoder.abort()
            raise
        if music_track and not spec.audio_only:
            titles = ("", "Music (ducked)")
            render.mux(info, spec, [(e.path, t) for e, t in zip(encoders, titles, strict=False)], tmp_out)
    return mixed
