"""Joining chunks: exact length, level and continuity across seams, beat alignment, fades, streaming."""

from __future__ import annotations

import gc
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, find_peaks, sosfilt

from autoscore.errors import OptionError
from autoscore.media.pcm import PcmWriter
from autoscore.media.resample import resample
from autoscore.models import MIX_RATE, Audio, Chunk
from autoscore.music.assemble import JoinReport, assemble
from autoscore.music.backends.base import GenerationRequest
from autoscore.music.backends.procedural import compose

RATE = MIX_RATE
BPM = 120
BEAT = 60 / BPM


def chunk_row(starts: Sequence[float], lengths: Sequence[int], crossfade: float = 4.0) -> list[Chunk]:
    n = len(starts)
    return [
        Chunk(
            index=i,
            start=s,
            duration=d,
            prompt="p",
            negative_prompt="",
            section_index=0,
            overlap_before=crossfade if i else 0.0,
            overlap_after=crossfade if i < n - 1 else 0.0,
            is_first=i == 0,
            is_last=i == n - 1,
            seed=i,
        )
        for i, (s, d) in enumerate(zip(starts, lengths, strict=True))
    ]


def run(
    chunks: Sequence[Chunk], audios: Sequence[Audio], duration: float, **kw: float
) -> tuple[np.ndarray, JoinReport]:
    """Join through the pipeline's own writer, a ``PcmWriter``, and read the file back."""
    with tempfile.TemporaryDirectory(prefix="autoscore-test-") as tmp:
        with PcmWriter(Path(tmp) / "music.f32", RATE) as writer:
            report = assemble(chunks, lambda c: audios[c.index], duration, writer, **kw)  # type: ignore[arg-type]
        return writer.file.read_all(), report


def noise(seconds: float, seed: int, rate: int = RATE) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((rng.standard_normal((round(seconds * rate), 2)) * 0.1).astype(np.float32), rate)


def rms_db(x: np.ndarray, window: float = 0.05, rate: int = RATE) -> np.ndarray:
    """Level of each ``window``-second slice, in dB."""
    n = round(window * rate)
    frames = len(x) // n
    power = (x[: frames * n].astype(np.float64) ** 2).reshape(frames, n, -1).mean(axis=(1, 2))
    return 10 * np.log10(power + 1e-20)


def mean_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))


def power_mean_db(*parts: np.ndarray) -> float:
    """Level of several stretches taken together, each weighing the same."""
    return float(10 * np.log10(np.mean([10 ** (mean_db(p) / 10) for p in parts])))


# --- music to join ------------------------------------------------------------------

DRUM_PIANO = "upbeat drums and piano, 120 BPM, steady groove"


@pytest.fixture(scope="module")
def composed() -> tuple[list[Chunk], list[Audio], float]:
    """Three real chunks of the procedural composer, planned the way plan.py plans them."""
    # Starts off the 120-BPM grid (14.2 s, 29.1 s), as section boundaries usually are.
    chunks = chunk_row([0.0, 14.2, 29.1], [19, 19, 16])
    chunks = [
        Chunk(
            **{**c.__dict__, "prompt": DRUM_PIANO + (", with a clear ending" if c.is_last else "")},
        )
        for c in chunks
    ]
    audios = []
    for c in chunks:
        avoid = ([] if c.is_last else ["ending, fade-out"]) + (["intro"] if c.index else [])
        negative = ", ".join(avoid)
        audios.append(compose(GenerationRequest(c.prompt, c.duration, negative, seed=c.seed)))
    return chunks, audios, 44.5


@pytest.fixture(scope="module")
def joined(composed: tuple[list[Chunk], list[Audio], float]) -> tuple[np.ndarray, JoinReport]:
    chunks, audios, duration = composed
    return run(chunks, audios, duration)


def beat_track(seconds: float, phase: float, seed: int, rate: int = RATE) -> Audio:
    """Kick on every beat, hat on the off-beats, a held chord: beats at ``phase + k * BEAT``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n)
    for f in rng.choice([220, 277, 330, 415], 3):
        out += 0.04 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    kick_t = np.arange(round(0.15 * rate)) / rate
    kick = 0.6 * np.sin(2 * np.pi * (55 + 90 * np.exp(-kick_t * 30)) * kick_t) * np.exp(-kick_t * 20)
    hat_n = round(0.04 * rate)
    hat = 0.15 * rng.standard_normal(hat_n) * np.exp(-np.arange(hat_n) / (0.008 * rate))
    for k in range(-1, int(seconds / BEAT) + 2):
        for sound, when in ((kick, phase + k * BEAT), (hat, phase + (k + 0.5) * BEAT)):
            i = round(when * rate)
            lo, hi = max(i, 0), min(i + len(sound), n)
            if hi > lo:
                out[lo:hi] += sound[lo - i : hi - i]
    return Audio(np.stack([out, out], axis=1).astype(np.float32), rate)


def kicks(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Times (s) of kick drums: peaks of the low-passed level at least 0.3 s apart."""
    low = sosfilt(butter(4, 150, fs=rate, output="sos"), x.mean(axis=1))
    level = np.convolve(np.abs(low), np.ones(48) / 48, mode="same")
    peaks, _ = find_peaks(level, height=0.3 * level.max(), distance=round(0.3 * rate))
    onset = [p - np.argmax(level[p - 480 : p][::-1] < 0.1 * level[p]) for p in peaks if p > 480]
    return np.array(onset) / rate


