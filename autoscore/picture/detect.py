"""Where shots change, decided from small gray frames: pure, so every rule is testable on arrays.

The media edge decodes the picture at about 160 pixels wide in gray and hands the frames
here in batches; ``FrameScorer`` turns each frame into two numbers and keeps nothing
else, so memory stays flat however long the input is:

- ``content``: how different the frame is from the one before once brightness is taken
  out. Each frame is averaged into 4x4-pixel blocks (a camera pan of a pixel or two
  moves the blocks by a fraction, a cut replaces them), then made zero-mean and divided
  by its own contrast, floored at ``std_floor`` gray levels. A fade or an exposure
  change scales the frame, which the normalisation undoes; near black, the floor makes
  the last steps of a fade small instead of amplifying noise into a cut.
- ``motion``: the plain mean absolute difference of the frames, 0..1, which is what a
  viewer sees as movement (and what the music's energy follows).

``cut_frames`` then applies PySceneDetect's AdaptiveDetector rule: a frame is a cut when
its content score is at least ``ratio`` times the mean of its ``window`` neighbours on
each side and above an absolute floor. A steady pan or a noisy shot raises its
neighbours as much as itself and so never passes the ratio; a cut stands out of both of
its shots. A minimum shot length keeps strobe and glitch edits from turning into
thousands of sections, and bounds the work: one pass over the scores, whatever they hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models import PictureCuts

__all__ = ["DetectSettings", "FrameScorer", "FrameStats", "cut_frames", "motion_samples", "picture_cuts"]


@dataclass(frozen=True)
class DetectSettings:
    """The detector's knobs; ``key()`` names them, for the cache and the plan."""

    width: int = 160
    """Analysis width in pixels: cuts are shapes and tones changing, which 160 pixels show."""
    block: int = 4
    """Side of the averaging blocks of the content score, in analysis pixels."""
    ratio: float = 3.0
    """A cut's score over the mean of its quieter side's neighbours (AdaptiveDetector's default)."""
    busy_ratio: float = 1.3
    """A cut's score over the mean of its busier side's neighbours."""
    min_score: float = 0.3
    """Absolute floor, in units of the frames' contrast (two unrelated images score about 1.1)."""
    window: int = 2
    """Neighbours on each side that the ratio compares against."""
    min_shot: float = 0.3
    """Seconds: a cut closer than this to the previous one (or to the start) is dropped."""
    std_floor: float = 8.0
    """Gray levels: contrast below this counts as this much, so fades to black stay quiet."""
    tone_weight: float = 4.0
    """Weight of the tone distance (earth mover's, 0..1 of the gray scale) added to the shape
    score: a moving shot keeps its tones while its shapes change, so tones make a cut stand
    out of fast motion. At 4, a shift of a quarter of the gray scale weighs 1."""
    epsilon: float = 0.02
    """Added to the neighbours' mean, so a cut out of a perfectly still shot has a finite ratio."""
    motion_step: float = 0.5

    def key(self) -> str:
        return (f"adaptive-v2 w{self.width} b{self.block} r{self.ratio:g}/{self.busy_ratio:g} "
                f"s{self.min_score:g} n{self.window} m{self.min_shot:g} f{self.std_floor:g} "
                f"t{self.tone_weight:g}")

    def analysis_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) to decode at: ``width`` wide or narrower, the aspect kept, both
        multiples of ``block`` (so blocks tile the frame) and never larger than the source."""
        b = self.block
        w = max(b, min(self.width, width) // b * b)
        h = max(b, round(w * height / max(width, 1) / b) * b)
        return w, h


@dataclass(frozen=True, eq=False)
class FrameStats:
    """Per decoded frame: content score and motion (both 0 for the first frame)."""

    content: np.ndarray
    motion: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.content)


class FrameScorer:
    """Scores gray frames batch by batch, carrying only the previous frame across batches."""

    def __init__(self, settings: DetectSettings, width: int, height: int) -> None:
        self.settings = settings
        self.width = width
        self.height = height
        self._prev: np.ndarray | None = None
        self._content: list[np.ndarray] = []
        self._motion: list[np.ndarray] = []

    def add(self, frames: np.ndarray) -> None:
        """``frames``: uint8, shaped (n, height, width)."""
        if len(frames) == 0:
            return
        # Score each frame against the one before it: the last of the previous batch, or
        # itself for the very first frame (which then scores 0).
        before = frames[:1] if self._prev is None else self._prev[None]
        both = np.concatenate([before, frames])
        self._prev = frames[-1].copy()
        n, h, w = both.shape
        b = self.settings.block
        a, z = both[1:], both[:-1]  # max - min is |a - z| without widening the bytes
        change = (np.maximum(a, z) - np.minimum(a, z)).reshape(n - 1, -1).sum(axis=1, dtype=np.uint32)
        self._motion.append((change / (h * w * 255.0)).astype(np.float32))
        hb, wb = h // b, w // b
        rows = both[:, : hb * b, : wb * b].reshape(n, hb, b, wb * b).sum(axis=2, dtype=np.uint16)
        blocks = rows.reshape(n, hb, wb, b).sum(axis=3, dtype=np.uint16).reshape(n, -1)
        flat = blocks.astype(np.float32) / (b * b)
        mean = flat.mean(axis=1, keepdims=True)
        std = np.maximum(flat.std(axis=1, keepdims=True), self.settings.std_floor)
        shapes = np.abs(np.diff((flat - mean) / std, axis=0)).mean(axis=1)
        # The earth mover's distance between the frames' tone distributions, which for one
        # dimension is the mean difference of the sorted values: a flat shot whose gray
        # level wobbles moves a little, a cut to other tones moves a lot.
        ranked = np.sort(flat, axis=1)
        tones = np.abs(np.diff(ranked, axis=0)).mean(axis=1) / 255.0
        self._content.append((shapes + self.settings.tone_weight * tones).astype(np.float32))

    def result(self) -> FrameStats:
        empty = np.zeros(0, np.float32)
        content = np.concatenate(self._content) if self._content else empty
        motion = np.concatenate(self._motion) if self._motion else empty
        return FrameStats(content, motion)


def _side_means(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean score of the ``k`` frames before and the ``k`` after each frame (what exists of them)."""
    n = len(scores)
    sums = np.concatenate([[0.0], np.cumsum(scores)])
    idx = np.arange(n)
    lo, hi = np.maximum(idx - k, 0), np.minimum(idx + k + 1, n)
    before = (sums[idx] - sums[lo]) / np.maximum(idx - lo, 1)
    after = (sums[hi] - sums[idx + 1]) / np.maximum(hi - idx - 1, 1)
    return before, after


