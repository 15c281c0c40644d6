"""Rebuild samples/workshop.mp4 and its scene notes.

The sample is what the README's first command scores: 30 s of small video with real spoken
words in two stretches and none elsewhere, so ducking is audible. Making it needs
espeak-ng (Debian: apt-get install espeak-ng) and ffmpeg; using it needs neither.

    python samples/make_sample.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DURATION = 30.0
# (start second, words): the stretches where the host speaks.
SPEECH = [
    (8.5, "Welcome back to the workshop. Today we build a small wooden boat, "
          "from the first cut to the first launch."),
    (24.0, "And there she is, on the water at last. Thanks for watching."),
]
NOTES = """\
# Scene notes for samples/workshop.mp4 (30 s)
0:00 calm opening, city at dawn [energy: low]
0:08 the host introduces the project
0:16 montage of the build, things speed up [energy: high]
0:24 quiet ending, sunset [no drums]
"""


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def speak(text: str, out: Path) -> None:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-p", "45", "-w", str(out), text], check=True)


def main() -> int:
    if not shutil.which("espeak-ng"):
        print("espeak-ng is needed to rebuild the sample (apt-get install espeak-ng).", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        inputs: list[str] = []
        delays: list[str] = []
        for n, (start, words) in enumerate(SPEECH):
            wav = t / f"line{n}.wav"
            speak(words, wav)
            inputs += ["-i", str(wav)]
            ms = int(start * 1000)
            # Compressed like any voice track cut for video, so the peaks sit near the body.
            delays.append(
                f"[{n + 1}:a]aresample=48000,acompressor=threshold=0.06:ratio=6:attack=2:release=60:makeup=3,"
                f"adelay={ms}|{ms},apad[s{n}]"
            )
        n_speech = len(SPEECH)
        # Quiet room tone under everything, so "no speech" is not digital silence.
        room = f"anoisesrc=color=brown:amplitude=0.004:d={DURATION}:r=48000"
        graph = ";".join(
            [
                *delays,
                f"{room}[room]",
                "".join(f"[s{n}]" for n in range(n_speech))
                + f"[room]amix=inputs={n_speech + 1}:normalize=0:duration=longest,"
                f"atrim=0:{DURATION},pan=stereo|c0=c0|c1=c0[a]",
                # Four scenes, one look each: dawn, host, build montage, sunset.
                "gradients=s=480x270:r=25:d=8:c0=0x1a2a6c:c1=0xfdbb2d:speed=0.02[v0]",
                "gradients=s=480x270:r=25:d=8:c0=0x3a6073:c1=0x16222a:speed=0.015[v1]",
                "life=s=480x270:r=25:mold=10:ratio=0.1:life_color=0xffd166:death_color=0x33415c,"
                "trim=duration=8,setpts=PTS-STARTPTS[v2]",
                f"gradients=s=480x270:r=25:d={DURATION - 24}:c0=0xff5e62:c1=0x2c3e50:speed=0.01[v3]",
                "[v0][v1][v2][v3]concat=n=4:v=1:a=0,format=yuv420p[v]",
            ]
        )
        out = HERE / "workshop.mp4"
        cmd = [
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono:d={DURATION}",
            *inputs,
            "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
            "-c:v", "libx264", "-preset", "medium", "-crf", "32", "-g", "50",
            "-c:a", "aac", "-b:a", "64k", "-t", str(DURATION),
            "-metadata", "title=autoscore sample: the workshop",
            "-movflags", "+faststart", str(out),
        ]
        subprocess.run(cmd, check=True)
    (HERE / "workshop.notes.txt").write_text(NOTES)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and workshop.notes.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
