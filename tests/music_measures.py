"""Measures of rendered music, made with tools nobody here wrote: librosa, pyloudnorm, scipy.

Every function takes what the user hears, ``samples`` shaped ``(frames, channels)`` or
``(frames,)`` at ``rate`` Hz, and an optional stretch ``[start, end)`` in seconds; none reads a
plan or the composer's own code. Times returned are on the clock of the samples given.

The measures behind issue 16 ("the music changes where the sections change, and it has a
form, not a loop"):

* :func:`moving_loudness_std_db`: how much the level moves (K-weighted 8 s loudness).
* :func:`centroid_variation`: how much the brightness moves (8 s mean spectral centroid).
* :func:`structural_blocks`: how many contrasting blocks a self-similarity matrix shows.
* :func:`novelty_peaks` / :func:`has_peak_near`: where the texture changes abruptly.
* :func:`percussive_share_db`: how much of the energy is percussive (HPSS).
* :func:`loudness_lufs`, :func:`onset_density`: level and busyness of one stretch.

Analysis runs on a mono downmix at 22050 Hz with 512-sample hops (23 ms); the structure
measures pool four hops into 93 ms frames, so 120 s of audio is 1,300 frames and a
self-similarity matrix of 1.7 M cells. Each measure takes well under a second on 120 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import librosa
import numpy as np
import pyloudnorm
from pyloudnorm.iirfilter import IIRfilter
from scipy.signal import find_peaks

__all__ = [
    "ANALYSIS_RATE",
    "Blocks",
    "centroid_variation",
    "has_peak_near",
    "loudness_lufs",
    "moving_loudness",
    "moving_loudness_std_db",
    "novelty",
    "novelty_peaks",
    "onset_density",
    "percussive_share_db",
    "self_similarity",
    "structural_blocks",
]

ANALYSIS_RATE = 22050
N_FFT = 2048
HOP = 512
POOL = 4  # hops per structure frame: 2048 samples, 93 ms at 22050 Hz
FLOOR_LUFS = -70.0  # BS.1770's absolute gate: quieter windows count as this level


# -- input -------------------------------------------------------------------------------------


def _stretch(samples: np.ndarray, rate: int, start: float | None, end: float | None) -> np.ndarray:
    """The frames in ``[start, end)`` seconds, as float64 (frames, channels)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must be (frames,) or (frames, channels), not {x.shape}")
    a = 0 if start is None else max(0, round(start * rate))
    b = len(x) if end is None else min(len(x), round(end * rate))
    if b <= a:
        raise ValueError(f"empty stretch [{start}, {end}) of {len(x) / rate:.2f} s of audio")
    return x[a:b]


def _mono(samples: np.ndarray, rate: int, start: float | None = None, end: float | None = None) -> np.ndarray:
    """The stretch, downmixed to mono and resampled to ANALYSIS_RATE (float32)."""
    y = _stretch(samples, rate, start, end).mean(axis=1)
    if rate != ANALYSIS_RATE:
        y = librosa.resample(y, orig_sr=rate, target_sr=ANALYSIS_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def _moving_mean(x: np.ndarray, width: int, step: int) -> np.ndarray:
    """Means of ``x`` over windows of ``width`` values every ``step`` values (NaNs ignored)."""
    if len(x) < width:
        raise ValueError(f"the stretch is shorter than the {width}-value window")
    ok = ~np.isnan(x)
    s = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    lo = np.arange(0, len(x) - width + 1, step)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s[lo + width] - s[lo]) / (n[lo + width] - n[lo])


# -- level -------------------------------------------------------------------------------------


