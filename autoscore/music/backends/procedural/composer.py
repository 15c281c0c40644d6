"""The embedded composer: prompt in, finished 44.1 kHz stereo music out, offline and fast.

Pipeline: ``spec.parse_prompt`` reads the words, ``arrange.arrange`` writes the notes to
the requested length, ``mixdown.render`` synthesises and mixes them.

What the request fields mean here:

* ``seed`` varies the progressions, motif, voicings and pattern details; the same prompt,
  duration and seed give the same samples. Tempo and key never depend on it.
* ``steps`` is render quality: 1-2 skip the reverb (a dry draft), 3-4 use two detuned
  voices per pad/string note, 5-15 three, 16+ four with a brighter reverb.
* ``guidance`` is how literally named instruments are taken: up to 1.5 (the default 1.0
  included) the named instruments lead and the genre keeps its bass, drums and one bed
  layer; above 1.5 only the named instruments play.
* Negative prompt (and "no X" / "without X" in the prompt) removes what it names. The
  planner's conventions: "ending" / "fade out" there means the piece must not end (full
  texture to the last sample), "intro" means it starts at full texture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ....errors import OptionError
from ....models import Audio, SectionCue
from .arrange import arrange
from .form import describe_form, make_form
from .instruments import SAMPLE_RATE
from .mixdown import render
from .spec import NOTE_NAMES, Spec, parse_prompt

if TYPE_CHECKING:
    from ..base import ContinuationRequest, GenerationRequest

__all__ = [
    "SAMPLE_RATE", "compose", "compose_text", "continue_piece", "explain", "extend_text", "render_spec",
]

SEAM = 0.06  # seconds of mirrored-source crossfade at a continuation's join


def render_spec(spec: Spec, duration: float, seed: int, steps: int = 8, cues: Sequence[SectionCue] = (),
                guidance: float = 1.0, downbeat: float | None = None) -> np.ndarray:
    """Compose and render one piece; (round(duration*SR), 2) float32."""
    arr = arrange(spec, duration, seed, cues, guidance, downbeat)
    return render(arr, spec, duration, seed, steps)


def compose(request: GenerationRequest) -> Audio:
    return compose_text(request.prompt, request.duration, request.negative_prompt, request.guidance,
                        request.steps, request.seed, opens=request.opens, ends=request.ends,
                        cues=request.cues, downbeat=request.downbeat)


def compose_text(prompt: str, duration: float, negative_prompt: str = "", guidance: float = 1.0,
                 steps: int = 8, seed: int = 0, *, opens: bool | None = None,
                 ends: bool | None = None, cues: Sequence[SectionCue] = (),
                 downbeat: float | None = None) -> Audio:
    """``compose`` for callers that must not depend on the backends' request types (the emulator).

    ``opens`` False leaves out the intro and ``ends`` False the ending (the piece goes on
    to its last sample); ``ends`` True asks for a clear ending. None leaves both to the
    words of the prompt, as for the remote model the emulator stands in for. ``cues`` are
    the sections on the piece's clock: the music changes where each one starts; ``downbeat``
    puts a bar line there (seconds from the first sample).
    """
    spec = _framed(parse_prompt(prompt, negative_prompt, float(guidance)), opens=opens, ends=ends)
    samples = render_spec(spec, float(duration), seed, steps, cues, float(guidance), downbeat)
    return Audio(samples, SAMPLE_RATE)


def continue_piece(request: ContinuationRequest) -> Audio:
    return extend_text(request.source, request.prompt, request.extend_after, request.negative_prompt,
                       request.guidance, request.steps, request.seed, ends=request.ends, cues=request.cues)


def extend_text(source: Audio, prompt: str, extend_after: float, negative_prompt: str = "",
                guidance: float = 1.0, steps: int = 8, seed: int = 0, *, ends: bool | None = None,
                cues: Sequence[SectionCue] = ()) -> Audio:
    """The source, then ``extend_after`` seconds in the same tempo, key and sound on its beat grid."""
    src = _as_stereo_44k(source)
    spec = _framed(parse_prompt(prompt, negative_prompt, float(guidance)), opens=False, ends=ends)
    src_len = len(src) / SAMPLE_RATE
    beat = 60.0 / spec.tempo
    phase = estimate_beat_phase(src, spec.tempo)
    # The new piece's bar 0 lands on a source downbeat about a bar before the join, so its
    # pre-roll overlaps the source and the extension starts mid-bar, already in full swing.
    bar = 4 * beat
    k = np.floor((src_len - phase) / bar)
    bar0 = phase + k * bar
    lead_in = src_len - bar0
    total = lead_in + extend_after
    # The cues are on the extension's clock; the new piece starts lead_in earlier.
    shifted = tuple(replace(c, start=c.start + lead_in if c.start > 0 else 0.0, end=c.end + lead_in)
                    for c in cues)
    piece = render_spec(spec, total, seed + 1, steps, shifted, float(guidance))
    skip = round(lead_in * SAMPLE_RATE)
    ext = piece[skip:skip + round(extend_after * SAMPLE_RATE)].copy()
    ext = _match_level(ext, src)
    _seam(src, ext)
    return Audio(np.concatenate([src, ext]), SAMPLE_RATE)


def _framed(spec: Spec, *, opens: bool | None, ends: bool | None) -> Spec:
    """The piece's intro and ending as its place in the score asks (None: as the words say).

    A piece that ends the score ends clearly, the way the planner used to ask for in words.
    """
    intro = spec.intro if opens is None else spec.intro and opens
    if ends is None:
        return replace(spec, intro=intro)
    return replace(spec, intro=intro, ending=spec.ending and ends, strong_ending=spec.ending and ends)


def _as_stereo_44k(audio: Audio) -> np.ndarray:
    samples = audio.samples.astype(np.float32)
    if audio.rate != SAMPLE_RATE:
        from ....media.resample import resample

        samples = resample(samples, audio.rate, SAMPLE_RATE)
    if samples.shape[1] == 1:
        samples = np.repeat(samples, 2, axis=1)
    elif samples.shape[1] != 2:
        raise OptionError(f"Cannot continue audio with {samples.shape[1]} channels: give mono or stereo.")
    return samples


def onset_envelope(samples: np.ndarray, hop: int = 512) -> np.ndarray:
    """Spectral flux (positive log-magnitude change per frame), one value per ``hop`` samples."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    n_fft = 1024
    frames = 1 + max(0, (len(mono) - n_fft) // hop)
    if frames < 2:
        return np.zeros(1)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1))
    logmag = np.log1p(100 * spec)
    flux = np.maximum(0.0, np.diff(logmag, axis=0)).sum(axis=1)
    return np.concatenate([[0.0], flux])


