"""Join generated chunks into one piece of music exactly as long as the video.

Neighbouring chunks overlap by the plan's crossfade. At each seam we

1. slide the next chunk by up to ``max_shift`` seconds (half a beat at 120 BPM) to where
   the onset envelopes of the two chunks agree best over the overlap, so the beats of the
   outgoing and incoming chunk coincide instead of flamming;
2. crossfade with equal-power curves (cos/sin). Two independent renders are nearly
   uncorrelated, and for uncorrelated signals equal power keeps the level flat where a
   linear fade would dip by 3 dB. The correlation is measured anyway and the curves are
   normalised by it (``1 / sqrt(1 + 2 r cos sin)``), which is exactly equal power at
   ``r = 0`` and becomes a constant-amplitude fade when the two are alike (``r = 1``).

The shifts are bounded so the music never drifts more than ``2 * max_shift`` (a beat at
120 BPM) from the plan, so section changes stay on their marks, and never runs out
before the end of the video.

A chunk with no overlap (``overlap_before == 0``) is an outpaint continuation: it goes
exactly where the previous audio really ends, with no search. Each chunk is resampled
on its own, which smears a few samples at its edges; so the last few ms of the previous
chunk's raw audio are resampled again in front of the continuation and faded across,
and the joined piece matches the unbroken piece to within 1e-4.

Fades: this stage owns the music's own shape - a short fade-in at the start and a
musical fade-out over the last ``fade_out`` seconds. The mix stage must not fade the
music again (it only ducks and sets levels), or the ending would be faded twice.

Memory: ``assemble`` streams. It loads one chunk at a time, holds at most two, and
writes finished frames to a writer (a ``PcmWriter``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ..errors import OptionError
from ..media.resample import resample
from ..models import MIX_RATE, Audio, Chunk

__all__ = [
    "DEFAULT_MAX_SHIFT",
    "JoinReport",
    "Seam",
    "assemble",
    "assemble_spans",
]

DEFAULT_MAX_SHIFT = 0.25
"""Seconds a chunk may slide to line up its beats: half a beat at 120 BPM."""
SHORTEST_FADE = 0.01
"""However short the planned overlap, the crossfade is at least this long: no click."""
MIN_SEARCH_OVERLAP = 1.0
"""Below this overlap there is too little music to compare; chunks stay where planned."""
ENVELOPE_HOP = 0.0025
"""Onset envelope resolution (seconds): finer than the ear's flam threshold (~5 ms)."""
CONTINUATION_CONTEXT = 0.005
"""Seconds of the previous chunk resampled again ahead of a continuation (see _continue)."""
SHIFT_MARGIN = 0.05
"""Only move a chunk when the envelopes agree clearly better there than at the plan."""
MIN_RHYTHM = 0.25
"""Below this envelope agreement there is no shared pulse to align (pads, drones)."""


class BlockWriter(Protocol):
    def write(self, block: np.ndarray) -> None: ...


Load = Callable[[Chunk], Audio]


@dataclass(frozen=True)
class Seam:
    """One join, in output seconds."""

    chunk: int
    """Index of the incoming chunk."""
    start: float
    """Where the crossfade begins."""
    length: float
    offset: float
    """How far the incoming chunk was moved from its planned place (+ = later)."""
    score: float
    """Onset-envelope correlation at the chosen offset (0 when no search ran)."""
    correlation: float
    """Sample correlation of the two chunks over the crossfade; near 0 for independent renders."""

    @property
    def centre(self) -> float:
        return self.start + self.length / 2

    @property
    def end(self) -> float:
        return self.start + self.length


@dataclass(frozen=True)
class JoinReport:
    seams: tuple[Seam, ...]
    frames: int
    rate: int

    @property
    def seam_times(self) -> tuple[float, ...]:
        return tuple(s.centre for s in self.seams)

    @property
    def offsets(self) -> tuple[float, ...]:
        return tuple(s.offset for s in self.seams)


