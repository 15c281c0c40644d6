"""Streaming BS.1770 loudness and true-peak measurement.

pyloudnorm needs the whole signal in memory; an hour of stereo at 48 kHz is 1.4 GB, so
the mixer measures with these instead. The trick that makes one analysis pass enough:
K-weighting is linear, so per 100 ms sub-block the mixer keeps the sums of ``o*o``,
``o*m`` and ``m*m`` of the K-weighted original and music; the energy of ``a*o + b*m`` in
any block is then ``a²·oo + 2ab·om + b²·mm``, and ``gated_loudness`` gives the integrated
loudness of the mix for any pair of gains without touching the audio again.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import firwin, oaconvolve, sosfilt

__all__ = [
    "SUBBLOCK_SECONDS",
    "KWeighting",
    "TruePeakMeter",
    "gated_loudness",
    "integrated_loudness",
    "k_weighting_sos",
    "oversampled",
    "oversampled_peaks",
]

SUBBLOCK_SECONDS = 0.1
"""BS.1770 gating blocks are 400 ms long and start every 100 ms: four sub-blocks each."""

ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
OVERSAMPLE = 4
TAPS_PER_PHASE = 16


def k_weighting_sos(rate: int) -> np.ndarray:
    """The two BS.1770 biquads (shelf, then high-pass) for any rate, as second-order sections.

    Formulas from libebur128, which reproduce the standard's 48 kHz coefficients exactly.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
        1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0,
    ]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


class KWeighting:
    """K-weighting filter that keeps its state between blocks of one stream."""

    def __init__(self, rate: int, channels: int) -> None:
        self.sos = k_weighting_sos(rate)
        self.state = np.zeros((self.sos.shape[0], 2, channels))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out, self.state = sosfilt(self.sos, block.astype(np.float64), axis=0, zi=self.state)
        return out


def gated_loudness(subblock_energy: np.ndarray, subblock: int) -> float | None:
    """BS.1770-4 integrated loudness from per-100 ms energies (sum of squares over all channels)."""
    if len(subblock_energy) < 4:
        return None
    c = np.cumsum(np.concatenate([[0.0], subblock_energy]))
    block_power = (c[4:] - c[:-4]) / (4 * subblock)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(block_power)
    passed = block_power[block_lufs > ABSOLUTE_GATE]
    if len(passed) == 0:
        return None
    relative = -0.691 + 10 * math.log10(float(np.mean(passed))) + RELATIVE_GATE
    passed = block_power[(block_lufs > ABSOLUTE_GATE) & (block_lufs > relative)]
    return -0.691 + 10 * math.log10(float(np.mean(passed)))


def integrated_loudness(samples: np.ndarray, rate: int) -> float | None:
    """Integrated loudness of a (frames, channels) array in memory; for short material and tests."""
    kw = KWeighting(rate, samples.shape[1])(samples)
    subblock = round(rate * SUBBLOCK_SECONDS)
    whole = len(kw) // subblock * subblock
    energy = np.square(kw[:whole]).reshape(-1, subblock * samples.shape[1]).sum(axis=1)
    return gated_loudness(energy, subblock)


def _interpolator() -> np.ndarray:
    """Linear-phase low-pass for 4x upsampling, split into its four phases (rows).

    Odd length 4*16+1 so the delay is a whole number of input samples (16/2 = 8).
    """
    n = OVERSAMPLE * TAPS_PER_PHASE + 1
    h = firwin(n, 0.9 / OVERSAMPLE, window=("kaiser", 6.0)) * OVERSAMPLE
    h = np.concatenate([h, np.zeros(OVERSAMPLE - 1)])
    return h.reshape(-1, OVERSAMPLE).T.copy()


PHASES = _interpolator()
GATHER_ROWS = 8192
"""Frames gathered at once (each a taps x channels window) so memory stays at a few MB."""
PHASE_DELAY = TAPS_PER_PHASE // 2
"""Input samples by which ``oversampled`` output lags its input."""
PHASE_GAIN_BOUND = float(np.abs(PHASES).sum(axis=1).max())
"""No interpolated value can exceed the sample peak of the taps' span by more than this factor."""


def oversampled(history: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Causal 4x interpolation: |values| shaped (frames, 4, channels) for the frames of ``block``.

    ``history`` is the previous ``TAPS_PER_PHASE`` input frames (zeros at the start), so
    block edges never show. Row n, phase p is the signal at time n - PHASE_DELAY + p/4.
    """
    ext = np.concatenate([history, block]).astype(np.float64)
    phases = [
        oaconvolve(ext, PHASES[p][:, None], mode="valid", axes=0)[-len(block) :]
        for p in range(OVERSAMPLE)
    ]
    return np.abs(np.stack(phases, axis=1))


def oversampled_peaks(history: np.ndarray, block: np.ndarray, threshold: float) -> np.ndarray:
    """Per-frame max of ``oversampled`` over phases and channels, computed only where it matters.

    Frames whose interpolated values provably cannot exceed ``threshold`` (their taps'
    span is quiet) are reported as 0, so mostly-quiet material costs almost nothing.
    """
    n = len(block)
    ext = np.concatenate([history, block]).astype(np.float64)
    taps = PHASES.shape[1]
    frame_peak = np.abs(ext).max(axis=1)
    span_peak = maximum_filter1d(frame_peak, taps, origin=(taps - 1) // 2)[len(ext) - n :]
    rows = np.flatnonzero(span_peak * PHASE_GAIN_BOUND > threshold)
    if len(rows) * 4 > n:
        # Busy block: FFT convolution of everything beats gathering most of it.
        return oversampled(history, block).max(axis=(1, 2))
    peaks = np.zeros(n)
    for chunk in np.array_split(rows, max(1, len(rows) // GATHER_ROWS)):
        if len(chunk) == 0:
            continue
        # ext row of block frame n is n + len(history); tap i reads ext row (that - i).
        idx = chunk[:, None] + len(history) - np.arange(taps)[None, :]
        values = np.einsum("rtc,pt->rpc", ext[idx], PHASES)
        peaks[chunk] = np.abs(values).max(axis=(1, 2))
    return peaks


class TruePeakMeter:
    """Streaming 4x-oversampled peak, skipping blocks that provably cannot raise the maximum."""

    def __init__(self, channels: int) -> None:
        self.history = np.zeros((TAPS_PER_PHASE, channels), np.float64)
        self.peak = 0.0

    def add(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        self.peak = max(self.peak, float(oversampled_peaks(self.history, block, self.peak).max()))
        ext = np.concatenate([self.history, block])
        self.history = ext[-TAPS_PER_PHASE:].astype(np.float64)

    def finish(self) -> None:
        """Flush the filter's tail so the last samples' neighbourhood is measured too."""
        self.add(np.zeros((TAPS_PER_PHASE, self.history.shape[1])))

    @property
    def dbtp(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf
