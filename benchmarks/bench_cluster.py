"""Cluster: a batch on ``--cluster local:2`` against ``--jobs 2`` on the same machine.

The inputs are short social clips (20 s, 320x180, speech-like audio), scored with the
procedural composer and ``--no-cache`` so that every file does its whole work. Both runs
are the real command line, measured end to end, one after the other, on one machine. On
two cores the cluster cannot be faster than two threads (the point is that it scales
out, not up), so the figure to read is the ratio, expected close to 1x, and the overhead
that Dask adds per file:

* start-up: the same command again once every output is finished, so every file is
  skipped before it is sent: starting two worker processes, checking them, stopping them;
* dispatch: the round trip of a task that does nothing, on that cluster;
* per file: the batch's wall time beyond what its files took on their workers, spread
  over the files (``(wall - start-up) x slots - sum of file seconds) / files``).

The paper estimate for 10,000 clips on 20 workers multiplies the measured per-file cost
out. The files were measured two at a time on two cores, so a "worker" there is one
single-thread worker process with a core like these; it also assumes storage that keeps
up, and no remote generator's account limit (the composer has none).

    python benchmarks/bench_cluster.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Table, autoscore_cmd, machine_summary, make_clip, measure

__all__ = ["ClusterResult", "cluster_table", "run_cluster"]

PAPER_CLIPS = 10_000
PAPER_WORKERS = 20


@dataclass(frozen=True)
class Run:
    label: str
    wall: float
    file_seconds: list[float]
    workers: set[str]

    @property
    def files_per_minute(self) -> float:
        return 60.0 * len(self.file_seconds) / self.wall


@dataclass(frozen=True)
class ClusterResult:
    clips: int
    clip_seconds: float
    threads: Run
    cluster: Run
    startup: float
    dispatch_ms: float


def _batch(label: str, inputs: Path, out: Path, *extra: str, force: bool = True) -> Run:
    again = ("--force",) if force else ()
    measured = measure(autoscore_cmd("batch", str(inputs), "-o", str(out), "--backend", "procedural",
                                     "--no-cache", "--cuts", "off", "--json", *again, *extra))
    report = measured.json()
    files = report["files"]
    if report["failed"] or report["ok"] + report["skipped"] != len(files):
        raise RuntimeError(f"{label}: {report['failed']} file(s) failed")
    return Run(label, measured.seconds, [float(f["seconds"]) for f in files],
               {str(f.get("worker")) for f in files if f.get("worker")})


def _dispatch_ms(workers: int, tasks: int = 200) -> float:
    """Milliseconds per round trip of a task that does nothing, on a LocalCluster."""
    from autoscore.cluster.connect import connected

    with connected(f"local:{workers}") as client:
        client.submit(int, 0, pure=False).result()  # warm
        t0 = time.perf_counter()
        client.gather([client.submit(int, i, pure=False) for i in range(tasks)])
        return 1000.0 * (time.perf_counter() - t0) / tasks


def run_cluster(work: Path, clips: int = 48, seconds: float = 20.0, rounds: int = 1) -> ClusterResult:
    inputs = work / "clips"
    inputs.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        make_clip(inputs / f"clip{i:03d}.mp4", seconds)
    threads: list[Run] = []
    cluster: list[Run] = []
    for _ in range(rounds):  # alternate, so drift in the machine hits both the same
        threads.append(_batch("--jobs 2", inputs, work / "out-jobs", "--jobs", "2"))
        cluster.append(_batch("--cluster local:2", inputs, work / "out-cluster", "--cluster", "local:2"))
    skipped = _batch("skip all", inputs, work / "out-cluster", "--cluster", "local:2", force=False)
    startup, dispatch = skipped.wall, _dispatch_ms(2)
    best = min(threads, key=lambda r: r.wall), min(cluster, key=lambda r: r.wall)
    return ClusterResult(clips, seconds, best[0], best[1], startup, dispatch)


def per_file_overhead(run: Run, slots: int, startup: float) -> float:
    busy = sum(run.file_seconds)
    return max(0.0, ((run.wall - startup) * slots - busy) / len(run.file_seconds))


def cluster_table(r: ClusterResult) -> Table:
    table = Table(
        f"Batch on a Dask cluster: {r.clips} clips of {r.clip_seconds:g} s, procedural, no cache",
        ["run", "wall (s)", "files/min", "median file (s)", "workers", "vs --jobs 2"],
    )
    for run in (r.threads, r.cluster):
        table.add(run.label, f"{run.wall:.1f}", f"{run.files_per_minute:.1f}",
                  f"{statistics.median(run.file_seconds):.2f}", len(run.workers) or "threads",
                  f"{run.files_per_minute / r.threads.files_per_minute:.2f}x")
    cluster_overhead = per_file_overhead(r.cluster, 2, r.startup)
    threads_overhead = per_file_overhead(r.threads, 2, 0.0)
    per_file = sum(r.cluster.file_seconds) / len(r.cluster.file_seconds)
    paper = PAPER_CLIPS * (per_file + cluster_overhead) / PAPER_WORKERS + r.startup
    table.notes += [
        f"Fixed cost of --cluster local:2 (the same command with every output finished: start, check "
        f"and stop 2 worker processes): {r.startup:.1f} s; a no-op task's round trip: "
        f"{r.dispatch_ms:.1f} ms.",
        f"Wall time beyond the files' own time, per file: {cluster_overhead:.2f} s on the cluster "
        f"(after start-up), {threads_overhead:.2f} s with threads (process start-up, probing, Python).",
        f"Paper estimate, {PAPER_CLIPS:,} clips on {PAPER_WORKERS} single-thread workers with a core like "
        f"these each: {per_file:.2f} s a file + {cluster_overhead:.2f} s overhead -> "
        f"{paper / 60:.0f} min ({paper / 3600:.1f} h).",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 clips of 10 s")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; the best of each is kept")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work folder to keep and reuse")
    args = parser.parse_args()
    machine = machine_summary()  # before the runs: its load average is the one they started under
    with tempfile.TemporaryDirectory(prefix="autoscore-bench-") as tmp:
        work = args.keep or Path(tmp)
        clips, seconds = (12, 10.0) if args.quick else (48, 20.0)
        result = run_cluster(work, clips, seconds, args.rounds)
    print(machine)
    print(cluster_table(result).markdown())


if __name__ == "__main__":
    main()