def estimate_beat_phase(samples: np.ndarray, tempo: float, hop: int = 512) -> float:
    """Seconds from sample 0 to the first beat, assuming ``tempo``; 0 if there is no pulse to find."""
    tail = samples[-min(len(samples), 20 * SAMPLE_RATE):]
    offset = (len(samples) - len(tail)) / SAMPLE_RATE
    env = onset_envelope(tail, hop)
    if len(env) < 8 or env.max() <= 0:
        return 0.0
    env = env - env.mean()
    beat = 60.0 / tempo
    fps = SAMPLE_RATE / hop
    candidates = np.arange(0.0, beat, 1 / fps)
    scores = []
    for p in candidates:
        times = np.arange(p, len(env) / fps, beat)
        scores.append(float(np.interp(times * fps, np.arange(len(env)), env).sum()))
    best = candidates[int(np.argmax(scores))]
    if max(scores) <= 0:
        return 0.0
    return float((offset + best) % beat)


def _match_level(ext: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Bring the extension to the loudness of the source's last seconds so the join is level."""
    tail = source[-min(len(source), 4 * SAMPLE_RATE):]
    head = ext[: min(len(ext), 4 * SAMPLE_RATE)]
    rms_t = float(np.sqrt(np.mean(tail**2))) if len(tail) else 0.0
    rms_h = float(np.sqrt(np.mean(head**2))) if len(head) else 0.0
    if rms_t > 1e-4 and rms_h > 1e-4:
        ext = ext * min(4.0, rms_t / rms_h)
    peak = float(np.max(np.abs(ext))) if len(ext) else 0.0
    if peak > 0.89:
        ext *= 0.89 / peak
    return ext.astype(np.float32)


def _seam(source: np.ndarray, ext: np.ndarray) -> None:
    """Crossfade from the source's mirrored last samples into the extension: no step, no gap."""
    n = min(round(SEAM * SAMPLE_RATE), len(source), len(ext))
    if n < 2:
        return
    mirror = source[-1:-n - 1:-1]
    fade = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32)))[:, None]
    ext[:n] = mirror * (1 - fade) + ext[:n] * fade


def explain(prompt: str, negative_prompt: str = "", guidance: float = 1.0, duration: float | None = None,
            seed: int = 0, cues: Sequence[SectionCue] = ()) -> str:
    """What the composer understood, one fact per line, for ``autoscore generate --explain``;
    with ``duration``, also the form it would write: its parts with their bars and energies."""
    spec = parse_prompt(prompt, negative_prompt, guidance)
    names = {"epiano": "electric piano", "pluck": "plucked guitar", "tremolo_guitar": "tremolo guitar",
             "pad": "synth pads", "choir": "choir pads"}
    insts = [names.get(i, i) for i in spec.instruments if i != "drums"]
    if spec.energy_start == spec.energy_end:
        energy = f"{spec.energy_start:.2f}"
    else:
        energy = f"builds {spec.energy_start:.2f} -> {spec.energy_end:.2f}"
    lines = [
        f"genre: {spec.genre}",
        f"tempo: {spec.tempo:g} BPM ({spec.tempo_source})",
        f"key: {NOTE_NAMES[spec.root]} {spec.mode} ({spec.key_source})",
        f"instruments: {', '.join(insts) or 'none'}",
        f"drums: {spec.drums}",
        f"energy: {energy}",
        f"form: {'intro, ' if spec.intro else 'starts at full texture, '}"
        f"{'ends on a cadence with a tail' if spec.ending else 'no ending (keeps going to the last sample)'}",
    ]
    if spec.moods:
        lines.append(f"mood words: {', '.join(spec.moods)}")
    if spec.removed:
        lines.append(f"removed: {', '.join(names.get(r, r) for r in spec.removed)}")
    if spec.not_produced:
        lines.append(f"never produced (no vocals here): {', '.join(spec.not_produced)}")
    lines.append(f"ignored words: {', '.join(spec.ignored) if spec.ignored else 'none'}")
    if duration is not None:
        rng = np.random.default_rng([seed & 0xFFFFFFFF, spec.style_hash])
        form = make_form(spec, float(duration), cues, rng, guidance)
        count = f"{len(form.parts)} part{'s' if len(form.parts) != 1 else ''}"
        lines.append(f"form for {duration:g} s ({count}):")
        lines.extend(describe_form(form))
    return "\n".join(lines)
