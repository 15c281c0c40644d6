"""The embedded composer, measured as audio: tempo, key, drums, genre, length, level, ending.

Each piece is rendered once per module (10-30 s) and measured with small estimators written
here, independent of the composer's own code: onset strength from spectral flux, tempo by
autocorrelation of that envelope, key by correlating an FFT chroma with Krumhansl's profiles.
"""

from __future__ import annotations

import asyncio
from functools import cache

import numpy as np
import pytest
from conftest import rms

from autoscore.errors import OptionError
from autoscore.models import Audio
from autoscore.music.backends.base import ContinuationRequest, GenerationRequest
from autoscore.music.backends.procedural import (
    SAMPLE_RATE,
    ProceduralBackend,
    compose,
    continue_piece,
    explain,
)
from autoscore.music.backends.procedural.spec import parse_prompt

SR = SAMPLE_RATE
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@cache
def piece(prompt: str, duration: int = 20, negative: str = "", seed: int = 0, steps: int = 8) -> np.ndarray:
    return compose(GenerationRequest(prompt, duration, negative, steps=steps, seed=seed)).samples


def onset_strength(samples: np.ndarray, hop: int = 256) -> np.ndarray:
    mono = samples.mean(axis=1)
    n_fft = 1024
    frames = 1 + (len(mono) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    mag = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1))
    flux = np.maximum(0.0, np.diff(np.log1p(1000 * mag), axis=0)).sum(axis=1)
    return flux - np.convolve(flux, np.ones(32) / 32, mode="same")  # remove the slow trend


def estimate_tempo(samples: np.ndarray, lo: float, hi: float, hop: int = 256) -> float:
    """BPM in [lo, hi] whose lag (and its multiples) best match the onset autocorrelation."""
    env = onset_strength(samples, hop)
    env = np.maximum(env, 0)
    env -= env.mean()
    ac = np.correlate(env, env, mode="full")[len(env) - 1:]
    fps = SR / hop
    best, best_score = lo, -np.inf
    for bpm in np.arange(lo, hi, 0.1):
        lag = 60 * fps / bpm
        lags = lag * np.arange(1, 5)
        score = float(np.interp(lags, np.arange(len(ac)), ac).sum())
        if score > best_score:
            best, best_score = bpm, score
    return float(best)


