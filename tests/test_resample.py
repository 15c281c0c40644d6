"""Sample-rate conversion: right length, no time shift, no aliasing."""

from __future__ import annotations

import numpy as np
import pytest

from autoscore.media.resample import resample


def tone(freq: float, rate: int, seconds: float, channels: int = 2) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.repeat(np.sin(2 * np.pi * freq * t)[:, None], channels, axis=1).astype(np.float32)


@pytest.mark.parametrize(("rate", "target"), [(44100, 48000), (48000, 44100), (22050, 48000), (32000, 24000)])
def test_a_tone_comes_out_in_place_and_in_length(rate: int, target: int) -> None:
    x = tone(1000.0, rate, 1.5)
    y = resample(x, rate, target)
    assert y.dtype == np.float32 and y.shape == (round(len(x) * target / rate), 2)
    ideal = tone(1000.0, target, len(y) / target)
    inner = slice(target // 10, len(y) - target // 10)  # the edges ring against the silence beyond
    assert np.abs(y[inner] - ideal[inner]).max() < 1e-3


def test_content_above_the_new_nyquist_is_removed() -> None:
    y = resample(tone(10_000.0, 48000, 1.0, channels=1), 48000, 16000)
    assert float(np.sqrt(np.mean(y[1600:-1600] ** 2))) < 1e-3


def test_same_rate_and_empty_input_pass_through() -> None:
    x = tone(440.0, 48000, 0.1)
    assert resample(x, 48000, 48000) is x
    assert resample(np.zeros((0, 2), np.float32), 44100, 48000).shape == (0, 2)
