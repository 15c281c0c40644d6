"""autoscore's benchmarks in one command: render, scale, generation, cost, cuts, cluster, as markdown.

Every input is made here with ffmpeg's lavfi sources, every figure is a ratio against a
baseline measured in the same run (or a real-time factor), and the machine is printed
with the tables, since absolute seconds mean nothing without it.

    python benchmarks/run.py                       # the full run, ~18 minutes on 2 cores
    python benchmarks/run.py --quick               # 20 s render, 1 and 3 minute scale
    python benchmarks/run.py --only cost,generation
    python benchmarks/run.py --keep /tmp/bench     # keep (and reuse) the generated inputs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however we are started

from harness import Table, machine_summary

SECTIONS = ("render", "scale", "generation", "cost", "cuts", "cluster")


@dataclass(frozen=True)
class Settings:
    """Lengths for one run: the full set, or ``--quick`` for a sanity run in a couple of minutes."""

    render_seconds: float
    render_size: str
    scale_minutes: list[float]
    composer_seconds: int
    emulator_chunk_seconds: int
    emulator_latency: float
    cost_minutes: list[float]
    keep_inputs: bool = False
    """Leave the generated scale inputs in the work folder (``--keep``) instead of deleting each."""
    cuts_minutes: tuple[float, ...] = (1, 10)
    """Lengths of the shot-cut montages (720p and 1080p each)."""
    cluster_clips: tuple[int, float] = (48, 20.0)
    """How many clips, and how long, the cluster batch scores."""

    @classmethod
    def full(cls) -> Settings:
        return cls(60, "1920x1080", [1, 10, 60], 120, 120, 2.0, [1, 10, 60])

    @classmethod
    def quick(cls) -> Settings:
        return cls(20, "1920x1080", [1, 3], 30, 30, 2.0, [1, 10, 60], cuts_minutes=(1,),
                   cluster_clips=(12, 10.0))


def render_section(s: Settings, work: Path) -> list[Table]:
    from bench_render import render_table, run_render

    return [render_table(run_render(work / "render", s.render_seconds, size=s.render_size))]


def scale_section(s: Settings, work: Path) -> list[Table]:
    from bench_scale import run_scale, scale_table

    return [scale_table(run_scale(work / "scale", s.scale_minutes, keep_inputs=s.keep_inputs))]


def generation_section(s: Settings, work: Path) -> list[Table]:
    from bench_generation import generation_table, run_bronze, run_emulator, run_rtf

    rtf = run_rtf(s.composer_seconds)
    emulated = run_emulator(s.emulator_latency, s.emulator_chunk_seconds)
    bronze = run_bronze(s.emulator_latency, s.emulator_chunk_seconds)
    return [generation_table(rtf, emulated, bronze)]


def cost_section(s: Settings, work: Path) -> list[Table]:
    from bench_cost import cost_table, run_cost

    return [cost_table(run_cost(s.cost_minutes))]


def cuts_section(s: Settings, work: Path) -> list[Table]:
    from bench_cuts import cuts_table, run_cuts

    return [cuts_table(run_cuts(work / "cuts", s.cuts_minutes))]


def cluster_section(s: Settings, work: Path) -> list[Table]:
    from bench_cluster import cluster_table, run_cluster

    return [cluster_table(run_cluster(work / "cluster", *s.cluster_clips))]


RUNNERS: dict[str, Callable[[Settings, Path], list[Table]]] = {
    "render": render_section,
    "scale": scale_section,
    "generation": generation_section,
    "cost": cost_section,
    "cuts": cuts_section,
    "cluster": cluster_section,
}


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(SECTIONS)
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in SECTIONS]
    if unknown:
        raise SystemExit(f"Unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}.")
    return [s for s in SECTIONS if s in chosen]


def run(sections: list[str], settings: Settings, work: Path, *, quick: bool,
        echo: Callable[[str], None] = print) -> str:
    """Run ``sections`` in order and return the whole markdown report (also echoed as it grows)."""
    head = f"## autoscore benchmarks{' (--quick)' if quick else ''}\n\n{machine_summary()}\n"
    echo(head)
    parts = [head]
    for name in sections:
        start = time.perf_counter()
        for table in RUNNERS[name](settings, work):
            text = table.markdown() + f"\n\n_{name}: measured in {time.perf_counter() - start:.0f} s_\n"
            echo(text)
            parts.append(text)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short inputs for a fast sanity run")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work folder to keep and reuse")
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    sections = parse_only(args.only)
    settings = Settings.quick() if args.quick else Settings.full()
    settings = replace(settings, keep_inputs=args.keep is not None)
    with tempfile.TemporaryDirectory(prefix="autoscore-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run(sections, settings, work, quick=args.quick)
    if args.output:
        part = args.output.with_name(args.output.name + ".part")
        part.write_text(report + "\n")
        part.replace(args.output)


if __name__ == "__main__":
    main()
