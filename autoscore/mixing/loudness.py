"""Streaming BS.1770 loudness and true-peak measurement.

pyloudnorm needs the whole signal in memory; an hour of stereo at 48 kHz is 1.4 GB, so
the mixer measures with these instead. The trick that makes one analysis pass enough:
K-weighting is linear, so per 100 ms sub-block the mixer keeps the sums of ``o*o``,
``o*m`` and ``m*m`` of the K-weighted original and music; the energy of ``a*o + b*m`` in
any block is then ``a²·oo + 2ab·om + b²·mm``, and ``gated_loudness`` gives the integrated
loudness of the mix for any pair of gains without touching the audio again.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "SUBBLOCK_SECONDS",
    "KWeighting",
    "TruePeakMeter",
    "gated_loudness",
    "integrated_loudness",
    "k_weighting_ir",
    "k_weighting_sos",
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


IR_TAIL = 1e-8
"""K-weighting's impulse response is cut where the rest holds less than this of its norm."""


@functools.cache
def k_weighting_ir(rate: int) -> np.ndarray:
    """The two biquads' impulse response, long enough to stand in for the recursive filter.

    The slowest pole (the 38 Hz high-pass, critically damped) decays by 1e-8 within about
    75 ms, so a FIR of that length differs from the IIR by less than a part in 10^8,
    far below anything a loudness reading shows. It is computed exactly from the
    frequency response on a grid long enough (over 2 s) that time aliasing is nil.
    """
    m = 1 << (rate.bit_length() + 1)
    z = np.exp(-2j * np.pi * np.arange(m // 2 + 1) / m)
    response = np.ones_like(z)
    for b0, b1, b2, _, a1, a2 in k_weighting_sos(rate):
        response *= (b0 + z * (b1 + z * b2)) / (1 + z * (a1 + z * a2))
    h = np.fft.irfft(response, m)
    tail = np.sqrt(np.cumsum(np.square(h[::-1]))[::-1] / np.square(h).sum())
    return h[: int(np.argmax(tail < IR_TAIL))].copy()


class KWeighting:
    """K-weighting filter that keeps its state between blocks of one stream.

    It runs as a FIR by FFT overlap-save (numpy only), which is faster than the biquads
    through ``scipy.signal.sosfilt`` and spares the score path scipy's second-long import.
    Output comes channel-major (each channel contiguous) handed back as its transpose:
    (frames, channels) like the input, laid out so per-channel sums over sub-blocks
    reshape without copying.
    """

    SEGMENTS = 16
    """FFT segments transformed at once: enough to vectorise, few enough to bound memory."""

    def __init__(self, rate: int, channels: int) -> None:
        taps = k_weighting_ir(rate)
        self.taps = len(taps)
        self.nfft = max(8192, 1 << (8 * self.taps - 1).bit_length())
        self.hop = self.nfft - self.taps + 1
        self.spectrum = np.fft.rfft(taps, self.nfft)
        self.history = np.zeros((channels, self.taps - 1))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        x = np.asarray(block, dtype=np.float64).T
        channels, n = x.shape
        if n == 0:
            return np.zeros((0, channels))
        segments = -(-n // self.hop)
        ext = np.zeros((channels, segments * self.hop + self.taps - 1))
        ext[:, : self.taps - 1] = self.history
        ext[:, self.taps - 1 : self.taps - 1 + n] = x
        self.history = ext[:, n : n + self.taps - 1].copy()
        windows = sliding_window_view(ext, self.nfft, axis=1)[:, :: self.hop]
        out = np.empty((channels, segments * self.hop))
        for first in range(0, segments, self.SEGMENTS):
            part = windows[:, first : first + self.SEGMENTS]
            y = np.fft.irfft(np.fft.rfft(part, axis=-1) * self.spectrum, self.nfft, axis=-1)
            out[:, first * self.hop : (first + part.shape[1]) * self.hop] = y[..., self.taps - 1 :].reshape(
                channels, -1)
        return out[:, :n].T


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

    Odd length 4*16+1 so the delay is a whole number of input samples (16/2 = 8):
    interpolated row n, phase p is the signal at time ``n - PHASE_DELAY + p/4``.
    """
    n = OVERSAMPLE * TAPS_PER_PHASE + 1
    cutoff = 0.9 / OVERSAMPLE  # of Nyquist: a Kaiser-windowed sinc, normalised to unit gain at DC
    h = cutoff * np.sinc(cutoff * (np.arange(n) - (n - 1) / 2)) * np.kaiser(n, 6.0)
    h = h / h.sum() * OVERSAMPLE
    h = np.concatenate([h, np.zeros(OVERSAMPLE - 1)])
    return h.reshape(-1, OVERSAMPLE).T.copy()


PHASES = _interpolator()
PHASE_DELAY = TAPS_PER_PHASE // 2
"""Input samples by which the interpolated signal lags its input."""
_PHASES32 = [
    [(tap, np.float32(c)) for tap, c in enumerate(row) if c != 0.0] for row in PHASES
]
"""Nonzero taps of each phase as (delay, coefficient) pairs; ext row ``n - tap`` meets coefficient ``tap``."""
PHASE_GAIN_BOUND = float(np.abs(PHASES).sum(axis=1).max())
"""No interpolated value can exceed the sample peak of the taps' span by more than this factor."""


TILE = 2048
"""Frames judged at once when deciding where interpolation is needed: coarse enough to be cheap."""


def oversampled_peaks(history: np.ndarray, block: np.ndarray, threshold: float) -> NDArray[np.float64]:
    """Per-frame max of the 4x-interpolated |signal| over phases and channels, only where it matters.

    ``history`` is the previous ``TAPS_PER_PHASE`` input frames (zeros at the start), so
    block edges never show.

    Frames whose interpolated values provably cannot exceed ``threshold`` (their taps'
    span is quiet) are reported as 0, so mostly-quiet material costs almost nothing. The
    test is made per tile of ``TILE`` frames (one max per tile is cheap; per frame it
    cost as much as the interpolation), and busy tiles are interpolated whole.
    """
    n = len(block)
    peaks = np.zeros(n)
    if n == 0:
        return peaks
    ext = np.concatenate([history, block]).astype(np.float32)
    for lo, hi in _busy_runs(ext, len(history), threshold):
        peaks[lo:hi] = _interpolated_max(ext, len(history) + lo, hi - lo)
    return peaks


def _busy_runs(ext: np.ndarray, start: int, threshold: float) -> list[tuple[int, int]]:
    """Frame ranges (relative to ``ext[start:]``) whose interpolated values may exceed ``threshold``.

    A frame's taps reach back ``TAPS_PER_PHASE`` frames, into the previous tile (or the
    history), so a tile is busy when it or its predecessor is loud enough.
    """
    n = len(ext) - start
    tiles = -(-n // TILE)
    padded = np.zeros((tiles * TILE, ext.shape[1]), np.float32)
    padded[:n] = ext[start:]
    tile_peak = np.abs(padded.reshape(tiles, -1)).max(axis=1)
    before = float(np.abs(ext[:start]).max(initial=0.0))
    reach = np.maximum(tile_peak, np.concatenate([[before], tile_peak[:-1]]))
    busy = np.concatenate([[False], reach * PHASE_GAIN_BOUND > threshold, [False]])
    edges = np.flatnonzero(np.diff(busy.astype(np.int8)))
    return [(int(a) * TILE, min(int(b) * TILE, n)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def _interpolated_max(ext: np.ndarray, first: int, count: int) -> np.ndarray:
    """Max over phases and channels of the interpolated |signal| for rows ``first..first+count`` of ``ext``.

    Each phase is a short FIR, done as one multiply-add per tap over the whole range in
    float32: several times faster than FFT convolution or gathering tap windows, and
    float32's error (1e-7 relative) is far below what a peak meter reports.
    """
    best = np.zeros(count, np.float32)
    acc = np.empty((count, ext.shape[1]), np.float32)
    tmp = np.empty_like(acc)
    for phase in _PHASES32:
        acc.fill(0.0)
        for tap, coefficient in phase:
            np.multiply(ext[first - tap : first - tap + count], coefficient, out=tmp)
            acc += tmp
        np.abs(acc, out=acc)
        for channel in range(acc.shape[1]):
            np.maximum(best, acc[:, channel], out=best)
    return best


class TruePeakMeter:
    """Streaming 4x-oversampled peak, skipping blocks that provably cannot raise the maximum."""

    def __init__(self, channels: int) -> None:
        self.history = np.zeros((TAPS_PER_PHASE, channels), np.float64)
        self.peak = 0.0

    def add(self, block: np.ndarray) -> None:
        if len(block) == 0:
            return
        self.peak = max(self.peak, float(oversampled_peaks(self.history, block, self.peak).max()))
        self.history = _last_frames(self.history, block)

    def finish(self) -> None:
        """Flush the filter's tail so the last samples' neighbourhood is measured too."""
        self.add(np.zeros((TAPS_PER_PHASE, self.history.shape[1])))

    @property
    def dbtp(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


def _last_frames(history: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The ``TAPS_PER_PHASE`` frames that end ``history`` + ``block``, without copying the whole block."""
    if len(block) >= TAPS_PER_PHASE:
        return block[-TAPS_PER_PHASE:].astype(np.float64)
    return np.concatenate([history, block])[-TAPS_PER_PHASE:].astype(np.float64)
