"""Duck the music under the original, set levels by loudness, limit true peaks, stream the mix out.

Three streaming passes keep an hour-long input in a few megabytes of audio at a time:

1. detection: 16 kHz mono decode -> speech (or loud) regions -> ``DuckEnvelope``;
2. analysis: original and enveloped music, K-weighted, summed per 100 ms so the gated
   loudness of ``a*original + b*music`` is known for any gains (see ``loudness``);
   choose the music gain (its unducked level relative to the dialogue) and the final
   gain (the target loudness);
3. render: mix with those gains, run the true-peak lookahead limiter, hand blocks to
   the sink (and the music alone to ``music_sink``, and stems to WAV files).

The original keeps its own dynamics: it only ever gets the one final gain, and the
limiter's, which acts on rare peaks.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import minimum_filter1d

from .duck import VAD_RATE, DuckEnvelope, Region, build_envelope, make_scanner
from .errors import InputError, OutputPathError
from .ffmpeg import Writer, iter_decode
from .loudness import (
    PHASE_DELAY,
    SUBBLOCK_SECONDS,
    TAPS_PER_PHASE,
    KWeighting,
    TruePeakMeter,
    gated_loudness,
    oversampled_peaks,
)
from .models import MIX_RATE
from .pcm import PcmFile
from .presets import MixSettings

log = logging.getLogger(__name__)

__all__ = ["LookaheadLimiter", "MixReport", "mix_audio"]

Sink = Callable[[np.ndarray], None]

SUBBLOCK = round(MIX_RATE * SUBBLOCK_SECONDS)
DEFAULT_BLOCK = SUBBLOCK * 50
"""5 s per block: a few MB of audio in flight, few enough calls that Python overhead vanishes."""
LIMITER_MARGIN_DB = 0.3
"""The limiter aims this far below the ceiling: headroom for the interpolator's own error."""
LOUDNESS_TOLERANCE = 0.3
"""How close to the target (LU) a mix must land before it is rendered for real."""
MAX_CORRECTIONS = 3
"""Measuring passes at most: each costs a decode and a mix, and two nearly always suffice."""
STEM_NAMES = ("music", "music_ducked", "original", "mix")


