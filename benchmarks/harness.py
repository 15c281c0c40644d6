"""What every benchmark section shares: the machine line, child-process measurement, inputs, tables.

Figures are only worth printing next to the machine they came from and a baseline measured
in the same run, so this module keeps those three things in one place. Each measured job
runs under its own small wrapper process that reports ``getrusage(RUSAGE_CHILDREN)``, so a
peak from an earlier job, or this process's own size, never leaks into a later figure.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autoscore.media import ffmpeg as ff

__all__ = [
    "Measured",
    "Table",
    "autoscore_cmd",
    "machine_summary",
    "make_clip",
    "measure",
    "packet_hashes",
    "verdict",
]

SPEECH_PERIOD = 7
"""Seconds per talk/pause cycle of the speech-like audio: 4 s of 'talk', then 3 s of near silence."""


@dataclass(frozen=True)
class Measured:
    """One child process: wall seconds, its peak RSS (largest of it and its reaped children), stdout."""

    seconds: float
    peak_mib: float
    stdout: str

    def json(self) -> dict[str, object]:
        """The JSON document on stdout (``autoscore score --json`` prints one), from its first brace."""
        text = self.stdout.strip()
        start = text.find("{")
        return json.loads(text[start:]) if start >= 0 else {}


_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as f:
    json.dump({"seconds": seconds, "peak_kib": peak}, f)
sys.exit(code)
"""
"""Runs the measured command as its own child and reports ``RUSAGE_CHILDREN``.

Linux starts a child's ``ru_maxrss`` at its parent's RSS at fork time, so a command
started straight from this (large) process would show our footprint as a floor. The
wrapper is a bare interpreter of a few MiB: the command's figure is then its own.
"""


def measure(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Measured:
    """Run ``cmd`` to completion; raise with its stderr if it fails.

    The peak is ``ru_maxrss`` of the largest of the command and the processes it waited
    for (autoscore waits for all its ffmpegs), in MiB; the time is the wrapper's
    ``perf_counter`` around the command, so the wrapper's own start-up is not in it.
    """
    with _scratch_file() as out_file, _scratch_file() as err_file, \
            tempfile.TemporaryDirectory(prefix="autoscore-bench-") as tmp:
        report = Path(tmp) / "rusage.json"
        proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(report), *cmd],
                              stdout=out_file, stderr=err_file, env=env, cwd=cwd, check=False)
        out_file.seek(0)
        err_file.seek(0)
        stdout = out_file.read().decode("utf-8", "replace")
        stderr = err_file.read().decode("utf-8", "replace")
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}: {stderr.strip()[-800:]}")
        usage = json.loads(report.read_text())
    return Measured(usage["seconds"], usage["peak_kib"] / 1024, stdout)


def _scratch_file() -> IO[bytes]:
    return tempfile.TemporaryFile()


def autoscore_cmd(*args: str) -> list[str]:
    """``autoscore ARGS`` through this interpreter, so the venv's install is the one measured."""
    return [sys.executable, "-m", "autoscore", *args]


# --- inputs ----------------------------------------------------------------------------


def speech_like_filter(seconds: float) -> str:
    """Pink noise plus a buzzing 180 Hz tone, syllable tremolo, gated 4 s on / 3 s off.

    webrtcvad takes it for a voice, so ducking has real regions to work with, and the
    lavfi sources make an hour of it in seconds with nothing downloaded.
    """
    return (
        f"anoisesrc=color=pink:amplitude=0.3:sample_rate=48000:duration={seconds}[n];"
        f"sine=frequency=180:beep_factor=3:sample_rate=48000:duration={seconds}[s];"
        f"[n][s]amix=inputs=2,volume='if(lt(mod(t,{SPEECH_PERIOD}),4),1,0.02)':eval=frame,"
        "tremolo=f=4:d=0.7,aformat=channel_layouts=mono[a]"
    )


def make_clip(path: Path, seconds: float, *, size: str = "320x180", fps: int = 25) -> Path:
    """A video with speech-like audio, H.264 ultrafast + AAC; reused when it already exists.

    ultrafast keeps making an hour of input quick; the codec settings of the input do not
    matter to autoscore, which copies the picture.
    """
    if path.exists():
        return path
    part = path.with_name(path.name + ".part.mp4")
    ff.run(
        ["-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds}",
         "-filter_complex", speech_like_filter(seconds),
         "-map", "0:v", "-map", "[a]",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-t", str(seconds), str(part)],
        what=f"make the benchmark input {path.name}",
    )
    part.replace(path)
    return path


def packet_hashes(path: Path) -> list[str]:
    """Per-packet MD5s of the first video stream, by stream copy: equal lists mean bit-identical video."""
    proc = ff.run(
        ["-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
        what="hash video packets",
    )
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln and not ln.startswith("#")]
    return [ln.rsplit(",", 1)[-1].strip() for ln in lines]


# --- reporting -------------------------------------------------------------------------


@dataclass
class Table:
    """One markdown table plus the goal lines printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"row has {len(cells)} cells, table {self.title!r} has {len(self.headers)}")
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.headers))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "**MISSED**"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ffmpeg_version() -> str:
    proc = ff.run(["-version"], what="read the ffmpeg version")
    first = proc.stdout.decode("utf-8", "replace").splitlines()[0]
    return first.split(" Copyright")[0].removeprefix("ffmpeg version ").strip()


def machine_summary() -> str:
    """The line every published figure must travel with."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = _mem_total_gib()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} · {cpu_model()} · {cores} cores"
        f"{f' · {mem:.1f} GiB RAM' if mem else ''} · Python {platform.python_version()} · "
        f"ffmpeg {ffmpeg_version()} · load average at start {load}"
    )


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError):
        pass
    return None
