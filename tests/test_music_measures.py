"""The music measures themselves, on signals made here whose answer is known by construction.

A steady loop (a 4 s pattern of tones and noise bursts, repeated) must read as level-steady,
brightness-steady and one block; an "ABACA" piece of three contrasting 20 s textures must
read as moving, with its blocks and novelty peaks on its joins; clicks must read as
percussive and held tones as harmonic. If a measure could not tell these apart, a test of the
composer built on it would prove nothing.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from music_measures import (
    centroid_variation,
    has_peak_near,
    loudness_lufs,
    moving_loudness,
    moving_loudness_std_db,
    novelty_peaks,
    onset_density,
    percussive_share_db,
    structural_blocks,
)

SR = 22050


def _tone(freq: float, seconds: float, rate: int, harmonics: int = 1, decay: float = 0.0) -> np.ndarray:
    """A tone with ``harmonics`` partials at 1/k amplitude, 10 ms fades, optional exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    env = np.exp(-decay * t) * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return np.asarray(x * env)


def _burst(seconds: float, rate: int, rng: np.random.Generator, decay: float = 40.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return rng.standard_normal(len(t)) * np.exp(-decay * t)


def _place(out: np.ndarray, x: np.ndarray, at: float, rate: int) -> None:
    i = int(at * rate)
    out[i:i + len(x)] += x[: len(out) - i]


@cache
def steady_loop(seconds: float = 100.0, rate: int = SR) -> np.ndarray:
    """A 4 s bar at 120 bpm (hat-like noise and a plucked melody on each beat over a held bass), tiled."""
    rng = np.random.default_rng(1)
    bar = np.zeros(4 * rate)
    for beat, freq in enumerate([220, 262, 330, 392, 330, 262, 294, 247]):
        _place(bar, 0.3 * _burst(0.1, rate, rng), beat * 0.5, rate)
        _place(bar, 0.2 * _tone(freq, 0.45, rate, 3, 4.0), beat * 0.5, rate)
    _place(bar, 0.2 * _tone(110, 3.9, rate, 2), 0.0, rate)
    n = int(seconds * rate)
    return np.tile(bar, -(-n // len(bar)))[:n].astype(np.float32)


def _texture(kind: str, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(int(seconds * rate))
    if kind == "A":  # soft, low, sustained sine chord
        for f in (110, 165, 220):
            out += 0.08 * _tone(f, seconds, rate)
    elif kind == "B":  # loud, high, bright plucked melody with noise hits on every 16th
        for k in range(int(seconds * 4)):
            _place(out, 0.25 * _tone([880, 1175, 988, 1319][k % 4], 0.24, rate, 8, 6.0), k * 0.25, rate)
            _place(out, 0.3 * _burst(0.05, rate, rng, 80.0), k * 0.25, rate)
    else:  # "C": a mid-register organ chord at a middle level
        for f in (392, 494, 587):
            out += 0.1 * _tone(f, seconds, rate, 4)
    return out


@cache
def abaca(block: float = 20.0, rate: int = 44100) -> np.ndarray:
    """A B A C A, ``block`` seconds each, as 44.1 kHz stereo (the right channel 2 dB down)."""
    rng = np.random.default_rng(2)
    mono = np.concatenate([_texture(k, block, rate, rng) for k in "ABACA"])
    return np.stack([mono, mono * 10 ** (-2 / 20)], axis=1).astype(np.float32)


# -- level and brightness ----------------------------------------------------------------------


def test_a_loop_is_level_and_brightness_steady() -> None:
    x = steady_loop()
    assert moving_loudness_std_db(x, SR) < 0.5
    assert centroid_variation(x, SR) < 3.0


def test_contrasting_sections_move_level_and_brightness() -> None:
    x = abaca()
    assert moving_loudness_std_db(x, 44100, start=5, end=95) >= 1.5
    assert centroid_variation(x, 44100, start=5, end=95) >= 6.0


def test_moving_loudness_follows_a_6_db_step_on_the_input_clock() -> None:
    t = np.arange(40 * SR) / SR
    x = np.sin(2 * np.pi * 997 * t) * np.where(t < 20, 0.1, 0.2)
    centres, lufs = moving_loudness(x, SR, window=8.0, hop=0.5, start=2.0)
    assert centres[0] == pytest.approx(6.0)
    before, after = lufs[centres < 16 - 0.1], lufs[centres > 24 + 0.1]
    assert np.ptp(before) < 0.01 and np.ptp(after) < 0.01
    assert after.mean() - before.mean() == pytest.approx(20 * np.log10(2), abs=0.05)


def test_loudness_lufs_reads_a_full_scale_sine_as_bs1770_says() -> None:
    """BS.1770: a 0 dBFS 997 Hz sine in one channel is -3.01 LUFS."""
    t = np.arange(5 * 48000) / 48000
    x = np.sin(2 * np.pi * 997 * t)
    assert loudness_lufs(x, 48000) == pytest.approx(-3.01, abs=0.05)
    assert loudness_lufs(x * 0.5, 48000, start=1, end=4) == pytest.approx(-3.01 - 6.02, abs=0.05)


# -- structure ---------------------------------------------------------------------------------


def test_a_loop_is_one_block_without_novelty_peaks() -> None:
    x = steady_loop()
    blocks = structural_blocks(x, SR)
    assert blocks.count == 1 and blocks.boundaries == ()
    assert len(novelty_peaks(x, SR)) == 0


def test_abaca_has_its_blocks_at_its_joins() -> None:
    blocks = structural_blocks(abaca(), 44100, start=5, end=95)
    assert blocks.count >= 3
    assert len(blocks.boundaries) == 4
    for found, true in zip(blocks.boundaries, (20, 40, 60, 80), strict=True):
        assert abs(found - true) <= 1.0, blocks
    assert blocks.labels == (0, 1, 0, 2, 0)  # A comes back: three kinds of material
    assert blocks.distinct == 3


def test_novelty_peaks_land_on_abrupt_changes() -> None:
    rng = np.random.default_rng(3)
    joins = [13.3, 27.9, 41.1]
    parts = [_texture(k, d, SR, rng) for k, d in zip("ABCA", np.diff([0, *joins, 55.0]), strict=True)]
    peaks = novelty_peaks(np.concatenate(parts), SR)
    for t in joins:
        assert has_peak_near(peaks, t, tolerance=0.5), (t, peaks)
    assert len(peaks) == len(joins), peaks


def test_has_peak_near() -> None:
    peaks = np.array([10.0, 20.4])
    assert has_peak_near(peaks, 20.0)
    assert not has_peak_near(peaks, 15.0)
    assert not has_peak_near(peaks, 20.0, tolerance=0.3)
    assert not has_peak_near(np.array([]), 1.0)


def test_a_repeated_slow_chord_progression_is_one_block() -> None:
    """Four held 3 s chords of different timbre, cycled: each chord is homogeneous, none is a section.

    Chord by chord they are blocks (min_block=1 finds them all); a block must last a phrase.
    """
    voices = ((131, 2, 0.2), (175, 5, 0.15), (196, 1, 0.25), (147, 8, 0.1))
    x = np.tile(np.concatenate([_tone(f, 3.0, SR, h) * a for f, h, a in voices]), 8)
    assert structural_blocks(x, SR).count == 1
    assert structural_blocks(x, SR, min_block=1.0).count > 10


# -- texture -----------------------------------------------------------------------------------


def test_clicks_are_percussive_and_held_tones_harmonic() -> None:
    rng = np.random.default_rng(4)
    clicks = np.zeros(10 * SR)
    for k in range(40):
        _place(clicks, _burst(0.02, SR, rng, 300.0), k * 0.25, SR)
    tones = sum(0.1 * _tone(f, 10.0, SR, 3) for f in (220, 277, 330))
    p_clicks = percussive_share_db(clicks, SR)
    p_tones = percussive_share_db(np.asarray(tones), SR)
    assert p_clicks - p_tones > 10.0, (p_clicks, p_tones)
    assert p_clicks > -3.0


def test_onset_density_counts_hits_per_second() -> None:
    rng = np.random.default_rng(5)
    x = np.zeros(20 * SR)
    for k in range(80):  # 4 per second
        _place(x, _burst(0.05, SR, rng, 60.0), 0.1 + k * 0.25, SR)
    assert onset_density(x, SR) == pytest.approx(4.0, abs=0.3)
    assert onset_density(x, SR, start=5, end=10) == pytest.approx(4.0, abs=0.4)


def test_empty_stretch_is_refused() -> None:
    with pytest.raises(ValueError, match="empty stretch"):
        loudness_lufs(np.zeros(SR), SR, start=2, end=3)