def assemble(
    chunks: Sequence[Chunk],
    load: Load,
    duration: float,
    writer: BlockWriter,
    *,
    rate: int = MIX_RATE,
    fade_in: float = 1.0,
    fade_out: float = 3.0,
    max_shift: float = DEFAULT_MAX_SHIFT,
) -> JoinReport:
    """Write exactly ``round(duration * rate)`` stereo frames of joined music to ``writer``.

    ``load(chunk)`` is called once per chunk, in order; it may return any rate and one or
    two channels, and a few milliseconds more or less than the chunk asked for. Chunks
    overlapping their predecessor are crossfaded (``_join``); chunks with no overlap are
    continuations (``_continue``).
    """
    if not chunks:
        raise OptionError("There are no chunks to join: the plan is empty.")
    if duration <= 0 or fade_in < 0 or fade_out < 0 or max_shift < 0:
        raise OptionError(
            f"Cannot join music of {duration:g} s with fades {fade_in:g}/{fade_out:g} s and shift "
            f"{max_shift:g} s: all must be positive (duration) or zero or more (the rest)."
        )
    total = round(duration * rate)
    out = _Output(writer, total, round(fade_in * rate), round(fade_out * rate))
    shift = round(max_shift * rate)
    # The last chunk must still reach the end: moving chunks earlier eats this slack.
    least_drift = total - round(max(c.end for c in chunks) * rate)
    seams: list[Seam] = []
    pending = np.zeros((0, 2), np.float32)  # the current chunk's frames not yet written
    drift = 0
    tail: Audio | None = None  # the previous chunk's last raw samples, for continuations
    for n, chunk in enumerate(chunks):
        continuation = n > 0 and chunk.overlap_before <= 0
        audio, pre, tail = _load(load, chunk, tail if continuation else None, rate)
        planned = round(chunk.start * rate) + drift
        if n == 0:
            out.write(np.zeros((max(planned, 0), 2), np.float32))
            pending = audio
            continue
        if continuation:
            seam, offset, written, pending = _continue(pending, audio, out.pos, planned, pre, chunk, rate)
        else:
            seam, offset, written, pending = _join(
                pending,
                audio,
                out.pos,
                planned,
                chunk,
                rate=rate,
                shift=shift,
                drift=drift,
                least_drift=least_drift,
            )
        for part in written:  # views, not a copy of the whole chunk
            out.write(part)
        del written, audio  # let the outgoing chunk go before the next one loads
        drift += offset
        seams.append(seam)
    out.write(pending)
    out.finish()
    return JoinReport(tuple(seams), out.pos, rate)


def assemble_spans(
    spans: Sequence[tuple[tuple[float, float], Sequence[Chunk]]],
    load: Load,
    duration: float,
    writer: BlockWriter,
    *,
    rate: int = MIX_RATE,
    fade_in: float = 1.0,
    fade_out: float = 3.0,
    max_shift: float = DEFAULT_MAX_SHIFT,
) -> list[JoinReport]:
    """Music in each ``(start, end)`` span, silence around and between: ``duration`` in all.

    Each span (a podcast's intro bed, the music either side of a ``[silence]`` note) is a
    piece of its own, joined by ``assemble`` with its own fade-in and ending.
    """
    total = round(duration * rate)
    pos = 0
    reports = []
    for (start, end), chunks in spans:
        begin = min(round(start * rate), total)
        frames = min(round(end * rate), total) - begin
        _write_silence(writer, begin - pos)
        if frames <= 0 or not chunks:
            continue
        local = [replace(c, start=c.start - start) for c in chunks]
        reports.append(
            assemble(local, load, frames / rate, writer, rate=rate, fade_in=min(fade_in, frames / rate / 2),
                     fade_out=min(fade_out, frames / rate / 2), max_shift=max_shift)
        )
        pos = begin + frames
    _write_silence(writer, total - pos)
    return reports


