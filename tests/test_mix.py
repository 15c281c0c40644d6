"""The mixer end to end on real files, checked with independent meters (pyloudnorm, resample_poly)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import minimum_filter1d
from scipy.signal import oaconvolve, resample_poly, sosfilt

from autoscore.errors import InputError, OptionError
from autoscore.media.ffmpeg import decode_audio, encode_audio
from autoscore.media.files import scratch_folder
from autoscore.media.pcm import PcmFile, PcmWriter, decode_for_mixing
from autoscore.mixing import mix
from autoscore.mixing.duck import DuckEnvelope, build_envelope
from autoscore.mixing.limiter import RELEASE_CHUNK, LookaheadLimiter, sliding_min
from autoscore.mixing.loudness import (
    OVERSAMPLE,
    PHASES,
    TAPS_PER_PHASE,
    TILE,
    KWeighting,
    TruePeakMeter,
    integrated_loudness,
    k_weighting_sos,
    oversampled_peaks,
)
from autoscore.mixing.mix import MixReport, mix_audio
from autoscore.mixing.picture import write_report
from autoscore.models import MIX_RATE, Audio
from autoscore.text.presets import MixSettings

VOICE = Path(__file__).parent / "data" / "voice.flac"
DURATION = 16.0
FRAMES = round(DURATION * MIX_RATE)
OFFSETS = (2.0, 9.5)
SETTINGS = MixSettings()


def lufs(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(MIX_RATE).integrated_loudness(x.astype(np.float64)))


def true_peak_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(resample_poly(x.astype(np.float64), 4, 1, axis=0)))))


def window_db(num: np.ndarray, den: np.ndarray, start: float, end: float) -> float:
    """Level of ``num`` relative to ``den`` over [start, end) seconds."""
    a, b = round(start * MIX_RATE), round(end * MIX_RATE)
    return float(10 * np.log10(np.sum(num[a:b] ** 2) / np.sum(den[a:b] ** 2)))


def synthetic_music(frames: int, seed: int = 11) -> np.ndarray:
    """Chords plus short noise bursts: steady enough to measure, busy enough to be music-like."""
    t = np.arange(frames) / MIX_RATE
    chord = sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate((196.0, 246.9, 293.7, 392.0)))
    rng = np.random.default_rng(seed)
    bursts = rng.standard_normal(frames) * (np.sin(2 * np.pi * 2 * t) > 0.95)
    left = 0.08 * chord + 0.05 * bursts
    right = 0.08 * np.roll(chord, 50) + 0.05 * bursts
    return np.stack([left, right], axis=1).astype(np.float32)


def write_pcm(path: Path, samples: np.ndarray) -> PcmFile:
    with PcmWriter(path, MIX_RATE) as writer:
        writer.write(samples)
    return writer.file


@dataclass
class Run:
    report: MixReport
    mix: np.ndarray
    music: np.ndarray


def run_mix(original: Path | None, music: PcmFile, settings: MixSettings = SETTINGS, **kwargs: object) -> Run:
    out: list[np.ndarray] = []
    music_out: list[np.ndarray] = []
    with scratch_folder() as folder:
        decoded = None if original is None else decode_for_mixing(original, folder)
        report = mix_audio(decoded, music, settings, duration=DURATION, sink=out.append,
                           music_sink=music_out.append, **kwargs)  # type: ignore[arg-type]
    return Run(report, np.concatenate(out), np.concatenate(music_out))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mix")
    voice = decode_audio(VOICE, MIX_RATE, 1).samples[:, 0]
    rng = np.random.default_rng(2)
    speech = (rng.standard_normal(FRAMES) * 1e-3).astype(np.float32)
    for offset in OFFSETS:
        start = round(offset * MIX_RATE)
        speech[start : start + len(voice)] += voice * 0.6
    encode_audio(Audio(np.stack([speech, speech], axis=1), MIX_RATE), root / "speech.flac", "flac")
    encode_audio(Audio.silence(DURATION, MIX_RATE), root / "silence.wav", "wav")
    write_pcm(root / "music.f32", synthetic_music(FRAMES))
    return {"root": root, "speech": root / "speech.flac", "silence": root / "silence.wav",
            "music": root / "music.f32"}


@pytest.fixture(scope="module")
def voice_seconds() -> float:
    return decode_audio(VOICE, MIX_RATE, 1).frames / MIX_RATE


@pytest.fixture(scope="module")
def music(media: dict[str, Path]) -> PcmFile:
    return PcmFile(media["music"], MIX_RATE)


@pytest.fixture(scope="module")
def speech_run(media: dict[str, Path], music: PcmFile) -> Run:
    return run_mix(media["speech"], music, stems_dir=media["root"] / "stems")


@pytest.fixture(scope="module")
def stems(speech_run: Run, media: dict[str, Path]) -> dict[str, np.ndarray]:
    folder = media["root"] / "stems"
    return {p.stem: decode_audio(p, MIX_RATE).samples for p in folder.glob("*.wav")}


def test_output_has_exactly_the_input_length(speech_run: Run) -> None:
    assert speech_run.mix.shape == (FRAMES, 2)
    assert speech_run.music.shape == (FRAMES, 2)
    assert speech_run.mix.dtype == np.float32


def test_loudness_and_true_peak_meet_the_preset(speech_run: Run) -> None:
    measured = lufs(speech_run.mix)
    assert measured == pytest.approx(SETTINGS.target_lufs, abs=1.0)
    assert speech_run.report.integrated_lufs == pytest.approx(measured, abs=0.15)
    assert true_peak_db(speech_run.mix) <= SETTINGS.true_peak_db
    assert speech_run.report.true_peak_dbtp <= SETTINGS.true_peak_db
    assert speech_run.report.true_peak_dbtp == pytest.approx(true_peak_db(speech_run.mix), abs=0.1)


def test_speech_regions_are_reported(speech_run: Run, voice_seconds: float) -> None:
    length = voice_seconds
    regions = speech_run.report.speech_regions
    assert [round(s, 1) for s, _ in regions] == pytest.approx(list(OFFSETS), abs=0.1)
    assert [e for _, e in regions] == pytest.approx([o + length for o in OFFSETS], abs=0.15)


def test_music_is_ducked_during_speech_and_back_up_outside(speech_run: Run, stems: dict[str, np.ndarray],
                                                          voice_seconds: float) -> None:
    length = voice_seconds
    ducked, unducked = speech_run.music, stems["music"]
    depth = SETTINGS.duck_depth_db
    first_end = OFFSETS[0] + length
    assert window_db(ducked, unducked, OFFSETS[0] + 0.2, first_end - 0.2) == pytest.approx(-depth, abs=2.0)
    assert window_db(ducked, unducked, OFFSETS[1] + 0.2, 12.8) == pytest.approx(-depth, abs=2.0)
    # Between the two: released after release_ms, not yet falling for the next one.
    back_up = first_end + SETTINGS.release_ms / 1000 + 0.1
    assert window_db(ducked, unducked, back_up, OFFSETS[1] - 0.3) == pytest.approx(0.0, abs=1.0)
    assert window_db(ducked, unducked, 1.1, OFFSETS[0] - 0.3) == pytest.approx(0.0, abs=1.0)


def test_dip_is_complete_by_each_speech_onset(speech_run: Run, stems: dict[str, np.ndarray]) -> None:
    for onset in (start for start, _ in speech_run.report.speech_regions):
        level = window_db(speech_run.music, stems["music"], onset - 0.05, onset)
        assert level == pytest.approx(-SETTINGS.duck_depth_db, abs=2.0)


def test_unducked_music_sits_at_the_preset_level_below_dialogue(stems: dict[str, np.ndarray]) -> None:
    relative = lufs(stems["music"]) - lufs(stems["original"])
    assert relative == pytest.approx(SETTINGS.music_level_db, abs=0.5)


def test_stems_are_aligned_with_the_mix(speech_run: Run, stems: dict[str, np.ndarray],
                                        media: dict[str, Path]) -> None:
    assert set(stems) == {"music", "music_ducked", "original", "mix"}
    assert not list((media["root"] / "stems").glob("*.part"))
    np.testing.assert_array_equal(stems["mix"], speech_run.mix)
    np.testing.assert_array_equal(stems["music_ducked"], speech_run.music)
    # Where the limiter did not act, the mix is exactly original + ducked music.
    quiet = slice(round(0.5 * MIX_RATE), round(1.9 * MIX_RATE))
    np.testing.assert_allclose(stems["original"][quiet] + stems["music_ducked"][quiet],
                               speech_run.mix[quiet], atol=1e-6)


def test_block_size_does_not_change_the_result(speech_run: Run, media: dict[str, Path],
                                              music: PcmFile) -> None:
    small = run_mix(media["speech"], music, block_frames=4800 * 3)
    whole = run_mix(media["speech"], music, block_frames=10**9)
    for other in (small, whole):
        np.testing.assert_allclose(other.mix, speech_run.mix, atol=2e-6)
        np.testing.assert_allclose(other.music, speech_run.music, atol=2e-6)
        assert other.report.final_gain_db == pytest.approx(speech_run.report.final_gain_db, abs=1e-6)


@pytest.mark.parametrize("kind", ["no audio", "digital silence"])
def test_missing_or_silent_dialogue_gets_unducked_music_at_target(kind: str, media: dict[str, Path],
                                                                 music: PcmFile) -> None:
    run = run_mix(None if kind == "no audio" else media["silence"], music)
    assert run.report.dialogue_lufs is None
    assert run.report.speech_regions == ()
    assert run.mix.shape == (FRAMES, 2)
    assert lufs(run.mix) == pytest.approx(SETTINGS.target_lufs, abs=1.0)
    assert true_peak_db(run.mix) <= SETTINGS.true_peak_db
    raw = PcmFile(media["music"], MIX_RATE).read_all()
    gain = 10 ** ((run.report.final_gain_db + run.report.music_gain_db) / 20)
    limited = run.report.limiter_reduction_max_db > 0
    steady = slice(round(2 * MIX_RATE), round(12 * MIX_RATE))
    level = window_db(run.music[steady], raw[steady] * gain, 0, 10)
    assert level == pytest.approx(0.0, abs=1.0 if limited else 0.01)


def test_silent_music_does_not_crash(media: dict[str, Path]) -> None:
    silent = write_pcm(media["root"] / "silent.f32", np.zeros((FRAMES, 2), np.float32))
    run = run_mix(media["speech"], silent)
    assert run.report.music_lufs is None
    assert lufs(run.mix) == pytest.approx(SETTINGS.target_lufs, abs=1.0)


def test_loud_mode_ducks_under_the_voice_too(media: dict[str, Path], music: PcmFile) -> None:
    run = run_mix(media["speech"], music, replace(SETTINGS, duck_on="loud"))
    regions = run.report.speech_regions
    voice = decode_audio(VOICE, MIX_RATE, 1).duration
    for offset in OFFSETS:  # each utterance is found where it starts...
        assert any(start == pytest.approx(offset, abs=0.3) for start, _ in regions), regions
    for start, end in regions:  # ...and nothing is found outside the two utterances
        assert any(offset - 0.3 <= start and end <= offset + voice + 0.5 for offset in OFFSETS), regions


def test_music_at_the_wrong_rate_is_refused(media: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="48000 Hz"):
        mix_audio(None, PcmFile(media["music"], 44100), SETTINGS, duration=1.0, sink=lambda b: None)


def test_streaming_meter_agrees_with_pyloudnorm(media: dict[str, Path]) -> None:
    rng = np.random.default_rng(4)
    clips = [
        decode_audio(media["speech"], MIX_RATE).samples,
        synthetic_music(5 * MIX_RATE),
        (rng.standard_normal((3 * MIX_RATE, 2)) * 0.05).astype(np.float32),
    ]
    for clip in clips:
        ours = integrated_loudness(clip, MIX_RATE)
        assert ours is not None
        assert ours == pytest.approx(lufs(clip), abs=0.1)
    assert integrated_loudness(np.zeros((MIX_RATE, 2), np.float32), MIX_RATE) is None


def test_true_peak_meter_sees_intersample_peaks() -> None:
    t = np.arange(MIX_RATE) / MIX_RATE
    # A quarter-rate sine sampled 45 degrees off its crests: sample peak 3 dB under the real one.
    tone = np.sin(2 * np.pi * MIX_RATE / 4 * t + math.pi / 4) * 0.5 + np.sin(2 * np.pi * 997 * t) * 0.3
    stereo = np.stack([tone, -tone], axis=1)
    meter = TruePeakMeter(2)
    for piece in np.array_split(stereo, 13):
        meter.add(piece)
    meter.finish()
    assert meter.dbtp == pytest.approx(true_peak_db(stereo), abs=0.1)
    assert meter.dbtp > 20 * math.log10(np.max(np.abs(stereo))) + 0.5


def test_limiter_holds_the_ceiling_with_smooth_gain() -> None:
    t = np.arange(3 * MIX_RATE) / MIX_RATE
    signal = 0.3 * np.sin(2 * np.pi * 440 * t)
    signal[MIX_RATE : MIX_RATE + 2400] *= 6.0  # a 50 ms shout, 5.6 dB over full scale
    stereo = np.stack([signal, signal], axis=1).astype(np.float32)
    limiter = LookaheadLimiter(-1.0, MIX_RATE)
    outs, gains = zip(*(limiter.process(b) for b in np.array_split(stereo, 10)), strict=True)
    tail_out, tail_gain = limiter.flush()
    out = np.concatenate([*outs, tail_out])[limiter.delay :]
    gain = np.concatenate([*gains, tail_gain])[limiter.delay :]
    assert out.shape == stereo.shape
    assert true_peak_db(out) <= -1.0 + 0.05
    assert np.max(np.abs(np.diff(gain))) < 0.01  # no steps: ramps over the lookahead
    # Away from the shout the signal passes untouched (only delayed).
    np.testing.assert_array_equal(out[: MIX_RATE // 2], stereo[: MIX_RATE // 2])
    np.testing.assert_array_equal(out[-MIX_RATE // 2 :], stereo[-MIX_RATE // 2 :])


def test_report_picture_is_written(speech_run: Run, tmp_path: Path) -> None:
    target = tmp_path / "mix.png"
    write_report(target, speech_run.report, sections=[0.0, 8.0], chunks=[0.0, 6.0, 12.0])
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mix.png"]
    with pytest.raises(OptionError, match=r"\.png"):
        write_report(tmp_path / "mix.xyz", speech_run.report)


# --- the fast paths agree with the slow ones they replace ------------------------------------


def _prepared(original: Path, music: PcmFile, scratch: Path, settings: MixSettings = SETTINGS
              ) -> tuple[mix._Source, DuckEnvelope, mix._Analysis, float, float]:
    total = FRAMES
    decoded = decode_for_mixing(original, scratch)
    source = mix._Source(full=decoded.full, speech=decoded.speech)
    size = mix.DEFAULT_BLOCK
    regions = mix._detect(source=source, settings=settings, duration=DURATION, size=size)
    envelope = build_envelope(regions, DURATION, settings)
    raw_music = mix._music_energy(music=music, total=total, size=size)
    analysis = mix._analyse(source=source, music=music, envelope=envelope, total=total, size=size,
                            raw_music=raw_music)
    _, _, music_gain_db, final_gain_db = mix._choose_gains(analysis=analysis, settings=settings)
    return source, envelope, analysis, music_gain_db, final_gain_db


@pytest.mark.parametrize("extra_db", [0.0, 12.0])
def test_limiter_loss_estimate_matches_a_full_measuring_pass(media: dict[str, Path], music: PcmFile,
                                                             tmp_path: Path, extra_db: float) -> None:
    source, envelope, analysis, music_db, final_db = _prepared(media["speech"], music, tmp_path)
    final_db += extra_db  # +12 dB: the limiter works hard on every word
    b, f = 10 ** ((music_db + final_db) / 20), 10 ** (final_db / 20)
    size = 4800 * 7  # blocks that do not line up with the stretches
    common = {"source": source, "music": music, "envelope": envelope, "settings": SETTINGS, "total": FRAMES,
              "size": size, "music_gain": b, "final_gain": f}
    estimate = mix._limited_loudness(analysis=analysis, **common)
    full, _, min_gain = mix._render(sink=mix._discard, music_sink=None, stems=None, **common)
    assert estimate is not None and full is not None
    assert estimate == pytest.approx(full, abs=0.01)
    limiter = LookaheadLimiter(SETTINGS.true_peak_db - mix.LIMITER_MARGIN_DB, MIX_RATE)
    stretches = mix._limited_stretches(analysis=analysis, music_gain=b, final_gain=f, limiter=limiter)
    covered = sum(last - first for first, last in stretches)
    assert 0 < covered < len(analysis.oo)  # both parts of the estimate were exercised
    if extra_db:
        assert min_gain < 10 ** (-6 / 20)
        assert full < analysis.loudness(f, b) - 1.0  # limiting cost loudness, and the estimate saw it


def test_the_mixer_reads_decoded_audio_and_never_the_input(media: dict[str, Path], music: PcmFile,
                                                            tmp_path: Path) -> None:
    """The input may be gone once decoded; the mix comes out the same, and the mixer writes nothing."""
    source = tmp_path / "speech.wav"
    source.write_bytes(media["speech"].read_bytes())
    decoded = decode_for_mixing(source, tmp_path)
    source.unlink()
    before = sorted(tmp_path.iterdir())
    out: list[np.ndarray] = []
    mix_audio(decoded, music, SETTINGS, duration=DURATION, sink=out.append)
    assert sorted(tmp_path.iterdir()) == before
    np.testing.assert_allclose(np.concatenate(out), run_mix(media["speech"], music).mix, atol=1e-6)


def test_sparse_oversampled_peaks_equal_the_full_interpolation() -> None:
    rng = np.random.default_rng(7)
    frames = 3 * TILE + 123
    loud = np.zeros(frames)
    loud[TILE - 5 : TILE + 40] = 1.0  # a burst straddling a tile edge
    loud[2 * TILE + 300 : 2 * TILE + 900] = 1.0
    block = (rng.standard_normal((frames, 2)) * (0.01 + 0.5 * loud[:, None])).astype(np.float32)
    history = rng.standard_normal((TAPS_PER_PHASE, 2)) * 0.4
    ext = np.concatenate([history, block]).astype(np.float64)
    phases = [oaconvolve(ext, PHASES[p][:, None], mode="valid", axes=0)[-len(block) :]
              for p in range(OVERSAMPLE)]
    full = np.abs(np.stack(phases, axis=1)).max(axis=(1, 2))
    for threshold in (0.0, 0.05, 0.5, 1.0):
        sparse = oversampled_peaks(history, block, threshold)
        above = full > threshold
        np.testing.assert_allclose(sparse[above], full[above], rtol=1e-5)
        assert np.all(sparse <= full * (1 + 1e-5))
    assert np.all(oversampled_peaks(history, block, 10.0) == 0.0)


def test_long_blocks_limit_exactly_like_short_ones() -> None:
    """The release runs in chunks of RELEASE_CHUNK frames; a block longer than that changes nothing."""
    frames = RELEASE_CHUNK + 50_000
    t = np.arange(frames) / MIX_RATE
    signal = 0.3 * np.sin(2 * np.pi * 330 * t)
    signal[RELEASE_CHUNK - 4000 : RELEASE_CHUNK - 1000] *= 5.0  # still recovering at the chunk edge
    stereo = np.stack([signal, -signal], axis=1).astype(np.float32)
    whole, short = LookaheadLimiter(-1.0, MIX_RATE), LookaheadLimiter(-1.0, MIX_RATE)
    out_whole = whole.process(stereo)[0]
    out_short = np.concatenate([short.process(b)[0] for b in np.array_split(stereo, 40)])
    np.testing.assert_allclose(out_whole, out_short, atol=1e-6)
    assert whole.min_gain < 0.7


def test_envelope_gains_equal_the_db_interpolation() -> None:
    env = build_envelope([(0.5, 1.2), (1.3, 2.0), (3.01, 3.5)], 4.0, SETTINGS)
    for start, count in [(0, 4 * MIX_RATE + 500), (12_345, 7_777), (239, 2), (MIX_RATE * 4 - 10, 100)]:
        reference = (10 ** (env.duck_db_at((start + np.arange(count)) / MIX_RATE) / 20)).astype(np.float32)
        np.testing.assert_allclose(env.gains(start, count, MIX_RATE), reference, rtol=1e-6)


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_k_weighting_fir_matches_the_biquads_across_any_block_split(rate: int) -> None:
    """The FIR stand-in against scipy's recursive filter, fed in uneven blocks (and an empty one)."""
    rng = np.random.default_rng(rate)
    x = rng.standard_normal((rate * 3 + 17, 2)) * 0.3
    x[rate : rate + 500] *= 8  # a burst, so the tail of the response is exercised at full level
    reference = sosfilt(k_weighting_sos(rate), x, axis=0)
    kw = KWeighting(rate, 2)
    cuts = [0, 1, 1, 4000, rate // 3, rate * 2 + 5, len(x)]
    out = np.concatenate([kw(x[a:b]) for a, b in itertools.pairwise(cuts)])
    assert out.shape == x.shape
    assert np.abs(out - reference).max() < 1e-7 * np.abs(reference).max()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=0, max_size=80), st.integers(1, 12))
def test_sliding_min_is_the_minimum_of_every_window(values: list[float], w: int) -> None:
    x = np.array(values, dtype=np.float64)
    expected = [min(values[i : i + w]) for i in range(len(values) - w + 1)]
    np.testing.assert_array_equal(sliding_min(x, w), np.array(expected, dtype=np.float64))


def test_sliding_min_agrees_with_scipy_on_long_input() -> None:
    x = np.random.default_rng(3).standard_normal(100_000)
    w = 240
    centred = minimum_filter1d(x, w)
    np.testing.assert_array_equal(sliding_min(x, w), centred[w // 2 : w // 2 + len(x) - w + 1])