def estimate_key(samples: np.ndarray) -> tuple[int, str]:
    """Krumhansl-Schmuckler: correlate a long-term FFT chroma (100 Hz - 2 kHz) with the 24 profiles."""
    mono = samples.mean(axis=1)
    n_fft = 8192
    mag = np.zeros(n_fft // 2 + 1)
    for s in range(0, len(mono) - n_fft, n_fft // 2):
        mag += np.abs(np.fft.rfft(mono[s:s + n_fft] * np.hanning(n_fft)))
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    ok = (freqs > 100) & (freqs < 2000)  # above the kick drum
    pcs = np.round(12 * np.log2(freqs[ok] / 440.0) + 69).astype(int) % 12
    chroma = np.bincount(pcs, weights=mag[ok], minlength=12)
    scores = []
    for mode, profile in (("major", KRUMHANSL_MAJOR), ("minor", KRUMHANSL_MINOR)):
        for root in range(12):
            scores.append((np.corrcoef(chroma, np.roll(profile, root))[0, 1], root, mode))
    _, root, mode = max(scores)
    return root, mode


def onset_rate(samples: np.ndarray) -> float:
    """Onsets per second: local maxima of the onset envelope above a fixed fraction of its peak."""
    env = np.maximum(onset_strength(samples), 0)
    thr = 0.25 * env.max()
    peaks = (env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > thr)
    return float(peaks.sum()) / (len(samples) / SR)


def percussive_energy(samples: np.ndarray) -> float:
    """Mean onset strength above 4 kHz relative to loudness: drums are broadband and spiky."""
    mono = samples.mean(axis=1)
    n_fft, hop = 1024, 256
    frames = 1 + (len(mono) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    mag = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1))[:, 93:]
    flux = np.maximum(0.0, np.diff(mag, axis=0)).sum(axis=1)
    return float(flux.mean()) / (rms(samples) + 1e-9)


def centroid(samples: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(samples.mean(axis=1)))
    freqs = np.fft.rfftfreq(len(samples), 1 / SR)
    return float((spec * freqs).sum() / spec.sum())


@pytest.mark.parametrize("duration", [1, 3, 7, 13, 30])
def test_length_is_exact_stereo_float32(duration: int) -> None:
    out = piece("warm piano and pads", duration)
    assert out.shape == (round(duration * SR), 2)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert rms(out) > 0.01


@pytest.mark.parametrize(
    ("prompt", "bpm"),
    [("noir trip-hop with Rhodes, 85 BPM", 85), ("deep house, 124 bpm", 124), ("indie rock at 140 BPM", 140)],
)
def test_tempo_matches_prompt_within_3_percent(prompt: str, bpm: int) -> None:
    est = estimate_tempo(piece(prompt, 20), bpm / 1.41, bpm * 1.41)
    assert abs(est - bpm) / bpm < 0.03, f"asked {bpm} BPM, measured {est:.1f}"


@pytest.mark.parametrize(
    ("prompt", "root", "mode"),
    [("calm piano and strings in D minor", 2, "minor"), ("bright happy pop in A major", 9, "major"),
     ("melancholic piano ballad in F# minor", 6, "minor"),
     ("uplifting piano and strings in Eb major", 3, "major")],
)
def test_chroma_matches_asked_key(prompt: str, root: int, mode: str) -> None:
    for seed in (0, 1):
        got = estimate_key(piece(prompt, 20, seed=seed))
        assert got == (root, mode), f"seed {seed}: asked {NAMES[root]} {mode}, heard {NAMES[got[0]]} {got[1]}"


def test_implicit_key_comes_from_words_and_is_heard() -> None:
    spec = parse_prompt("happy acoustic vlog")
    assert spec.mode == "major"
    assert estimate_key(piece("happy acoustic vlog", 20)) == (spec.root, spec.mode)


def test_no_drums_leaves_little_percussive_energy() -> None:
    with_drums = percussive_energy(piece("lo-fi study beat with piano", 20))
    inline = percussive_energy(piece("lo-fi study beat with piano, no drums", 20))
    negative = percussive_energy(piece("lo-fi study beat with piano", 20, negative="drums, percussion"))
    assert inline < 0.4 * with_drums
    assert negative < 0.4 * with_drums
    assert parse_prompt("lo-fi study beat with piano, no drums").drums == "none"


def test_genres_differ_audibly() -> None:
    ambient = piece("calm ambient pads", 20)
    house = piece("deep house, high energy", 20)
    rock = piece("driving indie rock", 20)
    assert onset_rate(house) > 2 * onset_rate(ambient)
    assert centroid(house) > 1.3 * centroid(ambient)
    assert abs(centroid(rock) - centroid(house)) > 100 or abs(onset_rate(rock) - onset_rate(house)) > 0.5


def test_peak_below_full_scale() -> None:
    for prompt in ("deep house, high energy", "epic cinematic trailer, strings brass percussion",
                   "calm ambient pads", "lo-fi study beat with piano"):
        out = piece(prompt, 20)
        assert 0.1 < float(np.max(np.abs(out))) < 0.95


def test_ending_decays_to_silence() -> None:
    out = piece("noir trip-hop with Rhodes, 85 BPM", 20)
    body = rms(out[2 * SR:-3 * SR])
    assert rms(out[-SR // 2:]) < body / 10
    assert np.max(np.abs(out[-1])) < 1e-3


def test_negative_ending_keeps_full_texture_to_the_last_sample() -> None:
    out = piece("noir trip-hop with Rhodes, 85 BPM", 20, negative="ending, fade-out")
    body = rms(out[2 * SR:-3 * SR])
    assert rms(out[-SR // 2:]) > 0.4 * body
    assert "no ending" in explain("x", "ending, fade-out")


def test_negative_intro_starts_at_full_texture() -> None:
    straight = piece("lo-fi study beat with piano", 20, negative="intro")
    with_intro = piece("lo-fi study beat with piano", 20)
    assert rms(straight[:SR]) > 0.5 * rms(straight[3 * SR:-3 * SR])
    assert percussive_energy(straight[: 3 * SR]) > 2 * percussive_energy(with_intro[: 3 * SR])


def test_build_gets_busier() -> None:
    out = piece("lo-fi beat that builds", 30, negative="intro, ending")
    half = len(out) // 2
    assert percussive_energy(out[half:]) > percussive_energy(out[:half])


def test_same_request_same_samples_other_seed_other_piece() -> None:
    a = piece("bright acoustic vlog", 10)
    b = compose(GenerationRequest("bright acoustic vlog", 10)).samples
    c = piece("bright acoustic vlog", 10, seed=5)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_tempo_and_key_depend_on_words_not_seed_or_section_words() -> None:
    opening = parse_prompt("noir trip-hop, Rhodes, calm opening")
    later = parse_prompt("noir trip-hop, Rhodes, building tension, no bass")
    assert (opening.tempo, opening.root, opening.mode) == (later.tempo, later.root, later.mode)
    t0 = estimate_tempo(piece("noir trip-hop", 20, seed=0), 60, 120)
    t1 = estimate_tempo(piece("noir trip-hop", 20, seed=3), 60, 120)
    assert abs(t0 - t1) / t0 < 0.03


def test_guidance_and_steps_have_their_documented_meaning() -> None:
    assert parse_prompt("lo-fi with piano", guidance=3.0).instruments == ("piano",)
    assert "bass" in parse_prompt("lo-fi with piano", guidance=1.0).instruments
    draft = piece("calm piano", 8, steps=1)
    full = piece("calm piano", 8, steps=8)
    assert draft.shape == full.shape and not np.allclose(draft, full)


def test_explain_reports_what_was_understood() -> None:
    text = explain("noir trip-hop with Rhodes and banana sounds, 85 BPM in D minor, no drums", "vocals")
    assert "85 BPM" in text
    assert "D minor" in text
    assert "electric piano" in text
    assert "drums: none" in text
    assert "removed: drums" in text
    assert "banana" in text.split("ignored words:")[1]
    assert "vocals" in text


def test_continuation_keeps_source_and_beat_grid_without_a_seam() -> None:
    prompt = "noir trip-hop with Rhodes, 85 BPM"
    src = Audio(piece(prompt, 12, negative="ending, fade-out"), SR)
    out = continue_piece(ContinuationRequest(src, prompt, 8, negative_prompt="ending, fade-out")).samples
    assert out.shape == (src.frames + 8 * SR, 2)
    assert np.array_equal(out[: src.frames], src.samples)
    join = src.frames
    step = np.abs(out[join] - out[join - 1]).max()
    typical = np.percentile(np.abs(np.diff(src.samples, axis=0)), 99)
    assert step <= typical  # no click: the join is no bigger a step than the music's own
    level = 20 * np.log10(rms(out[join:join + 2 * SR]) / rms(out[join - 2 * SR:join]))
    assert abs(level) < 3  # and no jump in loudness
    around = out[join - 8 * SR:join + 8 * SR]
    assert abs(estimate_tempo(around, 60, 120) - 85) / 85 < 0.03
    # Onsets after the join sit on the source's beat grid: compare the phase of both halves.
    beat = 60 / 85
    fps = SR / 256

    def phase(x: np.ndarray) -> float:
        env = np.maximum(onset_strength(x), 0)
        cands = np.arange(0, beat, 1 / fps)
        scores = [np.interp(np.arange(p, len(env) / fps, beat) * fps, np.arange(len(env)), env).sum()
                  for p in cands]
        return float(cands[int(np.argmax(scores))])

    before = phase(out[join - 8 * SR:join]) + (join - 8 * SR) / SR
    after = phase(out[join:join + 8 * SR]) + join / SR
    diff = (after - before) % beat
    assert min(diff, beat - diff) < 0.03


def test_backend_runs_and_validates() -> None:
    audio = asyncio.run(ProceduralBackend().generate(GenerationRequest("gentle piano", 3)))
    assert audio.rate == SR and audio.frames == 3 * SR
    with pytest.raises(OptionError):
        asyncio.run(ProceduralBackend().generate(GenerationRequest("gentle piano", 0)))


def test_a_chunk_that_does_not_end_the_score_plays_to_its_last_sample() -> None:
    """The planner's flags reach the arrangement: only the piece that ends the score ends."""
    from autoscore.music.backends.base import GenerationRequest
    from autoscore.music.backends.procedural.composer import compose

    def tail_db(ends: bool) -> float:
        audio = compose(GenerationRequest("warm piano and soft pads, 90 BPM", 12, opens=False, ends=ends))
        tail = audio.samples[-audio.rate // 2 :]
        return float(20 * np.log10(np.sqrt(np.mean(tail**2)) + 1e-9))

    going, ending = tail_db(False), tail_db(True)
    assert going > -30.0  # still playing at full level
    assert ending < going - 30.0  # the last piece has ended and died away
