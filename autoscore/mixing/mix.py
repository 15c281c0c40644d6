"""Duck the music under the original, set levels by loudness, limit true peaks, stream the mix out.

Streaming passes keep an hour-long input in a few megabytes of audio at a time:

0. decode: one ffmpeg run writes the original twice into a scratch folder, as raw
   float32 at 48 kHz stereo and at 16 kHz mono; every later pass reads those files
   (a decode costs far more than reading raw samples back, and there are several passes).
   Meanwhile the music's own loudness is measured;
1. detection: the 16 kHz mono copy -> speech (or loud) regions -> ``DuckEnvelope``;
2. analysis: original and enveloped music, K-weighted, summed per 100 ms so the gated
   loudness of ``a*original + b*music`` is known for any gains (see ``loudness``);
   choose the music gain (its unducked level relative to the dialogue) and the final
   gain (the target loudness);
3. limiter correction: where the limiter will act, estimate the loudness it leaves by
   running it only over the stretches around loud peaks (elsewhere the mix is exactly
   ``a*original + b*music`` and the analysis already knows its energy), and correct
   the final gain;
4. render: mix with those gains, run the true-peak lookahead limiter, hand blocks to
   the sink (and the music alone to ``music_sink``, and stems to WAV files).

The original keeps its own dynamics: it only ever gets the one final gain, and the
limiter's, which acts on rare peaks.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..media.pcm import DecodedAudio, PcmFile
from ..models import MIX_RATE
from ..text.presets import MixSettings
from .duck import DuckEnvelope, Region, build_envelope, make_scanner
from .limiter import DelayLine, LookaheadLimiter
from .loudness import (
    PHASE_GAIN_BOUND,
    SUBBLOCK_SECONDS,
    TAPS_PER_PHASE,
    KWeighting,
    TruePeakMeter,
    gated_loudness,
)
from .stems import StemWriters

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
MAX_CORRECTIONS = 6
"""Limiter-loss estimates at most (each runs the limiter over the loud stretches)."""
WARMUP_SUBBLOCKS = 1
"""Unlimited sub-blocks run before each limited stretch so the K-weighting filter forgets its
zero start: its slowest pole (the 38 Hz high-pass) decays by 1e-7 per 100 ms."""
TAIL_SUBBLOCKS = 1
"""Sub-blocks after the limiter's gain is back to 1 in which the K-weighted mix may still
remember the limiting (by the same 1e-7 decay)."""
ESTIMATE_THREADS = min(4, os.cpu_count() or 1)
"""Threads measuring limited stretches at once."""


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


@dataclass(frozen=True)
class _Source:
    """The original's audio as raw float32 files in the scratch folder (None: the input has none)."""

    full: PcmFile | None
    """48 kHz stereo, read by the analysis, the limiter estimate and the render."""
    speech: PcmFile | None
    """16 kHz mono for speech (or loudness) detection."""

    def read(self, start: int, count: int) -> np.ndarray:
        if self.full is None:
            return np.zeros((count, 2), np.float32)
        return self.full.read(start, count)


def _detect(source: _Source, settings: MixSettings, duration: float, size: int) -> tuple[Region, ...]:
    if source.speech is None:
        return ()
    scanner = make_scanner(settings)
    for block in source.speech.blocks(size):
        scanner.add(block[:, 0])
    return tuple((s, e) for s, e in scanner.regions(settings) if s < duration)


