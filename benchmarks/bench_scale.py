"""Scale: how autoscore's time and peak memory grow with the input's length.

Everything but remote generation is measured: the procedural backend with a warm cache
(the music is composed and cached first, untimed, by the pipeline's own planner), so the figure is
probe, plan, cache reads, assembly, detection, mixing, encoding and muxing. Inputs are
small-picture clips with speech-like audio, since the picture is only copied anyway.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import Measured, Table, autoscore_cmd, make_clip, measure, verdict

__all__ = ["ScaleRow", "run_scale", "scale_table"]

GOAL_SHARE = 0.05
"""Processing time under 5 % of the input's duration."""
GOAL_MIB = 1024
REPEAT_UNDER_MINUTES = 15
"""Inputs shorter than this are timed several times and the median run reported: a few
seconds of wall time swing by 10-20 % with whatever else the machine's disk and cores do."""


@dataclass(frozen=True)
class ScaleRow:
    minutes: float
    run: Measured
    """The median run (by wall time) of ``runs``."""
    timings: dict[str, float]
    runs: int = 1
    spread: tuple[float, float] = (0.0, 0.0)
    """Fastest and slowest wall time of the runs."""

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    @property
    def share(self) -> float:
        return self.run.seconds / self.seconds


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WAVESPEED_API_KEY", "WAVESPEED_BASE_URL")}
    env["AUTOSCORE_CACHE_DIR"] = str(cache)
    return env


def score_once(clip: Path, output: Path, cache: Path) -> Measured:
    return measure(
        autoscore_cmd("score", str(clip), "-o", str(output), "-b", "procedural", "--cache-dir", str(cache),
                      "--json"),
        env=_env(cache),
    )


def warm_cache(clip: Path, cache: Path) -> int:
    """Compose and cache the music ``autoscore score`` will ask for, without mixing: returns the chunk count.

    Uses the pipeline's own planner and ``generate_chunks``, so the cache keys are exactly
    the ones the timed run looks up (the timed run's ``cache_hits`` proves it).
    """
    from autoscore.music.backends import make_backend
    from autoscore.music.cache import AudioCache
    from autoscore.music.generate import ChunkStore, generate_chunks
    from autoscore.pipeline import plan_job

    job = plan_job(clip, backend="procedural")
    with tempfile.TemporaryDirectory(prefix="autoscore-bench-") as tmp:
        generate_chunks(job.plan.chunks, make_backend("procedural"), AudioCache(cache), ChunkStore(Path(tmp)),
                        job.preset.generation, join=job.plan.join)
    return len(job.plan.chunks)


def run_scale(work: Path, minutes: list[float], *, keep_inputs: bool = False,
              repeat: int = 5) -> list[ScaleRow]:
    """Warm the cache for each length, then time ``autoscore score``; outputs are deleted as we go.

    Inputs under ``REPEAT_UNDER_MINUTES`` are timed ``repeat`` times (the median run is
    reported), longer ones once.
    """
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    rows = []
    for m in minutes:
        clip = make_clip(work / f"scale-{m:g}min.mp4", m * 60)
        out = work / f"scale-{m:g}min.scored.mp4"
        chunks = warm_cache(clip, cache)
        runs = []
        for _ in range(repeat if m < REPEAT_UNDER_MINUTES else 1):
            timed = score_once(clip, out, cache)
            hits = timed.json().get("cache_hits")
            if hits != chunks:
                raise RuntimeError(f"a timed run of {clip.name} hit the cache {hits} times, not {chunks}: "
                                   "it composed music and the figure would be wrong")
            runs.append(timed)
        runs.sort(key=lambda r: r.seconds)
        timed = runs[(len(runs) - 1) // 2]  # the median run (the lower middle one of an even count)
        timings = {k: float(v) for k, v in timed.json().get("timings", {}).items()}  # type: ignore[union-attr]
        rows.append(ScaleRow(m, timed, timings, len(runs), (runs[0].seconds, runs[-1].seconds)))
        out.unlink(missing_ok=True)
        if not keep_inputs:
            clip.unlink(missing_ok=True)
    return rows


def _growth(value: float, base: float) -> str:
    return f"{value / base:.1f}x" if base > 0 else "-"


def scale_table(rows: list[ScaleRow]) -> Table:
    t = Table(
        "Scale: `autoscore score`, procedural backend, warm cache, 320x180 video + speech-like audio",
        ["input", "runs", "wall s (min-max)", "% of input", "x real time", "peak MiB", "time vs first",
         "memory vs first", "stages: probe / generate (cache) / assemble / mix+render s"],
    )
    first = rows[0]
    for r in rows:
        stages = " / ".join(f"{r.timings.get(k, 0.0):.1f}" for k in ("probe", "generate", "assemble", "mix"))
        wall = f"{r.run.seconds:.2f}" + (f" ({r.spread[0]:.2f}-{r.spread[1]:.2f})" if r.runs > 1 else "")
        t.add(f"{r.minutes:g} min", str(r.runs), wall, f"{100 * r.share:.2f} %",
              f"{1 / r.share:.0f}x", f"{r.run.peak_mib:.0f}", _growth(r.run.seconds, first.run.seconds),
              _growth(r.run.peak_mib, first.run.peak_mib), stages)
    worst_share = max(r.share for r in rows)
    longest = max(rows, key=lambda r: r.minutes)
    t.notes.append(f"Goal: time under {100 * GOAL_SHARE:g} % of the input's duration: "
                   f"{verdict(worst_share < GOAL_SHARE)} (worst {100 * worst_share:.2f} %).")
    t.notes.append(f"Goal: peak memory under {GOAL_MIB} MiB at the longest input ({longest.minutes:g} min): "
                   f"{verdict(longest.run.peak_mib < GOAL_MIB)} ({longest.run.peak_mib:.0f} MiB).")
    if len(rows) > 1:
        ratio = longest.minutes / first.minutes
        t.notes.append(f"Growth: {ratio:g}x the length took "
                       f"{longest.run.seconds / first.run.seconds:.1f}x the time and "
                       f"{longest.run.peak_mib / first.run.peak_mib:.2f}x the peak memory.")
    t.notes.append("Wall time includes interpreter start and imports; with several runs the median is "
                   "shown (its stages and memory too). Peak is ru_maxrss of the largest process "
                   "(RUSAGE_CHILDREN of a small wrapper).")
    return t