# --- length and streaming -----------------------------------------------------------


@pytest.mark.parametrize("error_ms", [-7, 0, 9])
@pytest.mark.parametrize("duration", [1.0, 33.3337, 47.0])
def test_output_length_is_exact_even_when_chunks_are_a_little_off(duration: float, error_ms: int) -> None:
    if duration <= 20:
        chunks = chunk_row([0.0], [1])
    else:
        chunks = chunk_row([0.0, 14.0, 30.0], [18, 20, 18 if duration > 47 else 17])
    audios = [noise(c.duration + error_ms / 1000, c.index, rate=44100) for c in chunks]
    out, report = run(chunks, audios, duration)
    assert out.shape == (round(duration * RATE), 2)
    assert report.frames == len(out) and report.rate == RATE
    assert len(report.seams) == len(chunks) - 1


def test_streams_to_a_pcm_file_loading_each_chunk_once_in_order(tmp_path: Path) -> None:
    chunks = chunk_row([0.0, 14.0, 28.0, 42.0], [18, 18, 18, 18])
    calls: list[int] = []
    alive: list[weakref.ref[np.ndarray]] = []

    def load(chunk: Chunk) -> Audio:
        gc.collect()
        # At most two chunks in memory: the one being joined and the one before it.
        assert sum(ref() is not None for ref in alive[:-1]) == 0
        calls.append(chunk.index)
        audio = noise(chunk.duration, chunk.index)
        alive.append(weakref.ref(audio.samples))
        return audio

    with PcmWriter(tmp_path / "music.f32", RATE) as writer:
        report = assemble(chunks, load, 59.5, writer)
    assert calls == [0, 1, 2, 3]
    assert writer.file.frames == round(59.5 * RATE) == report.frames


def test_mono_and_other_rates_are_accepted() -> None:
    chunks = chunk_row([0.0, 16.0], [20, 20])
    mono = Audio(noise(20, 0, 22050).samples[:, :1], 22050)
    out, report = run(chunks, [mono, noise(20, 1, 32000)], 36.0)
    assert out.shape == (36 * RATE, 2) and report.rate == RATE
    assert np.allclose(out[RATE * 5 : RATE * 6, 0], out[RATE * 5 : RATE * 6, 1])


def test_nothing_to_join_is_a_clear_error() -> None:
    with pytest.raises(OptionError, match="no chunks"):
        run([], [], 1.0)
    with pytest.raises(OptionError, match="all must be positive"):
        run(chunk_row([0.0], [5]), [noise(5, 0)], 0.0)


# --- seam quality on real generated music -----------------------------------------


def test_no_level_dip_across_seams(joined: tuple[np.ndarray, JoinReport]) -> None:
    out, report = joined
    assert len(report.seams) == 2
    for seam in report.seams:
        a, b = round(seam.start * RATE), round(seam.end * RATE)
        before = out[a - 3 * RATE : a]
        after = out[b : b + 3 * RATE]
        neighbourhood = power_mean_db(before, after)
        assert mean_db(out[a:b]) >= neighbourhood - 1.0, seam
        # The middle of the crossfade, where a linear fade sags most, holds up too.
        centre = round(seam.centre * RATE)
        assert mean_db(out[centre - RATE : centre + RATE]) >= neighbourhood - 1.0, seam