def moving_loudness(samples: np.ndarray, rate: int, window: float = 8.0, hop: float = 0.5,
                    start: float | None = None, end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loudness (LUFS) in a ``window``-second window every ``hop`` seconds: (window centres, LUFS).

    ITU-R BS.1770's loudness without its gates: each channel is K-weighted with pyloudnorm's
    filters (the 1.5 kHz +4 dB high shelf and the 38 Hz high pass, at the input's own rate),
    the mean squares of the channels are summed (gain 1 for left and right) and the window's
    level is ``-0.691 + 10 log10(sum)``. With a 3 s window this is EBU R 128's short-term
    loudness; the default 8 s spans a few bars, so notes and beats average out and what moves
    is the arrangement. Windows quieter than -70 LUFS (BS.1770's absolute gate) read -70.
    """
    x = _stretch(samples, rate, start, end)
    for stage in (IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf"),
                  IIRfilter(0.0, 0.5, 38.0, rate, "high_pass")):
        x = stage.apply_filter(x.T).T
    power = np.sum(x * x, axis=1)
    block = max(1, round(hop * rate))
    blocks = power[: len(power) // block * block].reshape(-1, block).mean(axis=1)
    width = round(window / hop)
    ms = _moving_mean(blocks, width, 1)
    lufs = np.maximum(FLOOR_LUFS, -0.691 + 10 * np.log10(np.maximum(ms, 1e-12)))
    centres = (start or 0.0) + (np.arange(len(ms)) * block + width * block / 2) / rate
    return centres, lufs


def moving_loudness_std_db(samples: np.ndarray, rate: int, window: float = 8.0,
                           start: float | None = None, end: float | None = None) -> float:
    """Standard deviation (dB) of the ``window``-second moving loudness over the stretch.

    How much the level of the music moves once notes and beats are averaged out (see
    :func:`moving_loudness`, sampled every 0.5 s). A loop sits within a few tenths of a dB;
    composed music with quiet and full sections moves by several dB (issue 16: 2-5.5 dB for
    game-soundtrack pieces of two minutes).
    """
    _, lufs = moving_loudness(samples, rate, window, 0.5, start, end)
    return float(np.std(lufs))


def loudness_lufs(samples: np.ndarray, rate: int, start: float | None = None,
                  end: float | None = None) -> float:
    """Integrated loudness (LUFS) of the stretch: pyloudnorm's gated BS.1770-4 meter, at the input rate.

    The number a loudness-normalising player would read; a stretch must be at least 0.4 s.
    Digital silence reads -inf.
    """
    x = _stretch(samples, rate, start, end)
    return float(pyloudnorm.Meter(rate).integrated_loudness(x))


# -- brightness --------------------------------------------------------------------------------


def centroid_variation(samples: np.ndarray, rate: int, window: float = 8.0,
                       start: float | None = None, end: float | None = None) -> float:
    """Variation (%) of the ``window``-second moving mean of the spectral centroid: std / mean x 100.

    The spectral centroid (librosa.feature.spectral_centroid, 2048-point frames every 23 ms)
    is the magnitude-weighted mean frequency, the usual correlate of brightness (Grey 1977;
    Schubert & Wolfe 2006). Averaged over 8 s, single notes and drum hits wash out, so what
    varies is register and instrumentation: a loop stays within a few per cent, music whose
    sections change players or register moves by ten per cent or more. Frames more than
    60 dB below the stretch's loudest frame (silence, reverb tails) are left out, since
    their centroid is that of the noise floor.
    """
    y = _mono(samples, rate, start, end)
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    cent = librosa.feature.spectral_centroid(S=spec, sr=ANALYSIS_RATE)[0].astype(np.float64)
    level = librosa.amplitude_to_db(np.sqrt(np.mean(spec**2, axis=0)), ref=np.max)
    cent[level < -60.0] = np.nan
    width = round(window * ANALYSIS_RATE / HOP)
    step = max(1, round(0.5 * ANALYSIS_RATE / HOP))
    means = _moving_mean(cent, width, step)
    means = means[~np.isnan(means)]
    if len(means) == 0:
        raise ValueError("the stretch is silent")
    return float(np.std(means) / np.mean(means) * 100.0)


# -- texture -----------------------------------------------------------------------------------


def percussive_share_db(samples: np.ndarray, rate: int, start: float | None = None,
                        end: float | None = None) -> float:
    """Energy of the percussive part over harmonic + percussive, in dB (0 = all percussive).

    Harmonic-percussive source separation by median filtering (Fitzgerald 2010), as
    librosa.effects.hpss does it: librosa.stft's default 2048-point STFT (93 ms, 10.8 Hz bins)
    every 23 ms is split with librosa.decompose.hpss's default soft masks (a 31-frame, 0.7 s
    median across time keeps sustained partials; a 31-bin, 335 Hz median across frequency
    keeps broadband clicks). A shorter window smears a bass note's partials across bins, where
    the median across frequency takes them for clicks, so the default is kept. Drums
    and plucks land in the percussive part, pads and held notes in the harmonic part, so a
    section without drums reads several dB lower than one with them. The inverse STFT that
    effects.hpss adds is skipped: the energies are the same.
    """
    y = _mono(samples, rate, start, end)
    spec = librosa.stft(y, n_fft=N_FFT, hop_length=HOP)
    harmonic, percussive = librosa.decompose.hpss(spec)
    p = float(np.sum(np.abs(percussive) ** 2))
    h = float(np.sum(np.abs(harmonic) ** 2))
    if p + h == 0.0:
        raise ValueError("the stretch is silent")
    return float(10 * np.log10(max(p, 1e-20) / (p + h)))


def onset_density(samples: np.ndarray, rate: int, start: float | None = None,
                  end: float | None = None) -> float:
    """Onsets per second in the stretch: librosa.onset.onset_detect's peaks of spectral flux.

    librosa's defaults (log-mel spectral flux, Böck & Widmer 2013's superflux-style
    aggregation, peak picking after Böck et al. 2012), so the count is that of a standard
    detector, not one tuned here. Busier sections (more notes, more drum hits) count more.
    """
    y = _mono(samples, rate, start, end)
    onsets = librosa.onset.onset_detect(y=y, sr=ANALYSIS_RATE, hop_length=HOP, units="time")
    return float(len(onsets) / (len(y) / ANALYSIS_RATE))


# -- structure ---------------------------------------------------------------------------------


def _features(y: np.ndarray) -> np.ndarray:
    """(frames, 20) timbre every POOL hops: MFCCs, centred and scaled to unit total variance.

    20 MFCCs of a 64-band log-mel spectrum, c0 (the level) included, so a frame's vector is its
    smoothed spectral envelope: instrumentation, register, brightness and level. The power
    spectrogram is averaged over POOL hops first, so a frame is 93 ms of sound.

    Timbre, not chroma: blocks in a self-similarity matrix come from homogeneous stretches,
    which timbre features show; chroma features show repetitions as diagonal paths instead,
    and make every chord change look like a new block (Paulus, Müller & Klapuri 2010, "State
    of the art report: audio-based music structure analysis"; Müller 2015, FMP ch. 4).
    """
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2
    n = power.shape[1] // POOL * POOL
    if n == 0:
        raise ValueError("the stretch is too short to measure")
    pooled = power[:, :n].reshape(power.shape[0], -1, POOL).mean(axis=2)
    mel = librosa.feature.melspectrogram(S=pooled, sr=ANALYSIS_RATE, n_mels=64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=np.max, top_db=80.0), n_mfcc=20)
    f = mfcc.T - mfcc.T.mean(axis=0)
    result: np.ndarray = f / max(float(np.sqrt(np.sum(f.var(axis=0)))), 1e-9)
    return result


def _frame_seconds() -> float:
    return POOL * HOP / ANALYSIS_RATE


def self_similarity(samples: np.ndarray, rate: int, start: float | None = None,
                    end: float | None = None) -> np.ndarray:
    """The self-similarity matrix of the stretch, one row per 93 ms frame (Foote 1999).

    ``S[i, j] = exp(-d(i, j)^2 / median d^2)``, where ``d`` is the Euclidean distance between
    the frames' timbre vectors (:func:`_features`). 1 is the same sound; a typical
    pair of frames of the stretch reads exp(-1) = 0.37. The median bandwidth makes the scale
    the stretch's own: a loop's note-to-note changes set it, so only differences beyond those
    stand out.
    """
    f = _features(_mono(samples, rate, start, end))
    sq = np.sum(f * f, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0)
    scale = float(np.median(d2))
    result: np.ndarray = np.exp(-d2 / max(scale, 1e-12))
    return result


def _novelty_curve(ssm: np.ndarray, half: int) -> np.ndarray:
    """Foote's checkerboard novelty, with a Gaussian taper, renormalised where the kernel is cut.

    At frame i, with the ``half`` frames before (P) and after (F) weighted by a Gaussian of
    standard deviation half/2 (Foote 2000), novelty is ``(mean S(P,P) + mean S(F,F)) / 2 -
    mean S(P,F)``: how much more alike each side is to itself than to the other. Inside the
    matrix this is the checkerboard kernel's correlation; near the edges each quadrant's mean
    is taken over what is there, so the ends are neither favoured nor suppressed; within half a
    kernel side of an end (where one side is mostly edge) novelty is 0. 0 means the
    two sides are the same sound; a change from one steady texture to a very different one
    approaches 1 - exp(-2) = 0.86.
    """
    n = len(ssm)
    taper = np.exp(-0.5 * ((np.arange(half) + 0.5) / (half / 2)) ** 2)
    out = np.zeros(n)
    for i in range(max(1, half // 2), n - max(1, half // 2) + 1):
        lo, hi = max(0, i - half), min(n, i + half)
        wp = taper[: i - lo][::-1]
        wf = taper[: hi - i]
        pp = ssm[lo:i, lo:i]
        ff = ssm[i:hi, i:hi]
        pf = ssm[lo:i, i:hi]
        sp, sf = wp.sum(), wf.sum()
        out[i] = 0.5 * (wp @ pp @ wp / sp**2 + wf @ ff @ wf / sf**2) - wp @ pf @ wf / (sp * sf)
    return out


def novelty(samples: np.ndarray, rate: int, kernel_seconds: float = 8.0, start: float | None = None,
            end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Foote novelty of the stretch with a ``kernel_seconds``-wide kernel: (frame times, novelty)."""
    ssm = self_similarity(samples, rate, start, end)
    half = max(2, round(kernel_seconds / 2 / _frame_seconds()))
    times = (start or 0.0) + np.arange(len(ssm)) * _frame_seconds()
    return times, _novelty_curve(ssm, half)


def novelty_peaks(samples: np.ndarray, rate: int, kernel_seconds: float = 8.0, min_prominence: float = 0.1,
                  start: float | None = None, end: float | None = None) -> np.ndarray:
    """Times (s) where the texture changes: peaks of Foote novelty on the self-similarity matrix.

    Foote (2000): slide a checkerboard kernel along the diagonal of the self-similarity matrix
    (:func:`self_similarity`); it peaks where the frames before are alike, the frames after are
    alike, and the two differ. The 8 s kernel compares the 4 s before each frame with the 4 s
    after: about two bars at 100-120 bpm, long enough that a bar's own pattern of notes and
    hits averages out, short enough to resolve sections of ~8 s. Its Gaussian taper (Foote's)
    puts a step change's peak on the step, within a frame (93 ms).

    A peak counts if it rises ``min_prominence`` above the valleys on both sides (scipy's
    prominence): on the similarity scale, 0.1 means the two sides are alike within themselves
    by a tenth more than they are alike to each other, where a repeating loop's ripple
    stays below about 0.05 (tests/test_music_measures.py) and a change of instrument, register
    or level reads 0.2-0.8.
    """
    times, nov = novelty(samples, rate, kernel_seconds, start, end)
    half = max(2, round(kernel_seconds / 2 / _frame_seconds()))
    peaks, _ = find_peaks(nov, prominence=min_prominence, distance=max(1, half // 2))
    result: np.ndarray = times[peaks]
    return result


def has_peak_near(peaks: np.ndarray, t: float, tolerance: float = 0.5) -> bool:
    """Whether any of ``peaks`` (seconds) lies within ``tolerance`` seconds of ``t``."""
    return bool(np.any(np.abs(np.asarray(peaks, dtype=np.float64) - t) <= tolerance))


@dataclass(frozen=True)
class Blocks:
    """The blocks of a piece: interior boundaries (s) and a label per block (same label, alike material)."""

    boundaries: tuple[float, ...]
    labels: tuple[int, ...]
    contrasts: tuple[float, ...]  # at each boundary: Foote's statistic over the two whole blocks

    @property
    def count(self) -> int:
        """Blocks in time order: adjacent blocks are always distinct."""
        return len(self.labels)

    @property
    def distinct(self) -> int:
        """Kinds of material: A B A' counts 2."""
        return len(set(self.labels))


def _contrast(ssm: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """(mean S(a,a) + mean S(b,b)) / 2 - mean S(a,b): Foote's statistic over two whole segments."""
    aa = ssm[a[0]:a[1], a[0]:a[1]].mean()
    bb = ssm[b[0]:b[1], b[0]:b[1]].mean()
    ab = ssm[a[0]:a[1], b[0]:b[1]].mean()
    return float(0.5 * (aa + bb) - ab)


def structural_blocks(samples: np.ndarray, rate: int, kernel_seconds: float = 12.0,
                      min_contrast: float = 0.1, min_block: float = 8.0, start: float | None = None,
                      end: float | None = None) -> Blocks:
    """The distinct blocks of the stretch's self-similarity matrix (Foote 2000, then merging).

    1. Candidate boundaries: peaks of Foote novelty (:func:`novelty`) with a 12 s kernel,
       6 s each side, the scale of a phrase, at least 3 s apart and with a prominence of
       ``min_contrast / 2`` (a loose first cut; step 2 decides).
    2. Distinct means distinct as wholes, and at least a phrase long. Foote's statistic over
       two whole adjacent blocks, ``(mean S(a,a) + mean S(b,b)) / 2 - mean S(a,b)``, must reach
       ``min_contrast`` (0.1: each block is alike within itself by a tenth of the similarity
       scale more than it is alike to its neighbour), and every block must last ``min_block``
       seconds (8 s: four bars at 120 bpm, the shortest phrase a section is built from; a
       single chord of a slow progression is not a section). Pairs with a short block are
       merged first, then the least contrasting pair, the statistic recomputed each time,
       until every boundary passes. A loop's blocks, once a phrase long, hold the same
       sounds, so it collapses to one block; a piece with intro, A, B, A' and ending keeps
       them.
    3. Labels: blocks, adjacent or not, whose contrast is below ``min_contrast`` are the same
       material (single-linkage), so A B A' reads 3 blocks of 2 kinds.

    Boundaries are in seconds on the clock of ``samples``.
    """
    ssm = self_similarity(samples, rate, start, end)
    sec = _frame_seconds()
    half = max(2, round(kernel_seconds / 2 / sec))
    nov = _novelty_curve(ssm, half)
    peaks, _ = find_peaks(nov, prominence=min_contrast / 2, distance=max(1, round(3.0 / sec)))
    edges = [0, *[int(p) for p in peaks], len(ssm)]
    shortest = round(min_block / sec)
    while len(edges) > 2:
        segs = list(pairwise(edges))
        scores = [_contrast(ssm, segs[k], segs[k + 1]) for k in range(len(segs) - 1)]
        short = [k for k in range(len(segs) - 1)
                 if min(segs[k][1] - segs[k][0], segs[k + 1][1] - segs[k + 1][0]) < shortest]
        k = min(short or range(len(scores)), key=lambda k: scores[k])
        if not short and scores[k] >= min_contrast:
            break
        del edges[k + 1]
    segs = list(pairwise(edges))
    contrasts = tuple(_contrast(ssm, segs[k], segs[k + 1]) for k in range(len(segs) - 1))
    labels = list(range(len(segs)))
    for i in range(len(segs)):
        for j in range(i + 1, len(segs)):
            if labels[i] != labels[j] and _contrast(ssm, segs[i], segs[j]) < min_contrast:
                old, new = labels[j], labels[i]
                labels = [new if lab == old else lab for lab in labels]
    relabel = {lab: n for n, lab in enumerate(dict.fromkeys(labels))}
    offset = start or 0.0
    return Blocks(
        boundaries=tuple(round(offset + e * sec, 3) for e in edges[1:-1]),
        labels=tuple(relabel[lab] for lab in labels),
        contrasts=tuple(round(c, 4) for c in contrasts),
    )
