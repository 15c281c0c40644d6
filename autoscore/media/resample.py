"""Sample-rate conversion, in one place.

Generators answer at their own rate (the composer at 44.1 kHz, the API at whatever it
chooses) while the mix runs at 48 kHz. libsoxr, through the ``soxr`` wheel, does the
conversion: band-limited, linear-phase and delay-compensated, so a resampled chunk lines
up with the original sample for sample. It replaced ``scipy.signal.resample_poly``,
which was slower, and whose import alone cost every ``autoscore score`` about a second.
"""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import NDArray

__all__ = ["resample"]


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (frames, channels) at ``target`` Hz, float32, ``round(frames * target / rate)`` frames.

    Callers that need an exact length trim or pad the result themselves; this never
    shifts the audio in time.
    """
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if rate == target or len(x) == 0:
        return x
    if x.ndim != 2:
        raise ValueError(f"resample wants (frames, channels), got shape {x.shape}")
    out: NDArray[np.float32] = soxr.resample(x, rate, target, quality="HQ")  # untyped; keeps x's dtype
    return out