@dataclass(frozen=True, eq=False)
class MixReport:
    dialogue_lufs: float | None
    """Integrated loudness of the original as it came in; None if no audio or silent."""
    music_lufs: float | None
    """Of the generated music before any gain, ducking or fade; None if silent."""
    music_gain_db: float
    """Gain that puts the unducked music ``music_level_db`` LU from the dialogue."""
    final_gain_db: float
    """Gain on the whole mix (original and music) to reach the target loudness."""
    integrated_lufs: float | None
    """Measured on exactly what went to the sink."""
    true_peak_dbtp: float
    """Measured on what went to the sink, 4x oversampled."""
    speech_regions: tuple[Region, ...]
    envelope: DuckEnvelope
    limiter_reduction_max_db: float
    """Deepest limiter gain reduction, positive dB (0 when it never acted)."""
    original_peak: np.ndarray
    """Peak level of the original (before gain) per 100 ms, for the report picture."""
    block_seconds: float = SUBBLOCK_SECONDS


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
        self.ceiling = 10 ** (ceiling_db / 20)
        self.window = max(2, round(rate * lookahead_ms / 1000))
        self.delay = PHASE_DELAY + self.window - 1
        self.slope = release_db_per_s / rate
        self.channels = channels
        self._tp_history = np.zeros((TAPS_PER_PHASE, channels))
        self._prev_peak = 0.0
        self._required_history = np.ones(self.window - 1)
        self._release_carry = 0.0
        self._hold_history = np.ones(self.window - 1)
        self._audio_history = np.zeros((self.delay, channels), np.float32)
        self.min_gain = 1.0

    def _required(self, block: np.ndarray) -> np.ndarray:
        """Gain each frame needs (concerning the input ``PHASE_DELAY`` frames earlier)."""
        raw = oversampled_peaks(self._tp_history, block, self.ceiling)
        peaks = np.maximum(raw, np.concatenate([[self._prev_peak], raw[:-1]]))
        self._prev_peak = float(raw[-1])
        self._tp_history = np.concatenate([self._tp_history, block])[-TAPS_PER_PHASE:]
        with np.errstate(divide="ignore"):
            return np.minimum(1.0, self.ceiling / peaks)

    def _hold(self, required: np.ndarray) -> np.ndarray:
        w = self.window
        ext = np.concatenate([self._required_history, required])
        self._required_history = ext[len(ext) - (w - 1):]
        if ext.min() >= 1.0:
            return np.ones(len(required))
        # Causal window [j-w+1, j] is the centred window of index j-(w-1)+w//2.
        centred = minimum_filter1d(ext, w)
        first = w // 2
        return centred[first : first + len(required)]

    def _release(self, held: np.ndarray) -> np.ndarray:
        n = len(held)
        if self._release_carry >= 0.0 and held.min() >= 1.0:
            return held
        k = np.arange(n)
        with np.errstate(divide="ignore"):
            held_db = 20 * np.log10(held)
        lowest = np.minimum(np.minimum.accumulate(held_db - self.slope * k), self._release_carry)
        self._release_carry = min(float(lowest[-1]) + self.slope * n, 0.0)
        return 10 ** (np.minimum(self.slope * k + lowest, 0.0) / 20)

    def _smooth(self, released: np.ndarray) -> np.ndarray:
        w = self.window
        ext = np.concatenate([self._hold_history, released])
        self._hold_history = ext[len(ext) - (w - 1):]
        if ext.min() >= 1.0:
            return np.ones(len(released))
        c = np.concatenate([[0.0], np.cumsum(ext)])
        return (c[w:] - c[:-w]) / w

    def process(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limited audio delayed by ``delay`` frames, and the gain applied to each of its frames."""
        gain = self._smooth(self._release(self._hold(self._required(block.astype(np.float64)))))
        ext = np.concatenate([self._audio_history, block])
        out, self._audio_history = ext[: len(block)], ext[len(block):]
        self.min_gain = min(self.min_gain, float(gain.min(initial=1.0)))
        return (out * gain[:, None]).astype(np.float32), gain

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        return self.process(np.zeros((self.delay, self.channels), np.float32))


class DelayLine:
    """Delays side signals by the limiter's latency so every output stays sample-aligned."""

    def __init__(self, delay: int, channels: int = 2) -> None:
        self._history = np.zeros((delay, channels), np.float32)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        ext = np.concatenate([self._history, block])
        out, self._history = ext[: len(block)], ext[len(block):]
        return out


class StemWriters:
    """Float WAV stems written to ``name.wav.part`` and renamed into place only when complete."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"Cannot create the stems folder {folder}: {exc}. Choose another.") from exc
        self.final = {name: folder / f"{name}.wav" for name in STEM_NAMES}
        self.parts = {name: path.with_name(path.name + ".part") for name, path in self.final.items()}
        self.writers: dict[str, Writer] = {}
        try:
            for name, part in self.parts.items():
                self.writers[name] = Writer(
                    ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(MIX_RATE), "-ac", "2",
                     "-i", "pipe:0", "-c:a", "pcm_f32le", "-f", "wav", str(part)],
                    what=f"write the {name} stem",
                )
        except BaseException:
            self.abort()
            raise

    def write(self, **blocks: np.ndarray) -> None:
        for name, block in blocks.items():
            self.writers[name].write(block)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for name, part in self.parts.items():
            part.replace(self.final[name])

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()
        for part in self.parts.values():
            with contextlib.suppress(OSError):
                part.unlink()


def _fixed_blocks(blocks: Iterator[np.ndarray], total: int, size: int) -> Iterator[np.ndarray]:
    """Re-cut a stream into blocks of ``size`` frames, padded with silence or cut to ``total``."""
    pending: list[np.ndarray] = []
    have = 0
    sent = 0
    exhausted = False
    while sent < total:
        want = min(size, total - sent)
        while have < want and not exhausted:
            nxt = next(blocks, None)
            if nxt is None:
                exhausted = True
            else:
                pending.append(nxt)
                have += len(nxt)
        joined = np.concatenate(pending) if pending else np.zeros((0, 2), np.float32)
        block = joined[:want]
        if len(block) < want:
            block = np.concatenate([block, np.zeros((want - len(block), 2), np.float32)])
        rest = joined[want:]
        pending, have = ([rest], len(rest)) if len(rest) else ([], 0)
        sent += want
        yield block
    # Close the decoder early when the input is longer than the mix.
    close = getattr(blocks, "close", None)
    if close is not None:
        close()


def _original_blocks(original: Path | None, total: int, size: int, stream: int | None
                     ) -> Iterator[np.ndarray]:
    source: Iterator[np.ndarray] = (
        iter(()) if original is None
        else iter_decode(original, MIX_RATE, 2, block_frames=size, stream=stream)
    )
    return _fixed_blocks(source, total, size)


def _subblock_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum of x*y over each complete 100 ms sub-block (all channels)."""
    whole = len(x) // SUBBLOCK * SUBBLOCK
    shape = (-1, SUBBLOCK * x.shape[1])
    return np.einsum("ij,ij->i", x[:whole].reshape(shape), y[:whole].reshape(shape))


@dataclass
class _Analysis:
    oo: np.ndarray
    om: np.ndarray
    mm: np.ndarray
    raw_music: np.ndarray
    original_peak: np.ndarray
    music_peak: np.ndarray
    """Sample peak of the ducked music per sub-block, before any gain."""

    def loudness(self, a: float, b: float) -> float | None:
        energy = a * a * self.oo + 2 * a * b * self.om + b * b * self.mm
        return gated_loudness(np.maximum(energy, 0.0), SUBBLOCK)


def _analyse(original: Path | None, music: PcmFile, envelope: DuckEnvelope, total: int, size: int,
             stream: int | None) -> _Analysis:
    kw_o, kw_m, kw_raw = (KWeighting(MIX_RATE, 2) for _ in range(3))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("oo", "om", "mm", "raw", "peak", "mpeak")}
    start = 0
    for block in _original_blocks(original, total, size, stream):
        raw = music.read(start, len(block))
        ducked = raw * envelope.gains(start, len(block), MIX_RATE)[:, None]
        o, m, r = kw_o(block), kw_m(ducked), kw_raw(raw)
        parts["oo"].append(_subblock_sums(o, o))
        parts["om"].append(_subblock_sums(o, m))
        parts["mm"].append(_subblock_sums(m, m))
        parts["raw"].append(_subblock_sums(r, r))
        whole = len(block) // SUBBLOCK * SUBBLOCK
        parts["peak"].append(np.abs(block[:whole]).reshape(-1, SUBBLOCK * 2).max(axis=1, initial=0.0))
        parts["mpeak"].append(np.abs(ducked[:whole]).reshape(-1, SUBBLOCK * 2).max(axis=1, initial=0.0))
        start += len(block)
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return _Analysis(joined["oo"], joined["om"], joined["mm"], joined["raw"], joined["peak"], joined["mpeak"])


