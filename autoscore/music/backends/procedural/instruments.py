"""Instrument timbres, rendered once per pitch and reused for every note.

Speed comes from two habits: a note is a slice of a cached per-pitch waveform times a
release taper (so a piece with 2000 notes synthesises maybe 60 waveforms), and sustained
tones are read from band-limited single-cycle wavetables (built with one inverse FFT)
instead of being filtered sample by sample. Karplus-Strong strings run block by block:
each block of one period depends only on earlier blocks, so numpy does a period at a time.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DRUMS", "SAMPLE_RATE", "drum_hit", "midi_hz", "note_buffer"]

SAMPLE_RATE = 44100
SR = SAMPLE_RATE
TABLE = 4096
DRUMS = ("kick", "snare", "rim", "clap", "hat", "openhat", "shaker", "crash", "taiko", "tom", "boom")


def midi_hz(midi: float) -> float:
    return 440.0 * math.pow(2.0, (midi - 69) / 12)


def _taper(n: int) -> np.ndarray:
    return (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)


@lru_cache(maxsize=512)
def _table(kind: str, f0: float, bright: float) -> np.ndarray:
    """One band-limited cycle whose harmonic amplitudes already include the instrument's filter."""
    kmax = max(1, min(int(18000 / f0), TABLE // 2 - 1))
    k = np.arange(1, kmax + 1, dtype=np.float64)
    fk = k * f0
    cutoff = 600 + 5000 * bright
    lowpass = 1.0 / np.sqrt(1.0 + (fk / cutoff) ** 4)
    if kind == "saw":
        amps = lowpass / k
    elif kind == "square":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.12 / k) * lowpass
    elif kind == "choir":  # vowel "ah": formant bumps on a soft saw
        formants = sum(g * np.exp(-(((fk - fc) / bw) ** 2)) for fc, bw, g in
                       ((800, 130, 1.0), (1150, 150, 0.6), (2900, 300, 0.25)))
        amps = (0.15 / k + formants) * (fk < 5000)
    elif kind == "brass":
        amps = lowpass / k ** 0.8
    elif kind == "string":
        amps = lowpass / k * (1 + 0.3 * np.sin(k * 1.7))
    else:  # "sine-ish" warm tone
        amps = np.exp(-(k - 1) / (1 + 3 * bright))
    spec = np.zeros(TABLE // 2 + 1, np.complex128)
    spec[1:kmax + 1] = -1j * amps
    table = np.fft.irfft(spec, TABLE)
    peak: np.float64 = np.max(np.abs(table))
    return (table / peak).astype(np.float32)


def _osc(table: np.ndarray, freq: float, n: int, phase0: float = 0.0,
         vibrato: float = 0.0, vib_rate: float = 5.0) -> np.ndarray:
    """Table lookup with a 16.16 fixed-point phase: exact pitch, integer arithmetic only."""
    inc = round(freq / SR * TABLE * 65536)
    idx = np.arange(n, dtype=np.int64)
    idx *= inc
    idx += round(phase0 * TABLE * 65536)
    idx >>= 16
    if vibrato:
        t = np.arange(n, dtype=np.float32) / np.float32(SR)
        depth = np.float32(freq * vibrato / (2 * np.pi * vib_rate) * TABLE)
        wobble = np.minimum(t / np.float32(0.6), np.float32(1.0)) * depth
        wobble *= np.sin(np.float32(2 * np.pi * vib_rate) * t)
        idx += wobble.astype(np.int64)
    idx &= TABLE - 1
    return table[idx]


def _adsr(n: int, attack: float, tau: float | None) -> NDArray[np.float32]:
    t = np.arange(n, dtype=np.float32) / SR
    env = np.minimum(t / max(attack, 1e-4), 1.0)
    if tau is not None:
        env *= np.exp(-t / tau)
    return env


def _karplus(freq: float, n: int, seed: int, bright: float, decay: float) -> np.ndarray:
    period = SR / freq
    d = max(3, int(period - 0.5))
    frac = period - 0.5 - d
    c0, c1, c2 = 0.5 * (1 - frac), 0.5, 0.5 * frac
    g = decay ** (1.0 / (freq * 1.0))
    rng = np.random.default_rng(seed)
    burst = rng.uniform(-1, 1, d)
    soft = max(2, int(6 - 6 * bright))  # a softer (fingertip) pluck has fewer high partials
    burst = np.convolve(burst, np.ones(soft) / soft, mode="same")
    burst -= burst.mean()
    y = np.zeros(n + 2, np.float64)
    y[2:2 + d] = burst
    pos = 2 + d
    while pos < n + 2:
        end = min(pos + d, n + 2)
        m = end - pos
        y[pos:end] = g * (c0 * y[pos - d:pos - d + m] + c1 * y[pos - d - 1:pos - d - 1 + m]
                          + c2 * y[pos - d - 2:pos - d - 2 + m])
        pos = end
    out = y[2:].astype(np.float32)
    peak: np.floating[Any] = np.max(np.abs(out)) + 1e-9
    return out / peak


@lru_cache(maxsize=1024)
def _voice(inst: str, midi: int, length: int, bright: float, quality: int) -> np.ndarray:
    """The whole ringing waveform of one pitch (mono or stereo), before note-off."""
    f = midi_hz(midi)
    n = length
    t = np.arange(n, dtype=np.float32) / SR
    y: NDArray[np.floating[Any]]  # float32 or float64: the branches' arithmetic decides
    if inst == "epiano":
        index = (0.8 + 2.2 * bright) * np.exp(-t / 0.3) + 0.25
        w = 2 * np.pi * f * t
        y = np.sin(w + index * np.sin(w)) * np.exp(-t / (1.2 + 1.4 * (220 / f) ** 0.5))
        if f * 14 < 16000:
            y += 0.18 * np.sin(w * 14) * np.exp(-t / 0.04)
        return (y * _adsr(n, 0.002, None)).astype(np.float32)
    if inst == "piano":
        bright_t, dark_t = _table("saw", f, 0.35 + 0.5 * bright), _table("warm", f, bright)
        tau = 0.9 + 1.6 * (261 / f) ** 0.6
        e_fast = np.exp(-t / (tau * 0.18))
        y = _osc(bright_t, f * 1.0005, n) * e_fast * 0.5 + _osc(dark_t, f, n) * np.exp(-t / tau)
        return (y * _adsr(n, 0.002, None)).astype(np.float32)
    if inst in ("pluck", "tremolo_guitar"):
        decay = 0.5 if inst == "pluck" else 0.8
        return _karplus(f, n, midi * 7 + 1, bright, decay)
    if inst in ("pad", "strings", "choir", "brass"):
        kind = {"pad": "saw", "strings": "string", "choir": "choir", "brass": "brass"}[inst]
        voices = 2 if quality < 5 else 3 if quality < 16 else 4
        spread = {"pad": 9.0, "strings": 6.0, "choir": 5.0, "brass": 3.0}[inst]
        vib = {"pad": 0.0, "strings": 0.004, "choir": 0.005, "brass": 0.002}[inst]
        table = _table(kind, f, bright)
        rng = np.random.default_rng(midi)
        out = np.zeros((2, n), np.float32)  # channel-major stereo: detuned voices spread left/right
        for v in range(voices):
            cents = spread * (2 * v / max(voices - 1, 1) - 1)
            wave = _osc(table, f * 2 ** (cents / 1200), n, rng.random(), vib, 4.6 + 0.5 * v)
            side = v % 2
            out[side] += wave
            out[1 - side] += 0.45 * wave
        if inst == "brass":
            dark = _osc(_table("warm", f, 0.2), f, n)
            swell = np.minimum(t / np.float32(0.35), np.float32(1.0))
            out *= swell * np.float32(0.8)
            out += dark * (1 - 0.5 * swell)
        attack = {"pad": 0.5, "strings": 0.25, "choir": 0.4, "brass": 0.08}[inst]
        out *= _adsr(n, attack, None) / np.float32(voices)
        return out
    if inst == "synth":
        y = _osc(_table("square", f, 0.3 + 0.6 * bright), f, n) * 0.6
        y += _osc(_table("saw", f, 0.2 + 0.5 * bright), f * 1.004, n) * 0.4
        return (y * _adsr(n, 0.003, 0.35)).astype(np.float32)
    if inst == "bells":
        y = np.zeros(n, np.float32)
        for ratio, amp, tau in ((1.0, 1.0, 2.2), (2.0, 0.5, 1.4), (2.76, 0.35, 0.9), (5.4, 0.2, 0.4),
                                (8.93, 0.1, 0.2)):
            if f * ratio < 18000:
                y += amp * np.sin(2 * np.pi * f * ratio * t) * np.exp(-t / tau)
        return (y * _adsr(n, 0.001, None) / 1.6).astype(np.float32)
    if inst == "bass":
        w = 2 * np.pi * f * t
        y = np.sin(w) + (0.25 + 0.3 * bright) * np.sin(2 * w) + 0.12 * np.sin(3 * w) * np.exp(-t / 0.15)
        y = np.tanh(1.4 * y) / np.tanh(1.4)
        return (y * _adsr(n, 0.006, 1.8)).astype(np.float32)
    raise ValueError(f"unknown instrument {inst}")


_RELEASE = {"pad": 0.8, "strings": 0.45, "choir": 0.6, "brass": 0.2, "epiano": 0.25, "piano": 0.3,
            "pluck": 0.15, "tremolo_guitar": 0.3, "synth": 0.08, "bells": 0.6, "bass": 0.06}
_RING = {"pluck": 2.0, "tremolo_guitar": 3.0, "bells": 3.0, "synth": 1.2, "piano": 3.5, "epiano": 3.0}


@lru_cache(maxsize=4096)
def note_buffer(inst: str, midi: int, n_hold: int, bright: float, quality: int) -> np.ndarray:
    """One note: held ``n_hold`` samples, then a release taper. Read-only; callers add it in."""
    if inst == "riser":
        return _riser(n_hold, bright)
    rel = int(_RELEASE[inst] * SR)
    ring = _RING.get(inst)
    total = n_hold + rel
    if ring is not None:
        total = min(total, int(ring * SR))
        n_hold = min(n_hold, total - rel) if total > rel else total // 2
    bucket = int(np.ceil(total / (SR // 2)) * (SR // 2))
    wave = _voice(inst, midi, bucket, bright, quality)[..., :total].copy()
    tail = total - n_hold
    if tail > 0:
        wave[..., n_hold:] *= _taper(tail)
    wave.flags.writeable = False
    return wave


def _riser(n: int, bright: float) -> np.ndarray:
    """A noise swell that opens up and grows to its last sample: the build into a peak.

    Stereo noise whose low-passed and raw halves cross-fade as it rises, so it brightens
    while it gets louder, then stops dead on the downbeat it leads to.
    """
    rng = np.random.default_rng(n)
    noise = rng.standard_normal((2, n)).astype(np.float32)
    k = 24
    smooth = np.cumsum(noise, axis=1)
    smooth[:, k:] = smooth[:, k:] - smooth[:, :-k]
    smooth /= np.float32(math.sqrt(k))
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = smooth * (1 - x) + noise * x * np.float32(0.5 + 0.5 * bright)
    out *= x**4
    out[:, -min(n, 64):] *= np.linspace(1.0, 0.0, min(n, 64), dtype=np.float32)
    out /= np.float32(np.max(np.abs(out)) + 1e-9)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=512)
def drum_hit(kind: str, variant: int, bright: float) -> np.ndarray:
    """A synthesised kit piece; ``variant`` changes only the noise, so repeats are not identical."""
    rng = np.random.default_rng(DRUMS.index(kind) * 31 + variant)

    def noise(seconds: float) -> np.ndarray:
        return rng.standard_normal(int(seconds * SR)).astype(np.float32)

    def t_of(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * SR), dtype=np.float32) / SR

    def highpass(x: np.ndarray) -> np.ndarray:
        return np.diff(x, prepend=0.0).astype(np.float32)

    def smooth(x: np.ndarray, k: int) -> np.ndarray:
        return np.convolve(x, np.ones(k, np.float32) / k, mode="same").astype(np.float32)

    if kind in ("kick", "boom", "taiko", "tom"):
        length, f_hi, f_lo, tau, click = {
            "kick": (0.45, 150, 48, 0.16, 0.5), "boom": (2.2, 90, 32, 0.9, 0.2),
            "taiko": (1.1, 160, 62, 0.35, 0.7), "tom": (0.6, 220, 110, 0.2, 0.4),
        }[kind]
        t = t_of(length)
        freq = f_lo + (f_hi - f_lo) * np.exp(-t / 0.04)
        phase = 2 * np.pi * np.cumsum(freq) / SR
        y = np.sin(phase) * np.exp(-t / tau)
        y[:400] += click * smooth(noise(400 / SR), 4) * np.exp(-np.arange(400) / 60)
        if kind == "taiko":
            y += 0.3 * smooth(noise(length), 6) * np.exp(-t / 0.08)
        y = np.tanh(1.5 * y)
    elif kind in ("snare", "clap", "rim"):
        if kind == "snare":
            t = t_of(0.35)
            body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05)
            sn = highpass(smooth(noise(0.35), 2)) * np.exp(-t / (0.07 + 0.04 * bright))
            y = 0.6 * body + 0.9 * sn
        elif kind == "clap":
            t = t_of(0.3)
            env = sum(np.exp(-np.maximum(t - d, 0) / 0.012) * (t >= d) for d in (0.0, 0.011, 0.023))
            env = env + 0.6 * np.exp(-np.maximum(t - 0.03, 0) / 0.08) * (t >= 0.03)
            y = highpass(smooth(noise(0.3), 3)) * env
        else:
            t = t_of(0.08)
            y = np.sin(2 * np.pi * 1700 * t) * np.exp(-t / 0.012)
            y += 0.4 * highpass(noise(0.08)) * np.exp(-t / 0.008)
    elif kind in ("hat", "openhat", "shaker", "crash"):
        length, tau = {"hat": (0.09, 0.018), "openhat": (0.45, 0.16), "shaker": (0.12, 0.03),
                       "crash": (2.6, 0.9)}[kind]
        t = t_of(length)
        y = highpass(highpass(noise(length)))
        if kind in ("hat", "openhat", "crash"):  # metallic ring: a few square-ish partials
            for fr in (3140.0, 4570.0, 5930.0):
                y += 0.15 * np.sin(2 * np.pi * fr * t)
        env = np.exp(-t / tau)
        if kind == "shaker":
            env *= np.minimum(t / 0.02, 1)
        y = highpass(y) * env
        y = smooth(y, 2 if bright >= 0.5 else 3)
    else:
        raise ValueError(f"unknown drum {kind}")
    y = y.astype(np.float32)
    y /= np.max(np.abs(y)) + 1e-9
    y[-64:] *= _taper(64)
    y.flags.writeable = False
    return y
