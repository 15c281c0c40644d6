"""Make tests/data/voice.flac: a few seconds of synthetic speech with known edges.

Run once by hand (``python tests/data/make_voice.py``) and commit the result; the tests
never run espeak-ng themselves, so they work on machines without it. Leading and
trailing silence is trimmed so that placing the file at offset t in a test signal puts
speech on exactly [t, t + length).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from autoscore.media.ffmpeg import decode_audio, run

TEXT = "The river rose quickly after the storm. Nobody crossed the old bridge until morning."
RATE = 16000
OUT = Path(__file__).with_name("voice.flac")


def trim_silence(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0] : loud[-1] + 1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(raw), TEXT], check=True)
        voice = decode_audio(raw, RATE, 1).samples[:, 0]
        voice = trim_silence(voice)
        voice = 0.5 * voice / np.max(np.abs(voice))
        trimmed = Path(tmp) / "trimmed.f32"
        trimmed.write_bytes(voice.astype("<f4").tobytes())
        part = OUT.with_suffix(".part.flac")
        run(
            ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(RATE), "-ac", "1", "-i", str(trimmed),
             "-c:a", "flac", "-sample_fmt", "s16", str(part)],
            what="write voice.flac",
        )
        part.replace(OUT)
    print(f"wrote {OUT} ({len(voice) / RATE:.2f} s)")


if __name__ == "__main__":
    main()