def _limiter_may_act(analysis: _Analysis, music_gain_db: float, final_gain_db: float,
                     settings: MixSettings) -> bool:
    """Whether any block's peak could reach the limiter's threshold.

    The sum of the two sample peaks bounds the mix's sample peak; a 1 dB allowance covers
    the inter-sample overshoot the true-peak limiter also reacts to.
    """
    if not len(analysis.original_peak) and not len(analysis.music_peak):
        return False
    f = 10 ** (final_gain_db / 20)
    b = 10 ** (music_gain_db / 20)
    n = min(len(analysis.original_peak), len(analysis.music_peak))
    bound = f * analysis.original_peak[:n] + f * b * analysis.music_peak[:n]
    threshold = 10 ** ((settings.true_peak_db - LIMITER_MARGIN_DB - 1.0) / 20)
    return bool(bound.size) and float(bound.max()) >= threshold


def _choose_gains(
    analysis: _Analysis, settings: MixSettings
) -> tuple[float | None, float | None, float, float]:
    """(dialogue LUFS, music LUFS, music gain dB, final gain dB)."""
    dialogue = analysis.loudness(1.0, 0.0)
    music = gated_loudness(analysis.raw_music, SUBBLOCK)
    music_gain = 0.0
    if dialogue is not None and music is not None:
        music_gain = dialogue + settings.music_level_db - music
    b = 10 ** (music_gain / 20)
    final = 0.0
    # The absolute gate (-70 LUFS) does not scale with the gain, so iterate to the target.
    for _ in range(4):
        f = 10 ** (final / 20)
        measured = analysis.loudness(f, f * b)
        if measured is None:
            break
        final += settings.target_lufs - measured
        if abs(settings.target_lufs - measured) < 0.01:
            break
    return dialogue, music, music_gain, final


