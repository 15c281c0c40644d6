"""Issue 16, heard: the notes change the music where they say, and music without notes has a form.

Everything here is measured from rendered audio with ``music_measures`` (librosa,
pyloudnorm), never read back from a plan or from the composer's own structures. The
sample is scored end to end (probe, notes, plan, composer, assemble, mix) and its music
stem is measured: that is what the user's notes must have reached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from music_measures import (
    centroid_variation,
    has_peak_near,
    loudness_lufs,
    moving_loudness_std_db,
    novelty,
    novelty_peaks,
    onset_density,
    percussive_share_db,
    structural_blocks,
)

from autoscore.music.backends.procedural.composer import compose_text
from autoscore.pipeline import score

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "workshop.mp4"
REFERENCE = Path(__file__).resolve().parent / "data" / "reference" / "sugar_plum_fairy.ogg"
BOUNDARIES = (8.0, 16.0, 24.0)
"""Where samples/workshop.notes.txt changes section: calm, host, montage [energy: high], ending [no drums]."""


@pytest.fixture(scope="module")
def sample_music(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    """The music stem of the bundled sample scored with its notes by the embedded composer."""
    out = tmp_path_factory.mktemp("sample")
    score(SAMPLE, out / "scored.mp4", backend="procedural", use_cache=False, stems=out / "stems")
    samples, rate = soundfile.read(out / "stems" / "music.wav", dtype="float32", always_2d=True)
    assert abs(len(samples) / rate - 30.0) < 0.1
    return samples, rate


def test_high_energy_section_is_louder_or_busier_than_the_calm_opening(
    sample_music: tuple[np.ndarray, int],
) -> None:
    y, sr = sample_music
    louder = loudness_lufs(y, sr, 16, 24) - loudness_lufs(y, sr, 0, 8)
    busier = onset_density(y, sr, 16, 24) / max(onset_density(y, sr, 0, 8), 1e-9)
    assert louder >= 3.0 or busier >= 1.5, f"montage vs opening: {louder:+.1f} LU, {busier:.2f}x onsets"


def test_no_drums_section_has_its_percussion_gone(sample_music: tuple[np.ndarray, int]) -> None:
    y, sr = sample_music
    ending = percussive_share_db(y, sr, 24, 30)
    rest = percussive_share_db(y, sr, 0, 24)
    assert ending <= rest - 6.0, f"[no drums] ending {ending:.1f} dB vs the rest {rest:.1f} dB"


def test_music_changes_at_every_section_boundary(sample_music: tuple[np.ndarray, int]) -> None:
    """A novelty peak within half a second of each boundary, and the strongest changes of
    the piece are those: a loop's chord and pattern changes give peaks too, anywhere. The
    last 3 s are left out, where the final chord rings out (a change of its own)."""
    y, sr = sample_music
    peaks = novelty_peaks(y, sr)
    times, curve = novelty(y, sr)
    for t in BOUNDARIES:
        assert has_peak_near(peaks, t, 0.5), f"no change within 0.5 s of {t:g} s: peaks {np.round(peaks, 2)}"
    inside = [p for p in peaks if p < len(y) / sr - 3.0]
    height = {p: float(curve[np.argmin(np.abs(times - p))]) for p in inside}
    strongest = sorted(inside, key=height.__getitem__)[-len(BOUNDARIES):]
    assert all(min(abs(p - t) for t in BOUNDARIES) <= 0.5 for p in strongest), (
        f"the strongest changes are at {np.round(sorted(strongest), 2)}, not at the sections {BOUNDARIES}"
    )


def test_no_drums_in_the_middle_of_a_piece(tmp_path: Path) -> None:
    """``[no drums]`` on a middle section: its percussive share drops, then the drums return.
    (The sample's ``[no drums]`` is its ending, which rings out on a chord anyway.)"""
    source = tmp_path / "episode.wav"
    soundfile.write(source, np.zeros((60 * 16000, 1), np.float32), 16000)
    notes = tmp_path / "episode.notes.txt"
    notes.write_text("0:00 upbeat product tour\n0:20 a quiet moment [no drums]\n0:40 back to the tour\n")
    score(source, tmp_path / "scored.wav", notes=notes, backend="procedural", use_cache=False,
          stems=tmp_path / "stems")
    y, sr = soundfile.read(tmp_path / "stems" / "music.wav", dtype="float32", always_2d=True)
    quiet = percussive_share_db(y, sr, 21, 39)
    before, after = percussive_share_db(y, sr, 1, 19), percussive_share_db(y, sr, 41, 55)
    assert quiet <= max(before, after) - 6.0, f"[no drums] {quiet:.1f} dB, around {before:.1f}, {after:.1f}"
    assert min(before, after) >= quiet + 4.0, "the drums must come back after the quiet section"


@pytest.mark.parametrize("prompt", ["warm modern background music, piano, soft pads, gentle drums",
                                    "lofi hip hop study beat", "calm ambient pads"])
def test_a_piece_without_notes_has_a_form_not_a_loop(prompt: str) -> None:
    audio = compose_text(prompt, 120, seed=3)
    y, sr = audio.samples, audio.rate
    std = moving_loudness_std_db(y, sr, start=10, end=110)
    centroid = centroid_variation(y, sr, start=10, end=110)
    blocks = structural_blocks(y, sr, start=10, end=110)
    assert std >= 1.5, f"8 s loudness varies by {std:.2f} dB"
    assert centroid >= 6.0, f"8 s spectral centroid varies by {centroid:.1f} %"
    assert blocks.count >= 3, f"self-similarity shows {blocks.count} blocks at {blocks.boundaries}"


def test_the_measures_hear_the_form_of_a_human_composition() -> None:
    """The thresholds above are met by music a person wrote (Tchaikovsky's Sugar Plum Fairy,
    arranged by Kevin MacLeod, CC-BY 3.0; see tests/data/reference/README.md), so they ask
    for a property of composed music, not for a quirk of the embedded composer."""
    y, sr = soundfile.read(REFERENCE, dtype="float32", always_2d=True)
    assert moving_loudness_std_db(y, sr, start=10, end=110) >= 1.5
    assert centroid_variation(y, sr, start=10, end=110) >= 6.0
    assert structural_blocks(y, sr, start=10, end=110).count >= 3


def test_a_short_piece_is_not_cut_into_parts() -> None:
    """Under 45 s there is no breakdown or build to fit: a clip's music stays one texture."""
    audio = compose_text("warm modern background music, piano, soft pads, gentle drums", 30, seed=3,
                         opens=False, ends=False)
    assert moving_loudness_std_db(audio.samples, audio.rate, start=4, end=26) < 1.5
