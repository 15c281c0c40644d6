"""The true-peak lookahead limiter, and the delay line that keeps side signals in step with it.

Kept apart from the mix because it is a signal processor of its own, tested on its own
(the ceiling holds, the gain never jumps), and used by the render pass and by the
loudness estimate that predicts what it will take away.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from .loudness import PHASE_DELAY, TAPS_PER_PHASE, oversampled_peaks

__all__ = ["DelayLine", "LookaheadLimiter", "sliding_min"]


class LookaheadLimiter:
    """True-peak limiter whose gain moves smoothly enough not to distort.

    For each frame, the required gain comes from the 4x-oversampled peak around it; a
    sliding minimum over the lookahead window holds it, a linear-in-dB release lets it
    recover, and a moving average over the same window turns corners into ramps. The
    moving average of values each at or below the requirement stays at or below it, so
    the ceiling holds while the gain never jumps. Audio is delayed by ``delay`` frames
    so the gain can start falling before the peak arrives.
    """

    def __init__(self, ceiling_db: float, rate: int, channels: int = 2, *,
                 lookahead_ms: float = 5.0, release_db_per_s: float = 120.0) -> None:
        self.ceiling: float = 10 ** (ceiling_db / 20)
        self.window = max(2, round(rate * lookahead_ms / 1000))
        self.delay = PHASE_DELAY + self.window - 1
        self.slope = release_db_per_s / rate
        self.channels = channels
        self._tp_history = np.zeros((TAPS_PER_PHASE, channels))
        self._prev_peak = 0.0
        self._required_history = np.ones(self.window - 1)
        self._release_carry = 1.0
        self._hold_history = np.ones(self.window - 1)
        self._audio_history = np.zeros((self.delay, channels), np.float32)
        self.min_gain = 1.0

    def _required(self, block: np.ndarray) -> np.ndarray:
        """Gain each frame needs (concerning the input ``PHASE_DELAY`` frames earlier)."""
        raw = oversampled_peaks(self._tp_history, block, self.ceiling)
        previous, self._prev_peak = self._prev_peak, float(raw[-1])
        self._tp_history = np.concatenate([self._tp_history, block[-TAPS_PER_PHASE:]])[-TAPS_PER_PHASE:]
        if previous <= self.ceiling and float(raw.max()) <= self.ceiling:
            return np.ones(len(block))
        peaks: NDArray[np.float64] = np.maximum(raw, np.concatenate([[previous], raw[:-1]]))
        with np.errstate(divide="ignore"):
            return np.minimum(1.0, self.ceiling / peaks)

    def _hold(self, required: np.ndarray) -> np.ndarray:
        w = self.window
        ext = np.concatenate([self._required_history, required])
        self._required_history = ext[len(ext) - (w - 1):]
        if ext.min() >= 1.0:
            return np.ones(len(required))
        return sliding_min(ext, w)

    def _release(self, held: np.ndarray) -> np.ndarray:
        if self._release_carry >= 1.0 and held.min() >= 1.0:
            return held
        return np.concatenate([self._release_part(held[i : i + RELEASE_CHUNK])
                               for i in range(0, len(held), RELEASE_CHUNK)])

    def _release_part(self, held: np.ndarray) -> np.ndarray:
        """Linear-in-dB recovery, done in linear gain: a dB slope is a constant factor per frame.

        gain[k] = min(1, min over j <= k of held[j] * rise**(k - j)), with the previous
        block's recovery as ``_release_carry`` (its gain continued to index 0 of this one).
        Multiplying by precomputed powers of ``rise`` avoids a log and a power per frame.
        """
        n = len(held)
        up = _rising(self.slope)[:n]
        lowest = np.minimum(np.minimum.accumulate(held / up), self._release_carry)
        self._release_carry = min(float(lowest[-1]) * float(_rising(self.slope)[n]), 1.0)
        return np.minimum(lowest * up, 1.0)

    def _smooth(self, released: np.ndarray) -> np.ndarray:
        w = self.window
        ext = np.concatenate([self._hold_history, released])
        self._hold_history = ext[len(ext) - (w - 1):]
        if ext.min() >= 1.0:
            return np.ones(len(released))
        c: NDArray[np.float64] = np.concatenate([[0.0], np.cumsum(ext)])
        return (c[w:] - c[:-w]) / w

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limited audio delayed by ``delay`` frames, and the gain applied to each of its frames."""
        gain = self._smooth(self._release(self._hold(self._required(block))))
        ext = np.concatenate([self._audio_history, block.astype(np.float32, copy=False)])
        out, self._audio_history = ext[: len(block)], ext[len(block):]
        lowest = float(gain.min(initial=1.0))
        self.min_gain = min(self.min_gain, lowest)
        return (out * gain[:, None]).astype(np.float32) if lowest < 1.0 else out, gain

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        return self.process(np.zeros((self.delay, self.channels), np.float32))


def sliding_min(x: np.ndarray, w: int) -> np.ndarray:
    """Minimum of each window ``x[i : i + w]``, in O(n) whatever ``w`` (van Herk / Gil-Werman).

    Cut ``x`` into blocks of ``w``: every window spans the tail of one block and the head
    of the next, so it is the smaller of a running minimum from the right (over the
    tail) and one from the left (over the head).
    """
    n = len(x)
    if w <= 1:
        return x.copy()
    if n < w:
        return np.zeros(0)
    padded = np.full(-(-n // w) * w, np.inf)
    padded[:n] = x
    blocks = padded.reshape(-1, w)
    from_left = np.minimum.accumulate(blocks, axis=1).ravel()
    from_right = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(from_right[: n - w + 1], from_left[w - 1 : n])


RELEASE_CHUNK = 1 << 18
"""Frames released at once: powers of the per-frame rise stay far inside float64 (1e164 at most)."""


@functools.cache
def _rising(slope_db: float) -> NDArray[np.float64]:
    """``rise**k`` for k = 0..RELEASE_CHUNK, rise being the release's gain factor per frame."""
    return 10 ** (slope_db * np.arange(RELEASE_CHUNK + 1) / 20)


class DelayLine:
    """Delays side signals by the limiter's latency so every output stays sample-aligned."""

    def __init__(self, delay: int, channels: int = 2) -> None:
        self._history = np.zeros((delay, channels), np.float32)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        ext = np.concatenate([self._history, block])
        out, self._history = ext[: len(block)], ext[len(block):]
        return out