def mix_audio(
    original: Path | None,
    music: PcmFile,
    settings: MixSettings,
    *,
    duration: float,
    audio_stream: int | None = None,
    sink: Sink,
    music_sink: Sink | None = None,
    stems_dir: Path | None = None,
    block_frames: int = DEFAULT_BLOCK,
) -> MixReport:
    """Mix ``music`` under the audio of ``original`` and stream the result to ``sink``.

    ``sink`` gets float32 (n, 2) blocks at MIX_RATE totalling ``round(duration * MIX_RATE)``
    frames; ``music_sink`` the music alone exactly as it sits in the mix (ducked, gained,
    limited with the mix). ``original`` None means the input has no audio track.
    ``block_frames`` only trades memory for call overhead; results do not depend on it
    beyond float rounding.
    """
    if music.rate != MIX_RATE or music.channels != 2:
        raise InputError(
            f"The music file {music.path} is {music.rate} Hz x{music.channels}; the mixer needs "
            f"{MIX_RATE} Hz stereo. Resample it when assembling."
        )
    total = round(duration * MIX_RATE)
    # Whole sub-blocks per block keep the loudness sums aligned; never more than the whole input.
    size = max(1, min(block_frames, total + SUBBLOCK - 1) // SUBBLOCK) * SUBBLOCK

    regions: tuple[Region, ...] = ()
    if original is not None:
        scanner = make_scanner(settings)
        for block in iter_decode(original, VAD_RATE, 1, block_frames=size, stream=audio_stream):
            scanner.add(block[:, 0])
        regions = tuple((s, e) for s, e in scanner.regions(settings) if s < duration)
    envelope = build_envelope(regions, duration, settings)

    analysis = _analyse(original, music, envelope, total, size, audio_stream)
    dialogue, music_lufs, music_gain_db, final_gain_db = _choose_gains(analysis, settings)
    log.info("mix: dialogue %s LUFS, music %s LUFS, music gain %.2f dB, final gain %.2f dB",
             dialogue, music_lufs, music_gain_db, final_gain_db)

    # Limiting loud peaks lowers the integrated loudness a little, more so on speech with a
    # high crest factor. Where the limiter will act, measure dry runs of the render pass and
    # correct the final gain until the limited mix lands on the target.
    if _limiter_may_act(analysis, music_gain_db, final_gain_db, settings):
        for _ in range(MAX_CORRECTIONS):
            measured, _, _ = _render(
                original, music, envelope, settings, total, size, audio_stream,
                10 ** ((music_gain_db + final_gain_db) / 20), 10 ** (final_gain_db / 20),
                _discard, None, None,
            )
            if measured is None or abs(settings.target_lufs - measured) <= LOUDNESS_TOLERANCE:
                break
            final_gain_db += settings.target_lufs - measured
            log.info("mix: limiter cost %.2f LU; final gain now %.2f dB",
                     settings.target_lufs - measured, final_gain_db)

    stems = StemWriters(stems_dir) if stems_dir is not None else None
    try:
        integrated, peak, min_gain = _render(
            original, music, envelope, settings, total, size, audio_stream,
            10 ** ((music_gain_db + final_gain_db) / 20), 10 ** (final_gain_db / 20),
            sink, music_sink, stems,
        )
        if stems is not None:
            stems.close()
    except BaseException:
        if stems is not None:
            stems.abort()
        raise
    return MixReport(
        dialogue_lufs=dialogue,
        music_lufs=music_lufs,
        music_gain_db=music_gain_db,
        final_gain_db=final_gain_db,
        integrated_lufs=integrated,
        true_peak_dbtp=peak,
        speech_regions=regions,
        envelope=envelope,
        limiter_reduction_max_db=-20 * math.log10(min_gain) if min_gain > 0 else math.inf,
        original_peak=analysis.original_peak,
    )


def _discard(block: np.ndarray) -> None:
    """Sink of the measuring passes."""


def _render(original: Path | None, music: PcmFile, envelope: DuckEnvelope, settings: MixSettings,
            total: int, size: int, stream: int | None, music_gain: float, final_gain: float,
            sink: Sink, music_sink: Sink | None, stems: StemWriters | None
            ) -> tuple[float | None, float, float]:
    """The render pass; returns (integrated LUFS, true peak dBTP, lowest limiter gain) of the output."""
    limiter = LookaheadLimiter(settings.true_peak_db - LIMITER_MARGIN_DB, MIX_RATE)
    music_delay, original_delay, raw_delay = (DelayLine(limiter.delay) for _ in range(3))
    meter_kw, peak_meter = KWeighting(MIX_RATE, 2), TruePeakMeter(2)
    energy: list[np.ndarray] = []
    pending = np.zeros((0, 2))

    skip = limiter.delay
    """The limiter's first ``delay`` output frames are its empty delay line: dropped."""

    def emit(out: np.ndarray, gain: np.ndarray, ducked: np.ndarray, orig: np.ndarray, raw: np.ndarray
             ) -> None:
        nonlocal pending, skip
        music_out = (music_delay(ducked) * gain[:, None]).astype(np.float32)
        orig_out, raw_out = original_delay(orig), raw_delay(raw)
        drop = min(skip, len(out))
        skip -= drop
        if drop == len(out):
            return
        out, music_out, orig_out, raw_out = out[drop:], music_out[drop:], orig_out[drop:], raw_out[drop:]
        sink(out)
        if music_sink is not None:
            music_sink(music_out)
        if stems is not None:
            stems.write(music=raw_out, music_ducked=music_out, original=orig_out, mix=out)
        peak_meter.add(out)
        weighted = np.concatenate([pending, meter_kw(out)])
        energy.append(_subblock_sums(weighted, weighted))
        pending = weighted[len(weighted) // SUBBLOCK * SUBBLOCK:]

    start = 0
    for block in _original_blocks(original, total, size, stream):
        n = len(block)
        raw = music.read(start, n) * np.float32(music_gain)
        ducked = raw * envelope.gains(start, n, MIX_RATE)[:, None]
        orig = block * np.float32(final_gain)
        emit(*limiter.process(orig + ducked), ducked, orig, raw)
        start += n
    tail = np.zeros((limiter.delay, 2), np.float32)
    emit(*limiter.flush(), tail, tail, tail)
    peak_meter.finish()
    integrated = gated_loudness(np.concatenate(energy), SUBBLOCK) if energy else None
    return integrated, peak_meter.dbtp, limiter.min_gain