def cut_frames(content: np.ndarray, times: np.ndarray, settings: DetectSettings) -> list[int]:
    """Indices of the first frames of new shots, by the adaptive ratio and the minimum shot.

    ``times`` are the frames' own timestamps (seconds), so the minimum shot holds on
    variable frame rates too. Of two candidates closer than ``min_shot``, the first wins:
    that keeps the rule a single forward pass.
    """
    n = len(content)
    if n < 2:
        return []
    k = settings.window
    scores = np.asarray(content, np.float64)
    before, after = _side_means(scores, k)
    quiet, busy = np.minimum(before, after), np.maximum(before, after)
    # AdaptiveDetector compares with the mean of both sides; here the quieter side must be
    # ``ratio`` times below and the busier one ``busy_ratio`` times. The frames just after a
    # cut in a cheap encode still change a lot while the encoder catches up, which lifts
    # one side's mean and made a plain two-sided mean miss real cuts; a pan or a moving
    # shot lifts both sides, and a camera that starts moving lifts the busier side to the
    # score itself, so neither passes.
    eps = settings.epsilon
    passed = ((scores >= settings.min_score) & (scores >= settings.ratio * (quiet + eps))
              & (scores >= settings.busy_ratio * (busy + eps)))
    passed[0] = False
    start = float(times[0])
    found: list[int] = []
    last = start
    for i in np.flatnonzero(passed):
        t = float(times[i])
        if t - last >= settings.min_shot - 1e-9:
            found.append(int(i))
            last = t
    return found


def motion_samples(times: np.ndarray, motion: np.ndarray, cuts: list[int], step: float
                   ) -> tuple[tuple[float, float], ...]:
    """Mean motion per ``step`` seconds, as (start of the stretch, value).

    The frame at a cut is left out: its difference is the cut, not movement.
    """
    if len(times) < 2:
        return ()
    keep = np.ones(len(times), bool)
    keep[0] = False
    keep[cuts] = False
    bins = np.floor(np.asarray(times, np.float64) / step).astype(np.int64)
    bins -= bins.min()
    base = math.floor(float(times[0]) / step) * step
    total = np.bincount(bins[keep], weights=motion[keep], minlength=int(bins.max()) + 1)
    count = np.bincount(bins[keep], minlength=int(bins.max()) + 1)
    return tuple((round(base + b * step, 6), round(float(total[b] / count[b]), 6))
                 for b in range(len(total)) if count[b])


def picture_cuts(stats: FrameStats, times: np.ndarray, *, fps: float, analysed: float,
                 settings: DetectSettings) -> PictureCuts:
    """The whole decision: cuts at the new shots' first frames' timestamps, and the motion."""
    n = min(stats.frames, len(times))
    content, motion, times = stats.content[:n], stats.motion[:n], np.asarray(times[:n], np.float64)
    found = cut_frames(content, times, settings)
    return PictureCuts(
        cuts=tuple(round(float(times[i]), 6) for i in found),
        motion=motion_samples(times, motion, found, settings.motion_step),
        analysed=analysed,
        fps=fps,
        motion_step=settings.motion_step,
        detector=settings.key(),
    )
