"""Form measures of the embedded composer against a human-composed reference (issue 16).

For five 120 s pieces without notes, and for the reference in tests/data/reference/, prints
over the middle 100 s (10-110 s): the standard deviation of the 8 s moving loudness, the
variation of the 8 s mean spectral centroid, and the blocks of the self-similarity matrix,
all from tests/music_measures.py (librosa, pyloudnorm). Needs the test extra.

    python benchmarks/measure_form.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import music_measures as mm  # noqa: E402

from autoscore.music.backends.procedural.composer import compose_text  # noqa: E402

PIECES = ("warm background music", "lofi hip hop", "cinematic trailer", "corporate pop", "ambient")


def row(name: str, y: np.ndarray, rate: int) -> str:
    blocks = mm.structural_blocks(y, rate, start=10, end=110)
    std = mm.moving_loudness_std_db(y, rate, start=10, end=110)
    centroid = mm.centroid_variation(y, rate, start=10, end=110)
    return f"| {name} | {std:.2f} | {centroid:.1f} | {blocks.count} ({blocks.distinct} kinds) |"


def main() -> None:
    print("| piece | loudness std (dB) | centroid variation (%) | blocks |")
    print("|---|---|---|---|")
    for i, prompt in enumerate(PIECES):
        audio = compose_text(prompt, 120, seed=i + 1)
        print(row(f"composer: {prompt} (seed {i + 1})", audio.samples, audio.rate))
    reference = ROOT / "tests" / "data" / "reference" / "sugar_plum_fairy.ogg"
    y, rate = soundfile.read(reference, dtype="float32", always_2d=True)
    print(row("reference: Sugar Plum Fairy (Tchaikovsky, arr. Kevin MacLeod, CC-BY 3.0)", y, rate))


if __name__ == "__main__":
    main()