def _spans(total: int, size: int) -> list[tuple[int, int]]:
    """(start, count) of each block of a pass over ``total`` frames."""
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def _subblock_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum of x*y over each complete 100 ms sub-block (all channels).

    Taken channel by channel: the K-weighting filter hands back column-major arrays, whose
    transpose reshapes without a copy (a row-major reshape copied every block).
    """
    whole = len(x) // SUBBLOCK * SUBBLOCK
    channels = x.shape[1]
    xt = x[:whole].T.reshape(channels, -1, SUBBLOCK)
    yt = xt if y is x else y[:whole].T.reshape(channels, -1, SUBBLOCK)
    sums: NDArray[np.float64] = np.einsum("cij,cij->i", xt, yt)  # K-weighted input is float64
    return sums


def _subblock_peaks(x: np.ndarray) -> np.ndarray:
    whole = len(x) // SUBBLOCK * SUBBLOCK
    peaks: NDArray[np.floating[Any]] = np.abs(x[:whole]).reshape(-1, SUBBLOCK * x.shape[1]).max(
        axis=1, initial=0.0)
    return peaks


class _EnergyMeter:
    """K-weighted energy per complete sub-block of a stream that arrives in blocks of any size."""

    def __init__(self) -> None:
        self._kw = KWeighting(MIX_RATE, 2)
        self._pending = np.zeros((2, 0))
        self._sums: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        # Channel-major, so the sub-block reshape needs no copy.
        weighted = np.concatenate([self._pending, self._kw(block).T], axis=1)
        whole = weighted.shape[1] // SUBBLOCK * SUBBLOCK
        parts = weighted[:, :whole].reshape(weighted.shape[0], -1, SUBBLOCK)
        self._sums.append(np.einsum("cij,cij->i", parts, parts))
        self._pending = weighted[:, whole:]

    def energy(self) -> np.ndarray:
        return np.concatenate(self._sums) if self._sums else np.zeros(0)


@dataclass
class _Analysis:
    oo: np.ndarray
    om: np.ndarray
    mm: np.ndarray
    raw_music: np.ndarray
    original_peak: np.ndarray
    music_peak: np.ndarray
    """Sample peak of the ducked music per sub-block, before any gain."""

    def energy(self, a: float, b: float) -> np.ndarray:
        """K-weighted energy of ``a*original + b*ducked music`` per sub-block."""
        return np.maximum(a * a * self.oo + 2 * a * b * self.om + b * b * self.mm, 0.0)

    def loudness(self, a: float, b: float) -> float | None:
        return gated_loudness(self.energy(a, b), SUBBLOCK)


def _music_energy(music: PcmFile, total: int, size: int) -> np.ndarray:
    """K-weighted energy per sub-block of the music as generated (before any gain or ducking)."""
    kw = KWeighting(MIX_RATE, 2)
    sums = [_subblock_sums(r, r) for r in (kw(music.read(start, n)) for start, n in _spans(total, size))]
    return np.concatenate(sums) if sums else np.zeros(0)


def _analyse(source: _Source, music: PcmFile, envelope: DuckEnvelope, total: int, size: int,
             raw_music: np.ndarray) -> _Analysis:
    filters = [KWeighting(MIX_RATE, 2) for _ in range(2)]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("oo", "om", "mm", "peak", "mpeak")}
    # The two filters are independent and numpy's FFT lets go of the GIL: a thread each.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start, n in _spans(total, size):
            block = source.read(start, n)
            ducked = music.read(start, n) * envelope.gains(start, n, MIX_RATE)[:, None]
            o, m = pool.map(KWeighting.__call__, filters, (block, ducked))
            parts["oo"].append(_subblock_sums(o, o))
            parts["om"].append(_subblock_sums(o, m))
            parts["mm"].append(_subblock_sums(m, m))
            parts["peak"].append(_subblock_peaks(block))
            parts["mpeak"].append(_subblock_peaks(ducked))
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return _Analysis(joined["oo"], joined["om"], joined["mm"], raw_music, joined["peak"], joined["mpeak"])


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
    original: DecodedAudio | Future[DecodedAudio] | None,
    music: PcmFile,
    settings: MixSettings,
    *,
    duration: float,
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
    beyond float rounding. The mixer never opens the input: ``original`` is its audio
    decoded by ``media.pcm.decode_for_mixing``, or a future of it, so the caller can decode
    while the music's own loudness is measured here.
    """
    if music.rate != MIX_RATE or music.channels != 2:
        raise InputError(
            f"The music file {music.path} is {music.rate} Hz x{music.channels}; the mixer needs "
            f"{MIX_RATE} Hz stereo. Resample it when assembling."
        )
    total = round(duration * MIX_RATE)
    # Whole sub-blocks per block keep the loudness sums aligned; never more than the whole input.
    size = max(1, min(block_frames, total + SUBBLOCK - 1) // SUBBLOCK) * SUBBLOCK
    if original is not None:
        make_scanner(settings)  # an unknown duck_on fails before the decode, not after

    # The caller's decode may still be running: measure the music, which needs nothing from it.
    raw_music = _music_energy(music, total, size)
    decoded = original.result() if isinstance(original, Future) else original
    source = _Source(None, None) if decoded is None else _Source(decoded.full, decoded.speech)
    regions = _detect(source, settings, duration, size)
    envelope = build_envelope(regions, duration, settings)

    analysis = _analyse(source, music, envelope, total, size, raw_music)
    dialogue, music_lufs, music_gain_db, final_gain_db = _choose_gains(analysis, settings)
    log.info("mix: dialogue %s LUFS, music %s LUFS, music gain %.2f dB, final gain %.2f dB",
             dialogue, music_lufs, music_gain_db, final_gain_db)

    # Limiting loud peaks lowers the integrated loudness a little, more so on speech with a
    # high crest factor. Where the limiter will act, estimate what the render pass will
    # measure and correct the final gain until the limited mix lands on the target.
    if _limiter_may_act(analysis, music_gain_db, final_gain_db, settings):
        for _ in range(MAX_CORRECTIONS):
            measured = _limited_loudness(
                source, music, envelope, analysis, settings, total, size,
                10 ** ((music_gain_db + final_gain_db) / 20), 10 ** (final_gain_db / 20),
            )
            if measured is None or abs(settings.target_lufs - measured) <= LOUDNESS_TOLERANCE:
                break
            final_gain_db += settings.target_lufs - measured
            log.info("mix: limiter cost %.2f LU; final gain now %.2f dB",
                     settings.target_lufs - measured, final_gain_db)

    stems = StemWriters(stems_dir) if stems_dir is not None else None
    try:
        integrated, peak, min_gain = _render(
            source, music, envelope, settings, total, size,
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


def _mix_inputs(source: _Source, music: PcmFile, envelope: DuckEnvelope, start: int, n: int,
                music_gain: float, final_gain: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original, music, ducked music) for frames [start, start+n), each with its gain applied."""
    raw = music.read(start, n) * np.float32(music_gain)
    ducked = raw * envelope.gains(start, n, MIX_RATE)[:, None]
    orig = source.read(start, n) * np.float32(final_gain)
    return orig, raw, ducked


def _limited_stretches(analysis: _Analysis, music_gain: float, final_gain: float, limiter: LookaheadLimiter
                       ) -> list[tuple[int, int]]:
    """Sub-block ranges [first, last) outside which the limiter provably leaves the mix alone.

    A sub-block is hot when its sample-peak bound (original peak plus music peak, also
    over the previous sub-block, which the interpolator's taps reach into), times the
    interpolator's largest gain, can reach the ceiling. The limiter's gain starts falling
    ``delay`` frames (5 ms) before a peak, so one sub-block earlier; it holds for the
    lookahead and recovers at the release rate from at most the bound's excess; the
    K-weighting then needs ``TAIL_SUBBLOCKS`` to forget. Ranges closer than the warm-up
    are merged, so each range starts from a state an unlimited run would also have.
    """
    n = len(analysis.oo)
    bound = (final_gain * analysis.original_peak[:n] + music_gain * analysis.music_peak[:n]) * (1 + 1e-5)
    reach = np.maximum(bound, np.concatenate([[0.0], bound[:-1]])) * PHASE_GAIN_BOUND
    hot = np.flatnonzero(reach > limiter.ceiling)
    if not len(hot):
        return []
    # A peak in sub-block i moves the gain from ``delay`` frames before it until the hold,
    # the smoothing (a window each), the interpolator's taps and the release have passed.
    release = 20 * np.log10(reach[hot] / limiter.ceiling) / limiter.slope
    spill = 2 * limiter.window + TAPS_PER_PHASE + 2
    starts = np.maximum(hot - 1, 0)
    ends = np.minimum(hot + 1 + np.ceil((spill + release) / SUBBLOCK).astype(int) + TAIL_SUBBLOCKS, n)
    ranges: list[tuple[int, int]] = []
    for first, last in zip(starts.tolist(), ends.tolist(), strict=True):
        if ranges and first - WARMUP_SUBBLOCKS <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
    return ranges


def _limited_loudness(source: _Source, music: PcmFile, envelope: DuckEnvelope, analysis: _Analysis,
                      settings: MixSettings, total: int, size: int, music_gain: float, final_gain: float
                      ) -> float | None:
    """The integrated loudness ``_render`` would measure with these gains, without a whole render.

    Where the limiter leaves the mix alone, the mix is exactly ``a*original + b*music``
    and the analysis has its energy per sub-block; only the stretches around loud peaks
    are mixed, limited and K-weighted again. On speech most of an hour is not near the
    ceiling, so this costs a fraction of a pass, and it agrees with a full pass to float
    rounding (``tests/test_mix.py`` compares the two).
    """
    energy = analysis.energy(final_gain, music_gain)
    shape = LookaheadLimiter(settings.true_peak_db - LIMITER_MARGIN_DB, MIX_RATE)
    stretches = _limited_stretches(analysis, music_gain, final_gain, shape)

    def measure(stretch: tuple[int, int]) -> np.ndarray:
        return _stretch_energy(source, music, envelope, settings, total, size, music_gain, final_gain,
                               *stretch)

    # Stretches are independent and numpy lets go of the GIL while it works, so
    # a second core (idle until the encoder starts) takes half of them.
    with ThreadPoolExecutor(max_workers=ESTIMATE_THREADS) as pool:
        for (first, last), limited in zip(stretches, pool.map(measure, stretches), strict=True):
            energy[first:last] = limited
    return gated_loudness(energy, SUBBLOCK)


def _stretch_energy(source: _Source, music: PcmFile, envelope: DuckEnvelope, settings: MixSettings,
                    total: int, size: int, music_gain: float, final_gain: float, first: int, last: int
                    ) -> np.ndarray:
    """K-weighted energy per sub-block in [first, last) of the limited mix, as ``_render`` sees it.

    A fresh limiter and filter start ``WARMUP_SUBBLOCKS`` early (or at the very start,
    like the render); the limiter is fed ``delay`` frames past the end, real audio or the
    render's flush of silence past ``total``, so its lookahead sees what the render's did.
    """
    limiter = LookaheadLimiter(settings.true_peak_db - LIMITER_MARGIN_DB, MIX_RATE)
    meter = _EnergyMeter()
    begin = max(first - WARMUP_SUBBLOCKS, 0) * SUBBLOCK
    end = last * SUBBLOCK
    feed_end = min(end + limiter.delay, total)
    skip = limiter.delay

    def measure(out: np.ndarray) -> None:
        nonlocal skip
        drop = min(skip, len(out))
        skip -= drop
        if drop < len(out):
            meter.add(out[drop:])

    for start in range(begin, feed_end, size):
        n = min(size, feed_end - start)
        orig, _, ducked = _mix_inputs(source, music, envelope, start, n, music_gain, final_gain)
        measure(limiter.process(orig + ducked)[0])
    short = end + limiter.delay - feed_end
    if short > 0:
        measure(limiter.process(np.zeros((short, 2), np.float32))[0])
    energy = meter.energy()
    skipped = first - begin // SUBBLOCK
    return energy[skipped : skipped + last - first]


def _discard(block: np.ndarray) -> None:
    """Sink of a measuring pass."""


def _render(source: _Source, music: PcmFile, envelope: DuckEnvelope, settings: MixSettings,
            total: int, size: int, music_gain: float, final_gain: float,
            sink: Sink, music_sink: Sink | None, stems: StemWriters | None
            ) -> tuple[float | None, float, float]:
    """The render pass; returns (integrated LUFS, true peak dBTP, lowest limiter gain) of the output."""
    limiter = LookaheadLimiter(settings.true_peak_db - LIMITER_MARGIN_DB, MIX_RATE)
    music_delay, original_delay, raw_delay = (DelayLine(limiter.delay) for _ in range(3))
    meter, peak_meter = _EnergyMeter(), TruePeakMeter(2)
    wants_music = music_sink is not None or stems is not None

    skip = limiter.delay
    """The limiter's first ``delay`` output frames are its empty delay line: dropped."""

    def emit(out: np.ndarray, gain: np.ndarray, ducked: np.ndarray, orig: np.ndarray, raw: np.ndarray
             ) -> None:
        nonlocal skip
        music_out = _apply_gain(music_delay(ducked), gain) if wants_music else out
        orig_out, raw_out = (original_delay(orig), raw_delay(raw)) if stems is not None else (out, out)
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
        meter.add(out)

    for start, n in _spans(total, size):
        orig, raw, ducked = _mix_inputs(source, music, envelope, start, n, music_gain, final_gain)
        emit(*limiter.process(orig + ducked), ducked, orig, raw)
    tail = np.zeros((limiter.delay, 2), np.float32)
    emit(*limiter.flush(), tail, tail, tail)
    peak_meter.finish()
    return gated_loudness(meter.energy(), SUBBLOCK), peak_meter.dbtp, limiter.min_gain


def _apply_gain(block: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``block`` times the limiter's gain, skipping the multiply where the limiter was idle (gain 1)."""
    if float(gain.min(initial=1.0)) >= 1.0:
        return block
    limited: NDArray[np.floating[Any]] = block * gain[:, None]
    return limited.astype(np.float32)
