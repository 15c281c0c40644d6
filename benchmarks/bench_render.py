"""Render: autoscore against the same job done by hand with moviepy, on a 1080p30 clip.

Both jobs get the same input, the same music (autoscore's level-set music stem, made in an
untimed warm-up run that also fills the cache) and the same speech regions. autoscore
copies the picture, so its video packets must hash the same as the input's; moviepy
re-encodes every frame. The figure is moviepy's wall time over autoscore's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import Measured, Table, autoscore_cmd, make_clip, measure, packet_hashes, verdict

__all__ = ["RenderResult", "render_table", "run_render"]

GOAL_SPEEDUP = 20.0
BASELINE_SCRIPT = Path(__file__).with_name("moviepy_baseline.py")


@dataclass(frozen=True)
class RenderResult:
    seconds: float
    """Length of the input clip."""
    size: str
    autoscore: Measured
    timings: dict[str, float]
    """autoscore's own per-stage timings (``--json``): where its wall time goes."""
    autoscore_identical: bool
    moviepy: Measured | None
    moviepy_identical: bool | None
    packets: int


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WAVESPEED_API_KEY", "WAVESPEED_BASE_URL")}
    env["AUTOSCORE_CACHE_DIR"] = str(cache)
    return env


def warm_up(clip: Path, work: Path, cache: Path) -> tuple[Path, Path]:
    """One untimed run: fills the music cache, leaves the music stem and the speech regions."""
    stems = work / "stems"
    done = measure(
        autoscore_cmd("score", str(clip), "-o", str(work / "warm.mp4"), "-b", "procedural",
                      "--cache-dir", str(cache), "--stems", str(stems), "--json"),
        env=_env(cache),
    )
    regions = done.json()["mix"]["speech_regions"]  # type: ignore[index]
    regions_file = work / "speech.json"
    regions_file.write_text(json.dumps(regions))
    return stems / "music.wav", regions_file


def time_autoscore(clip: Path, output: Path, cache: Path) -> Measured:
    return measure(
        autoscore_cmd("score", str(clip), "-o", str(output), "-b", "procedural",
                      "--cache-dir", str(cache), "--json"),
        env=_env(cache),
    )


def time_moviepy(clip: Path, music: Path, regions: Path, output: Path) -> Measured:
    return measure([sys.executable, str(BASELINE_SCRIPT), str(clip), str(music), str(regions), str(output)])


def run_render(work: Path, seconds: float, *, size: str = "1920x1080", fps: int = 30,
               with_moviepy: bool = True) -> RenderResult:
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    clip = make_clip(work / f"render-{seconds:g}s-{size}.mp4", seconds, size=size, fps=fps)
    music, regions = warm_up(clip, work, cache)
    ours = time_autoscore(clip, work / "autoscore.mp4", cache)
    source = packet_hashes(clip)
    identical = packet_hashes(work / "autoscore.mp4") == source
    theirs = theirs_identical = None
    if with_moviepy:
        theirs = time_moviepy(clip, music, regions, work / "moviepy.mp4")
        theirs_identical = packet_hashes(work / "moviepy.mp4") == source
    timings = {k: float(v) for k, v in ours.json().get("timings", {}).items()}  # type: ignore[union-attr]
    return RenderResult(seconds, size, ours, timings, identical, theirs, theirs_identical, len(source))


def _same(flag: bool | None) -> str:
    if flag is None:
        return "-"
    return "bit-identical" if flag else "re-encoded"


def render_table(r: RenderResult) -> Table:
    t = Table(
        f"Render: scoring a {r.seconds:g} s {r.size} clip (procedural backend, warm cache)",
        ["job", "wall s", "peak MiB", "speed vs moviepy", "video stream"],
    )
    speedup = r.moviepy.seconds / r.autoscore.seconds if r.moviepy else None
    t.add("autoscore score", f"{r.autoscore.seconds:.2f}", f"{r.autoscore.peak_mib:.0f}",
          f"{speedup:.1f}x" if speedup else "-", _same(r.autoscore_identical) + f" ({r.packets} packets)")
    if r.moviepy is not None:
        t.add("moviepy by hand (libx264 defaults)", f"{r.moviepy.seconds:.2f}", f"{r.moviepy.peak_mib:.0f}",
              "1.0x", _same(r.moviepy_identical))
    stages = ", ".join(f"{k} {v:.2f}" for k, v in r.timings.items() if k != "total")
    startup = r.autoscore.seconds - r.timings.get("total", 0.0)
    t.notes.append(f"autoscore stages (s): {stages}; interpreter start, imports and exit: {startup:.2f}")
    if speedup is not None:
        t.notes.append(f"Goal: at least {GOAL_SPEEDUP:g}x faster than moviepy: "
                       f"{verdict(speedup >= GOAL_SPEEDUP)} ({speedup:.1f}x).")
    t.notes.append("Goal: video stream bit-identical (framemd5 per packet): "
                   f"{verdict(r.autoscore_identical)}.")
    t.notes.append("Peak MiB: ru_maxrss (RUSAGE_CHILDREN of a small wrapper), the largest single process "
                   "of the job (Python or ffmpeg).")
    return t
