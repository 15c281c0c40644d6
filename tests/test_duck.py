"""Speech detection and the ducking envelope, on a recording placed at known offsets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autoscore.errors import OptionError
from autoscore.media.ffmpeg import decode_audio
from autoscore.mixing.duck import (
    VAD_RATE,
    build_envelope,
    detect_loud,
    detect_speech,
    make_scanner,
    smooth_regions,
)
from autoscore.text.presets import MixSettings

VOICE = Path(__file__).parent / "data" / "voice.flac"
OFFSETS = (1.5, 9.0)
SETTINGS = MixSettings()


@pytest.fixture(scope="module")
def voice16k() -> np.ndarray:
    return decode_audio(VOICE, VAD_RATE, 1).samples[:, 0]


@pytest.fixture(scope="module")
def speech16k(voice16k: np.ndarray) -> np.ndarray:
    """16 s: the recording at OFFSETS over a faint noise floor (-60 dBFS)."""
    rng = np.random.default_rng(3)
    signal = (rng.standard_normal(16 * VAD_RATE) * 1e-3).astype(np.float32)
    for offset in OFFSETS:
        start = round(offset * VAD_RATE)
        signal[start : start + len(voice16k)] += voice16k
    return signal


def test_voice_recording_is_small_and_short(voice16k: np.ndarray) -> None:
    assert 3.0 <= len(voice16k) / VAD_RATE <= 6.0
    assert VOICE.stat().st_size < 200_000


def test_speech_found_where_it_was_placed(speech16k: np.ndarray, voice16k: np.ndarray) -> None:
    length = len(voice16k) / VAD_RATE
    regions = detect_speech(speech16k, SETTINGS)
    assert len(regions) == len(OFFSETS)
    for (start, end), offset in zip(regions, OFFSETS, strict=True):
        assert start == pytest.approx(offset, abs=0.1)
        assert end == pytest.approx(offset + length, abs=0.15)


def test_silence_and_noise_floor_have_no_speech() -> None:
    assert detect_speech(np.zeros(3 * VAD_RATE, np.float32), SETTINGS) == ()
    rng = np.random.default_rng(5)
    assert detect_speech((rng.standard_normal(3 * VAD_RATE) * 1e-3).astype(np.float32), SETTINGS) == ()


def test_streaming_detection_matches_one_call(speech16k: np.ndarray) -> None:
    scanner = make_scanner(SETTINGS)
    for piece in np.array_split(speech16k, 37):  # odd sizes: frames straddle block edges
        scanner.add(piece)
    assert scanner.regions(SETTINGS) == detect_speech(speech16k, SETTINGS)


def test_loud_mode_finds_bursts_in_any_sound() -> None:
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal(12 * VAD_RATE) * 1e-3).astype(np.float32)
    for start, end in ((2.0, 4.0), (7.0, 8.5)):
        a, b = round(start * VAD_RATE), round(end * VAD_RATE)
        signal[a:b] += (rng.standard_normal(b - a) * 0.2).astype(np.float32)
    regions = detect_loud(signal, replace(SETTINGS, duck_on="loud"))
    assert len(regions) == 2
    assert regions[0] == pytest.approx((2.0, 4.0), abs=0.2)
    assert regions[1] == pytest.approx((7.0, 8.5), abs=0.2)
    assert detect_loud(np.zeros(VAD_RATE, np.float32), SETTINGS) == ()


def test_unknown_duck_mode_is_a_usage_error() -> None:
    with pytest.raises(OptionError, match="duck_on"):
        make_scanner(replace(SETTINGS, duck_on="always"))


def test_short_gaps_are_held_and_blips_dropped() -> None:
    frame = 0.01
    flags = np.zeros(300, bool)
    flags[10:50] = True  # 0.10-0.50
    flags[70:100] = True  # gap of 0.2 s < hold 0.4 s: merged
    flags[250:255] = True  # 50 ms blip < 150 ms minimum: dropped
    assert smooth_regions(flags, frame, SETTINGS) == ((0.1, 1.0),)
    flags[150:170] = True  # gap of 0.5 s > hold: its own region (0.2 s long: kept)
    assert smooth_regions(flags, frame, SETTINGS) == ((0.1, 1.0), (1.5, 1.7))


def _db(envelope_gains: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(envelope_gains, 1e-12))


@pytest.mark.parametrize("attack_ms", [120.0, 400.0])
def test_dip_is_complete_at_speech_onset(attack_ms: float) -> None:
    settings = replace(SETTINGS, fade_in=0.0, fade_out=0.0, attack_ms=attack_ms)
    env = build_envelope([(3.0, 5.0)], 10.0, settings)
    rate = 48000
    gains = _db(env.gains(0, 10 * rate, rate))
    onset = 3 * rate
    depth = settings.duck_depth_db
    assert gains[onset] == pytest.approx(-depth, abs=0.05)
    assert np.all(gains[onset : 5 * rate] <= -depth + 0.05)
    before = onset - round(settings.lookahead_ms / 1000 * rate)
    assert np.all(gains[: before - 1] == pytest.approx(0.0, abs=1e-6))
    after = round((5.0 + settings.release_ms / 1000) * rate) + rate // 100
    assert np.all(np.abs(gains[after:]) < 1e-6)


def test_envelope_is_smooth_per_sample() -> None:
    """No zipper noise: the gain never steps by more than a tiny amount between samples."""
    env = build_envelope([(1.0, 1.3), (1.9, 4.0), (4.5, 6.0)], 8.0, SETTINGS)
    rate = 48000
    gains = env.gains(0, 8 * rate, rate)
    assert np.max(np.abs(np.diff(_db(gains[rate // 2 : -4 * rate])))) < 0.02
    assert np.max(np.abs(np.diff(gains))) < 1e-3


def test_the_envelope_does_not_fade() -> None:
    """assemble owns the music's fades; a second fade here would double them."""
    settings = replace(SETTINGS, fade_in=1.0, fade_out=2.0)
    env = build_envelope((), 10.0, settings)
    assert np.all(env.gains(0, 10_000, 1000) == 1.0)


def test_block_gains_equal_whole_gains() -> None:
    env = build_envelope([(2.0, 3.0)], 6.0, SETTINGS)
    whole = env.gains(0, 6 * 48000, 48000)
    pieces = np.concatenate([env.gains(s, 7777, 48000) for s in range(0, 6 * 48000, 7777)])[: len(whole)]
    np.testing.assert_array_equal(whole, pieces)