def _write_silence(writer: BlockWriter, frames: int, block: int = 1 << 17) -> None:
    while frames > 0:
        n = min(frames, block)
        writer.write(np.zeros((n, 2), np.float32))
        frames -= n


# --- one seam ------------------------------------------------------------------------


def _join(
    a: np.ndarray,
    b: np.ndarray,
    a_pos: int,
    planned: int,
    chunk: Chunk,
    *,
    rate: int,
    shift: int,
    drift: int,
    least_drift: int,
) -> tuple[Seam, int, list[np.ndarray], np.ndarray]:
    """Place ``b`` (planned to start at frame ``planned``) after ``a`` (starting at ``a_pos``).

    Returns the seam, the offset in frames, the frames now final (the rest of ``a`` and
    the crossfade) and what remains of ``b`` to be written later.
    """
    a_end = a_pos + len(a)
    want = max(round(chunk.overlap_before * rate), round(SHORTEST_FADE * rate))
    # Bounds on the offset: at most `shift` per seam and twice that from the plan overall,
    # enough slack left for the end, never before frames already written, and at least
    # half the overlap kept for the crossfade.
    lo = max(-shift, -2 * shift - drift, least_drift - drift, a_pos - planned)
    hi = min(shift, 2 * shift - drift, a_end - planned - want // 2)
    offset, score = 0, 0.0
    if chunk.overlap_before >= MIN_SEARCH_OVERLAP and lo < hi:
        offset, score = _best_offset(a, b, planned - a_pos, want, (lo, hi), shift, rate)
    elif lo > 0 or hi < 0:
        offset = lo if lo > 0 else hi
    start = planned + offset
    length = max(0, min(want, a_end - start, len(b)))
    cut = start - a_pos
    mixed, r = _crossfade(a[cut : cut + length], b[:length])
    gap = np.zeros((max(cut - len(a), 0), 2), np.float32)  # only if a came up far too short
    seam = Seam(chunk.index, start / rate, length / rate, offset / rate, score, r)
    return seam, offset, [a[:cut], gap, mixed], b[length:]


def _continue(
    a: np.ndarray, b: np.ndarray, a_pos: int, planned: int, pre: int, chunk: Chunk, rate: int
) -> tuple[Seam, int, list[np.ndarray], np.ndarray]:
    """Join an outpaint continuation: ``b`` picks up exactly where ``a`` really ends.

    ``b`` begins with ``pre`` frames re-rendered from ``a``'s last raw samples; fading
    over them hides the few samples the resampler smears at each chunk's edges.
    """
    a_end = a_pos + len(a)
    length = max(0, min(pre, len(a), len(b)))
    cut = len(a) - length
    mixed, r = _crossfade(a[cut:], b[pre - length : pre])
    seam = Seam(chunk.index, (a_end - length) / rate, length / rate, (a_end - planned) / rate, 0.0, r)
    return seam, a_end - planned, [a[:cut], mixed], b[pre:]


def _best_offset(
    a: np.ndarray, b: np.ndarray, at: int, length: int, bounds: tuple[int, int], shift: int, rate: int
) -> tuple[int, float]:
    """The offset in ``bounds`` (frames, within ``+-shift``) where ``b``'s onsets line up best with ``a``'s.

    ``at`` is where ``b`` would start inside ``a``. Scores are normalised correlations of
    the two onset envelopes over the overlap, tried every hop; the planned place wins
    unless another offset is clearly better, so rhythmless music (pads) is not moved on
    noise.
    """
    lo, hi = bounds
    hop = max(1, round(ENVELOPE_HOP * rate))
    k_lo, k_hi = math.ceil(lo / hop), math.floor(hi / hop)
    env_a = _onset_envelope(a[at + k_lo * hop : at + k_hi * hop + length], hop, rate)
    env_b = _onset_envelope(b[:length], hop, rate)
    # Compare every candidate over the same stretch: as much of the overlap as the
    # latest candidate still has of `a`.
    n = min(len(env_b), len(env_a) - (k_hi - k_lo))
    fallback = min(max(0, lo), hi)  # the plan's own place, or as near it as allowed
    if n < 8:
        return fallback, 0.0
    ks = range(k_lo, k_hi + 1)
    scores = {k: _ncc(env_a[k - k_lo : k - k_lo + n], env_b[:n]) for k in ks}
    best = max(ks, key=lambda k: scores[k])
    # A best score pinned against a bound the drift imposed is the flank of a peak out of
    # reach, not a match: moving there would only put the beats off in a new way.
    pinned = (best == k_lo and lo > -shift) or (best == k_hi and hi < shift)
    if pinned or scores[best] < MIN_RHYTHM or (0 in scores and scores[best] < scores[0] + SHIFT_MARGIN):
        return fallback, scores.get(fallback // hop, 0.0)
    return best * hop, scores[best]


def _onset_envelope(x: np.ndarray, hop: int, rate: int) -> np.ndarray:
    """Onset strength per band, shaped (frames, bands), one frame every ``hop`` samples.

    Bands are kept apart so kicks line up with kicks and hats with hats; a single
    broadband envelope would happily put one chunk's kick on the other's hat.
    """
    mono = x.mean(axis=1) if x.ndim == 2 else x
    frames = (len(mono) - _FFT) // hop + 1
    if frames < 2:
        return np.zeros((0, len(_BANDS) - 1))
    index = np.arange(_FFT)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(mono[index] * np.hanning(_FFT), axis=1)) ** 2
    edges = np.searchsorted(np.fft.rfftfreq(_FFT, 1 / rate), _BANDS)
    bands = np.stack([spectrum[:, lo:hi].sum(axis=1) for lo, hi in itertools.pairwise(edges)], axis=1)
    # Floor each band 30 dB under its loudest frame: a hat's faint low end or a kick's
    # faint top would otherwise jump as far (in log terms) as the real thing.
    level = np.log(bands + 1e-3 * bands.max(axis=0) + 1e-12)
    onset = np.maximum(np.diff(level, axis=0, prepend=level[:1]), 0.0)
    # Blur by ~15 ms: played (or humanised) notes wander a few ms off the grid, and
    # needle-sharp envelopes would then barely correlate at the right offset.
    kernel = np.bartlett(2 * _BLUR + 1)[1:-1]
    kernel /= kernel.sum()
    return np.stack([np.convolve(onset[:, i], kernel, mode="same") for i in range(onset.shape[1])], axis=1)


_FFT = 1024
_BLUR = 6
"""Half-width of the envelope blur, in hops."""
_BANDS = (0.0, 150.0, 600.0, 2500.0, 8000.0, 24000.0)
"""Band edges (Hz): kick, body, keys, presence, cymbals."""


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over bands of the normalised correlation of two (frames, bands) envelopes."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    denom = np.sqrt((x * x).sum(axis=0) * (y * y).sum(axis=0))
    live = denom > 1e-12
    if not live.any():
        return 0.0
    return float(((x * y).sum(axis=0)[live] / denom[live]).sum() / x.shape[1])


def _crossfade(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Equal-power crossfade of two equal-length blocks, corrected for their correlation."""
    n = len(a)
    if n == 0:
        return np.zeros((0, 2), np.float32), 0.0
    energy = math.sqrt(float(np.sum(a.astype(np.float64) ** 2)) * float(np.sum(b.astype(np.float64) ** 2)))
    r = float(np.sum(a.astype(np.float64) * b)) / energy if energy > 0 else 0.0
    r = min(max(r, -0.5), 1.0)
    theta = (np.arange(n) + 0.5) / n * (np.pi / 2)
    out_gain, in_gain = np.cos(theta), np.sin(theta)
    norm = 1.0 / np.sqrt(1.0 + 2.0 * r * out_gain * in_gain)
    mixed = a * (out_gain * norm)[:, None] + b * (in_gain * norm)[:, None]
    return mixed.astype(np.float32), r


# --- plumbing ------------------------------------------------------------------------


def _load(load: Load, chunk: Chunk, context: Audio | None, rate: int) -> tuple[np.ndarray, int, Audio]:
    """The chunk as stereo float32 at ``rate``, led by ``context`` when it is a continuation.

    Returns the audio, how many of its first frames are the re-rendered context, and this
    chunk's own raw tail (a copy, so the raw chunk itself can be freed) for the next one.
    """
    raw = load(chunk)
    samples = _stereo(raw.samples)
    tail = Audio(np.array(samples[-_context_frames(raw.rate, rate) :], copy=True), raw.rate)
    pre = 0
    if context is not None and context.rate == raw.rate:
        samples = np.concatenate([context.samples, samples])
        pre = context.frames * rate // raw.rate
    return _prepare(Audio(samples, raw.rate), rate), pre, tail


def _context_frames(raw_rate: int, rate: int) -> int:
    """About CONTINUATION_CONTEXT of raw frames, in a count that resamples to whole frames."""
    unit = raw_rate // math.gcd(raw_rate, rate)
    return unit * max(1, math.ceil(CONTINUATION_CONTEXT * raw_rate / unit))


def _stereo(x: np.ndarray) -> np.ndarray:
    if x.shape[1] == 1:
        return np.repeat(x, 2, axis=1)
    return x[:, :2] if x.shape[1] > 2 else x


def _prepare(audio: Audio, rate: int) -> np.ndarray:
    """Stereo float32 at ``rate``, whatever the generator returned."""
    x = _stereo(audio.samples)
    return resample(x, audio.rate, rate)


class _Output:
    """Applies the music's fades by absolute position and stops at exactly ``total`` frames.

    Blocks go out in pieces of at most ``BLOCK`` frames so neither the fades nor the
    writer ever copy a whole two-minute chunk at once.
    """

    BLOCK = 1 << 17

    def __init__(self, writer: BlockWriter, total: int, fade_in: int, fade_out: int) -> None:
        if fade_in + fade_out > total:  # a very short piece: shrink both fades in proportion
            scale = total / (fade_in + fade_out)
            fade_in, fade_out = int(fade_in * scale), int(fade_out * scale)
        self.writer, self.total = writer, total
        self.fade_in, self.fade_out_start = fade_in, total - fade_out
        self.pos = 0

    def write(self, block: np.ndarray) -> None:
        block = block[: self.total - self.pos]
        while len(block):
            # Pieces never straddle the edge of a fade zone.
            edges = [e for e in (self.fade_in, self.fade_out_start, self.total) if e > self.pos]
            count = min(min(edges) - self.pos, self.BLOCK, len(block))
            piece, block = block[:count], block[count:]
            gain = self._gain(self.pos, count)
            if gain is not None:
                piece = piece * gain[:, None]
            self.writer.write(np.ascontiguousarray(piece, dtype=np.float32))
            self.pos += count

    def finish(self) -> None:
        """Pad with silence if the chunks came up short (only ever a few ms, under the fade)."""
        while self.pos < self.total:
            self.write(np.zeros((min(self.total - self.pos, self.BLOCK), 2), np.float32))

    def _gain(self, pos: int, n: int) -> np.ndarray | None:
        """Raised-cosine fades: smooth at both ends, so neither start nor end clicks."""
        if pos < self.fade_in:
            x = (np.arange(pos, pos + n) + 0.5) / self.fade_in
            return (np.sin(x * np.pi / 2) ** 2).astype(np.float32)
        if pos >= self.fade_out_start:
            x = (np.arange(pos, pos + n) - self.fade_out_start + 0.5) / (self.total - self.fade_out_start)
            return (np.cos(x * np.pi / 2) ** 2).astype(np.float32)
        return None