def test_the_level_check_would_catch_a_linear_crossfade(
    composed: tuple[list[Chunk], list[Audio], float], joined: tuple[np.ndarray, JoinReport]
) -> None:
    """The measure above is sharp enough: a plain linear fade of the same chunks fails it."""
    _, audios, _ = composed
    seam = joined[1].seams[0]
    a = resample(audios[0].samples, audios[0].rate, RATE)
    b = resample(audios[1].samples, audios[1].rate, RATE)
    start = round(seam.start * RATE)
    n = round(seam.length * RATE)
    ramp = np.linspace(0, 1, n)[:, None]
    linear = a[start : start + n] * (1 - ramp) + b[:n] * ramp
    reference = power_mean_db(a[start - 3 * RATE : start], b[n : n + 3 * RATE])
    assert mean_db(linear) < reference - 1.0
    assert mean_db(linear[n // 4 : 3 * n // 4]) < reference - 1.0
    assert abs(seam.correlation) < 0.3, "independent renders should be nearly uncorrelated"


def test_no_click_at_seams(
    composed: tuple[list[Chunk], list[Audio], float], joined: tuple[np.ndarray, JoinReport]
) -> None:
    """Around each end of each crossfade, no sample step beyond the music's own."""
    out, report = joined
    steps = np.abs(np.diff(out, axis=0))
    typical = float(np.percentile(steps, 99.9))
    _, audios, _ = composed
    sources = [np.abs(np.diff(resample(a.samples, a.rate, RATE), axis=0)) for a in audios]
    placed = [0.0] + [s.start for s in report.seams]
    for n, seam in enumerate(report.seams):
        # At the start the outgoing chunk sounds alone, at the end the incoming one does:
        # a drum hit (or the placeholder's chord change) may land there on its own.
        for edge, source in ((seam.start, n), (seam.end, n + 1)):
            i = round(edge * RATE)
            j = i - round(placed[source] * RATE)
            own = float(sources[source][j - 48 : j + 48].max())
            assert steps[i - 48 : i + 48].max() <= max(typical, own * 1.01 + 1e-4), (seam, edge)


def test_real_chunks_are_slid_onto_the_first_chunks_beat(joined: tuple[np.ndarray, JoinReport]) -> None:
    """Every chunk of the composer starts on a beat of its own, so after the join each
    chunk's start should sit on chunk 0's beat grid (2.5-ms search resolution)."""
    _, report = joined
    for seam in report.seams:
        assert seam.score > 0.25, seam
        off_grid = (seam.start + BEAT / 2) % BEAT - BEAT / 2
        assert abs(off_grid) < 0.005, seam
    assert report.offsets == pytest.approx((-0.2, 0.1), abs=0.003)


def test_joined_music_starts_and_ends_quietly(joined: tuple[np.ndarray, JoinReport]) -> None:
    out, _ = joined
    assert np.abs(out[:10]).max() < 1e-3
    assert np.abs(out[-10:]).max() < 1e-3
    tail = rms_db(out[-3 * RATE :], 0.5)
    assert all(np.diff(tail) < 0.5)
    assert tail[-1] < tail[0] - 12


# --- the mechanics, on signals whose answer is known ---------------------------------


def test_equal_power_keeps_uncorrelated_noise_level_in_every_slice() -> None:
    chunks = chunk_row([0.0, 16.0], [20, 20])
    out, report = run(chunks, [noise(20, 1), noise(20, 2)], 36.0, fade_in=0.0, fade_out=0.0)
    (seam,) = report.seams
    level = rms_db(out)
    median = float(np.median(level))
    lo, hi = round((seam.start - 1) / 0.05), round((seam.end + 1) / 0.05)
    assert level[lo:hi].min() > median - 1.0
    assert level[lo:hi].max() < median + 1.0
    assert seam.offset == 0, "noise has no beat to align"


def test_alike_chunks_do_not_bulge() -> None:
    """Two renders that happen to be the same music: the fade becomes constant-amplitude."""
    same = noise(40, 7)
    second = Audio(same.samples[16 * RATE : 36 * RATE], RATE)
    chunks = chunk_row([0.0, 16.0], [20, 20])
    first = Audio(same.samples[: 20 * RATE], RATE)
    out, report = run(chunks, [first, second], 36.0, fade_in=0.0, fade_out=0.0)
    assert report.seams[0].correlation > 0.99
    np.testing.assert_allclose(out, same.samples[: 36 * RATE], atol=1e-4)


def test_no_step_when_joining_low_tones() -> None:
    """Slow sines have tiny sample steps, so any splice error would stand out."""
    t = np.arange(20 * RATE) / RATE
    waves = [0.5 * np.sin(2 * np.pi * f * t + p) for f, p in ((50, 0.3), (70, 2.0))]
    tones = [Audio(np.stack([w, w], axis=1), RATE) for w in waves]
    chunks = chunk_row([0.0, 16.0], [20, 20], crossfade=0.5)  # the shortest crossfade allowed
    out, report = run(chunks, tones, 36.0, fade_in=0.0, fade_out=0.0)
    assert np.abs(np.diff(out, axis=0)).max() < 2 * 2 * np.pi * 70 * 0.5 / RATE
    assert report.seams[0].length == pytest.approx(0.5)


@pytest.mark.parametrize("phase", [0.08, 0.1, 0.41, 0.2])
def test_seam_lands_on_the_beat(phase: float) -> None:
    """Chunk 1's beats are ``phase`` late against chunk 0's grid; the join lines them up."""
    chunks = chunk_row([0.0, 16.0], [20, 21])
    audios = [beat_track(20, 0.0, 1), beat_track(21, phase, 2)]
    out, report = run(chunks, audios, 36.0, fade_in=0.0, fade_out=0.0)
    (seam,) = report.seams
    expected = -phase if phase <= BEAT / 2 else BEAT - phase
    assert seam.offset == pytest.approx(expected, abs=0.003)
    found = kicks(out[round(14 * RATE) : round(22 * RATE)]) + 14
    assert len(found) == 16, found  # one kick per beat, none doubled in the crossfade
    from_first = found - found[0]  # the detector's own latency cancels out
    grid_error = np.abs((from_first + BEAT / 2) % BEAT - BEAT / 2)
    assert grid_error.max() < 0.01, found


def test_no_room_means_no_early_shift() -> None:
    """A chunk may move earlier only if the last one still reaches the end."""
    chunks = chunk_row([0.0, 16.0], [20, 20])
    audios = [beat_track(20, 0.0, 1), beat_track(20, 0.1, 2)]  # wants -0.1 s, but 36 s is exact
    out, report = run(chunks, audios, 36.0, fade_in=0.0, fade_out=0.0)
    assert report.seams[0].offset >= 0
    assert np.abs(out[-RATE // 10 :]).max() > 0.01, "the music reaches the very end"


def test_each_shift_and_the_total_drift_stay_bounded() -> None:
    starts = [0.0, 16.0, 32.0, 48.0, 64.0, 80.0]
    chunks = chunk_row(starts, [21] * 6)
    audios = [beat_track(21, 0.2 * i % BEAT, i) for i in range(6)]
    _, report = run(chunks, audios, 100.0, max_shift=0.25)
    assert len(report.seams) == 5
    drift = np.cumsum(report.offsets)
    assert np.abs(report.offsets).max() <= 0.25 + 1e-9
    assert np.abs(drift).max() <= 0.5 + 1e-9
    assert any(abs(o) > 0.01 for o in report.offsets)


def test_pads_are_not_moved() -> None:
    chunks = chunk_row([0.0, 16.0], [20, 21])
    audios = [compose(GenerationRequest("soft ambient pad, no drums", 20, seed=0))]
    audios.append(compose(GenerationRequest("soft ambient pad, no drums", 21, "intro", seed=1)))
    _, report = run(chunks, audios, 36.0)
    assert report.seams[0].offset == 0


@pytest.mark.parametrize("raw_rate", [44100, 48000])
def test_outpaint_continuations_join_sample_for_sample(raw_rate: int) -> None:
    """Chunks with no overlap continue the previous audio: the join is the piece unbroken."""
    whole = beat_track(50, 0.1, 3, rate=raw_rate).samples
    cuts = [(0, 20), (20, 35), (35, 50)]
    pieces = [Audio(whole[a * raw_rate : b * raw_rate], raw_rate) for a, b in cuts]
    chunks = [
        Chunk(i, float(a), b - a, "p", "", 0, 0.0, 0.0, i == 0, i == len(cuts) - 1, i)
        for i, (a, b) in enumerate(cuts)
    ]
    out, report = run(chunks, pieces, 50.0, fade_in=0.0, fade_out=0.0)
    reference = resample(whole, raw_rate, RATE)  # the unbroken piece through the same resampler
    assert report.offsets == (0.0, 0.0)
    np.testing.assert_allclose(out, reference[: len(out)], atol=1e-4)


def test_a_continuation_starts_where_the_previous_audio_really_ends() -> None:
    """An extension that came back 30 ms long pushes the rest later instead of overlapping."""
    whole = beat_track(30, 0.0, 4).samples
    pieces = [Audio(whole[: 10 * RATE + 1440], RATE), Audio(whole[10 * RATE + 1440 :], RATE)]
    chunks = [
        Chunk(0, 0.0, 10, "p", "", 0, is_first=True),
        Chunk(1, 10.0, 20, "p", "", 0, is_last=True, seed=1),
    ]
    out, report = run(chunks, pieces, 30.0, fade_in=0.0, fade_out=0.0)
    assert report.offsets == pytest.approx((0.03,))
    np.testing.assert_allclose(out, whole[: len(out)], atol=1e-6)
