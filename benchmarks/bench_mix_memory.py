"""Peak memory and time of ``mix_audio`` for 1, 10 and 60 minutes of generated material.

Each measurement runs in its own child process so ``ru_maxrss`` is that run's peak alone
(ffmpeg's own processes are not counted: they stream and stay small). The baseline is
the same code handed the whole input as one block, i.e. everything loaded at once; it
runs for 1 and 10 minutes only. Time is reported as a ratio to the baseline measured in
the same run, since absolute seconds depend on the machine.

    python benchmarks/bench_mix_memory.py [--minutes 1 10 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoscore.media.ffmpeg import run
from autoscore.media.pcm import PcmFile
from autoscore.models import MIX_RATE
from autoscore.text.presets import MixSettings

BASELINE_MAX_MINUTES = 10
GOAL_MIB = 1024


def make_inputs(folder: Path, minutes: int) -> tuple[Path, Path]:
    """A speech-like original (gated pink noise plus a warbling tone, AAC) and a music PcmFile."""
    seconds = minutes * 60
    original = folder / f"original-{minutes}.m4a"
    music = folder / f"music-{minutes}.f32"
    if not original.exists():
        run(["-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.3:sample_rate=48000:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=180:beep_factor=3:sample_rate=48000:duration={seconds}",
             "-filter_complex",
             "[0][1]amix=inputs=2,volume='if(lt(mod(t,7),4),1,0.02)':eval=frame,"
             "tremolo=f=4:d=0.7[a]",
             "-map", "[a]", "-ac", "1", "-c:a", "aac", "-b:a", "64k", str(original)],
            what="make the benchmark original")
    if not music.exists():
        run(["-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:duration={seconds}",
             "-f", "lavfi", "-i", f"anoisesrc=color=brown:amplitude=0.1:sample_rate=48000:duration={seconds}",
             "-filter_complex", "[0][1]amix=inputs=2[a]", "-map", "[a]",
             "-ac", "2", "-f", "f32le", "-acodec", "pcm_f32le", str(music)],
            what="make the benchmark music")
    return original, music


def child(mode: str, original: Path, music: Path, minutes: int) -> None:
    from autoscore.mixing.mix import DEFAULT_BLOCK, mix_audio

    block = DEFAULT_BLOCK if mode == "streaming" else 10**12
    frames = 0

    def sink(b: object) -> None:
        nonlocal frames
        frames += len(b)  # type: ignore[arg-type]

    from autoscore.media.files import scratch_folder
    from autoscore.media.pcm import decode_for_mixing

    start = time.perf_counter()
    with scratch_folder() as folder:
        report = mix_audio(decode_for_mixing(original, folder), PcmFile(music, MIX_RATE), MixSettings(),
                           duration=minutes * 60.0, sink=sink, music_sink=lambda b: None, block_frames=block)
    seconds = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mib": rss_mib, "frames": frames,
                      "lufs": report.integrated_lufs, "dbtp": report.true_peak_dbtp}))


def measure(mode: str, original: Path, music: Path, minutes: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(original), str(music), str(minutes)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60])
    parser.add_argument("--baseline-max", type=int, default=BASELINE_MAX_MINUTES,
                        help="longest input to run the baseline on (10 minutes peak at about 10 GiB)")
    parser.add_argument("--keep", type=Path, help="folder for the generated inputs (reused if present)")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "ORIGINAL", "MUSIC", "MINUTES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, original, music, minutes = args.child
        child(mode, Path(original), Path(music), int(minutes))
        return

    with tempfile.TemporaryDirectory(prefix="autoscore-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for minutes in args.minutes:
            original, music = make_inputs(folder, minutes)
            streaming = measure("streaming", original, music, minutes)
            baseline = (measure("baseline", original, music, minutes)
                        if minutes <= args.baseline_max else None)
            rows.append((minutes, streaming, baseline))
            if args.keep is None:
                music.unlink()  # 60 minutes of float32 stereo is 1.4 GB

    print("| minutes | streaming peak MiB | baseline peak MiB | streaming time / baseline time "
          "| streaming x realtime | mix LUFS | mix dBTP |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for minutes, s, b in rows:
        base_mib = f"{b['rss_mib']:.0f}" if b else "-"
        ratio = f"{s['seconds'] / b['seconds']:.2f}" if b else "-"
        realtime = minutes * 60 / s["seconds"]
        print(f"| {minutes} | {s['rss_mib']:.0f} | {base_mib} | {ratio} | {realtime:.0f} "
              f"| {s['lufs']:.2f} | {s['dbtp']:.2f} |")
    worst = max(s["rss_mib"] for _, s, _ in rows)
    print(f"\nGoal: streaming peak < {GOAL_MIB} MiB: {'met' if worst < GOAL_MIB else 'MISSED'} "
          f"(worst {worst:.0f} MiB).")


if __name__ == "__main__":
    main()
