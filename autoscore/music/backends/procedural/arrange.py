"""Composition: a form laid out to the requested length, then parts written bar by bar.

The form is intro (optional), sections of 4 or 8 bars alternating two progressions (A, B),
then a cadence (pre-dominant, dominant) and a final tonic chord that rings to the end. When
the planner forbids an ending the body simply runs past the last sample; when it forbids an
intro the piece starts one bar *before* sample 0 so reverb and held notes are already there.

Every part is a list of ``NoteEvent`` in seconds; rendering is somebody else's job. The seed
picks progressions, motif, voicings and pattern details, never tempo or key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .spec import Spec

__all__ = ["Arrangement", "NoteEvent", "arrange"]

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {
    ("major", "A"): ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 5, 4), (0, 3, 0, 4), (0, 4, 0, 3), (0, 3, 1, 4)),
    ("major", "B"): ((3, 4, 0, 5), (5, 3, 0, 4), (3, 0, 4, 0), (1, 4, 0, 0)),
    ("minor", "A"): ((0, 5, 2, 6), (0, 3, 5, 4), (0, 6, 5, 6), (0, 3, 0, 4), (0, 5, 3, 4), (0, 5, 6, 0)),
    ("minor", "B"): ((5, 6, 0, 0), (3, 4, 0, 0), (5, 2, 6, 0), (3, 0, 6, 4)),
}
# Drum grids: (kit piece, lowest level, highest level, 16 steps, gain). x = hit, o = ghost.
DRUM_GRIDS: dict[str, tuple[tuple[str, int, int, str, float], ...]] = {
    "triphop": (
        ("kick", 0, 1, "x.........x.....", 1.0), ("kick", 2, 3, "x......x..x.....", 1.0),
        ("rim", 0, 0, "....x.......x...", 0.5), ("snare", 1, 3, "....x.......x...", 0.9),
        ("snare", 2, 3, ".......o......o.", 0.35), ("hat", 1, 2, "x.x.x.x.x.x.x.x.", 0.35),
        ("hat", 3, 3, "xoxoxoxoxoxoxoxo", 0.4), ("openhat", 3, 3, "..............x.", 0.3),
    ),
    "lofi": (
        ("kick", 0, 3, "x......x..x.....", 0.9), ("rim", 0, 0, "....x.......x...", 0.45),
        ("snare", 1, 3, "....x.......x...", 0.75), ("hat", 1, 3, "x.xox.x.x.xox.x.", 0.3),
        ("snare", 3, 3, "..........o....o", 0.25), ("shaker", 2, 3, "..x...x...x...x.", 0.25),
    ),
    "house": (
        ("kick", 0, 3, "x...x...x...x...", 1.0), ("clap", 1, 3, "....x.......x...", 0.7),
        ("openhat", 1, 3, "..x...x...x...x.", 0.3), ("hat", 2, 2, "x.x.x.x.x.x.x.x.", 0.25),
        ("hat", 3, 3, "xoxoxoxoxoxoxoxo", 0.3), ("shaker", 3, 3, ".x.x.x.x.x.x.x.x", 0.2),
    ),
    "rock": (
        ("kick", 0, 2, "x.......x.x.....", 1.0), ("kick", 3, 3, "x.x.....x.x..x..", 1.0),
        ("snare", 0, 3, "....x.......x...", 0.95), ("hat", 0, 2, "x.x.x.x.x.x.x.x.", 0.4),
        ("openhat", 3, 3, "x.x.x.x.x.x.x.x.", 0.3),
    ),
    "pop": (
        ("kick", 0, 1, "x.......x.......", 0.95), ("kick", 2, 3, "x......x..x.....", 0.95),
        ("rim", 0, 0, "....x.......x...", 0.4), ("clap", 1, 3, "....x.......x...", 0.7),
        ("hat", 1, 3, "x.x.x.x.x.x.x.x.", 0.3), ("shaker", 2, 3, "xoxoxoxoxoxoxoxo", 0.22),
    ),
    "cinematic": (
        ("boom", 0, 3, "x...............", 0.9), ("taiko", 1, 1, "........x.......", 0.8),
        ("taiko", 2, 3, "x..x..x.x..x..x.", 0.8), ("tom", 2, 3, "........x.x.x..x", 0.5),
        ("snare", 3, 3, "....x.......x...", 0.8), ("hat", 3, 3, "x.x.x.x.x.x.x.x.", 0.2),
    ),
}
COMP_RHYTHMS: dict[str, tuple[tuple[tuple[int, int], ...], ...]] = {
    "triphop": (((0, 10), (10, 6)), ((0, 6), (6, 4), (12, 4))),
    "lofi": (((0, 7), (7, 9)), ((0, 3), (3, 5), (10, 6))),
    "house": (((2, 2), (6, 2), (10, 2), (14, 2)), ((0, 2), (3, 2), (6, 3), (10, 2), (13, 3))),
    "rock": (tuple((i * 2, 2) for i in range(8)),),
    "pop": (((0, 4), (4, 4), (8, 4), (12, 4)), ((0, 6), (6, 6), (12, 4))),
    "cinematic": (((0, 16),),),
    "none": (((0, 16),), ((0, 8), (8, 8))),
}
BASS_LINES: dict[str, tuple[tuple[int, int, str], ...]] = {
    "triphop": ((0, 6, "R"), (7, 3, "R"), (10, 4, "F"), (14, 2, "A")),
    "lofi": ((0, 6, "R"), (7, 2, "R"), (10, 4, "F"), (14, 2, "A")),
    "house": ((2, 2, "R"), (6, 2, "R"), (10, 2, "O"), (14, 2, "R")),
    "rock": tuple((i * 2, 2, "R") for i in range(8)),
    "pop": ((0, 3, "R"), (3, 3, "R"), (6, 2, "F"), (8, 4, "R"), (12, 2, "F"), (14, 2, "A")),
    "cinematic": ((0, 16, "R"),),
    "none": ((0, 8, "R"), (8, 8, "F")),
}
MOTIF_RHYTHMS = (
    ((0, 4), (4, 2), (6, 2), (8, 6), (16, 4), (20, 4), (24, 8)),
    ((0, 3), (3, 3), (6, 2), (8, 8), (16, 3), (19, 3), (22, 2), (24, 8)),
    ((2, 2), (4, 2), (6, 4), (12, 4), (18, 2), (20, 2), (22, 4), (28, 4)),
    ((0, 2), (2, 2), (4, 4), (10, 2), (12, 4), (16, 2), (18, 2), (20, 4), (26, 6)),
)
SLOW_MOTIF = ((0, 8), (8, 4), (12, 4), (16, 12))
PAN = {"piano": -0.1, "epiano": -0.25, "pluck": 0.35, "tremolo_guitar": 0.4, "synth": 0.3, "bells": 0.45,
       "brass": -0.3, "strings": 0.0, "pad": 0.0, "choir": 0.0, "bass": 0.0}
DRUM_PAN = {"kick": 0.0, "snare": 0.05, "clap": 0.0, "rim": -0.2, "hat": 0.3, "openhat": 0.3,
            "shaker": -0.35, "crash": -0.25, "boom": 0.0, "taiko": -0.15, "tom": 0.3}


@dataclass(frozen=True)
class NoteEvent:
    inst: str
    start: float
    """Seconds from sample 0 of the result; negative inside the pre-roll."""
    dur: float
    midi: int
    """MIDI pitch; for drums the variant number."""
    vel: float
    pan: float = 0.0


@dataclass(frozen=True)
class Bar:
    index: int
    degree: int
    dominant: bool
    energy: float
    role: str
    """'intro', 'A', 'B', 'cadence' or 'final'."""
    section_start: bool = False
    section_end: bool = False


At = Callable[[Bar, float], float]
"""Seconds of a 16th-note step inside a bar, swing applied."""
Human = Callable[..., float]
Vel = Callable[[float, float], float]


@dataclass(frozen=True)
class Arrangement:
    notes: tuple[NoteEvent, ...]
    beat: float
    bar: float
    preroll: float
    final_downbeat: float | None
    bars: tuple[Bar, ...]


def _pc(mode: str, degree: int) -> int:
    scale = SCALES[mode]
    return scale[degree % 7] + 12 * (degree // 7)


def _chord(spec: Spec, degree: int, dominant: bool, seventh: bool) -> list[int]:
    """Pitch offsets from the tonic; a minor key's dominant gets its leading tone."""
    tones = [_pc(spec.mode, degree + 2 * k) for k in range(4 if seventh else 3)]
    if dominant and spec.mode == "minor" and degree % 7 == 4:
        tones[1] += 1
    return tones


def _voice_lead(prev: list[int] | None, pcs: list[int], low: int, high: int) -> list[int]:
    """The inversion whose notes move least from the previous chord (centre of range if first)."""
    centre = (low + high) / 2
    best: list[int] = []
    best_cost = math.inf
    base = sorted({p % 12 for p in pcs})
    for inv in range(len(base)):
        shape = base[inv:] + [p + 12 for p in base[:inv]]
        for octave in range(low // 12 - 1, high // 12 + 1):
            notes = [octave * 12 + p for p in shape]
            if notes[0] < low or notes[-1] > high:
                continue
            if prev:
                moved = sum(min(abs(n - q) for q in prev) for n in notes)
                cost = moved + 0.2 * abs(sum(notes) / len(notes) - centre)
            else:
                cost = abs(sum(notes) / len(notes) - centre)
            if cost < best_cost:
                best, best_cost = notes, cost
    return best or [low + p % 12 for p in base]


def _layout(spec: Spec, duration: float, bar: float, rng: np.random.Generator) -> tuple[list[Bar], int]:
    """Bars from the pre-roll to the end, and the index of the first bar at or after sample 0."""
    pre = 0 if spec.intro else 1
    if spec.ending:
        tail = min(3.0 if spec.strong_ending else 1.8, duration * 0.5)
        final = max(0, math.floor((duration - tail) / bar + 1e-9))
        n_body = final
    else:
        final = -1
        n_body = math.ceil(duration / bar - 1e-9)
    n_intro = 0 if not spec.intro or n_body < 4 else 1 if n_body < 10 else 2
    n_cad = 0 if final < 0 else min(n_body - n_intro, 2 if n_body >= 4 else 1)
    n_cad = max(n_cad, 0)
    sec_len = 8 if n_body >= 16 else 4
    harmonic_rhythm = 2 if spec.genre in ("ambient",) or spec.tempo < 66 else 1
    progs = {s: PROGRESSIONS[(spec.mode, s)][rng.integers(len(PROGRESSIONS[(spec.mode, s)]))] for s in "AB"}
    calm = spec.energy_start <= 0.3 and spec.energy_end <= 0.3

    bars: list[Bar] = []
    body_span = max(1, n_body - n_intro - n_cad - 1)
    for i in range(-pre, n_body):
        pos = min(max((i - n_intro) / body_span, 0.0), 1.0)
        energy = spec.energy_start + (spec.energy_end - spec.energy_start) * pos
        if i < n_intro:
            bars.append(Bar(i, 0, False, min(energy, 0.3) * 0.8, "intro"))
            continue
        if i >= n_body - n_cad:
            k = i - (n_body - n_cad)
            degree = 4 if k == n_cad - 1 else (3 if spec.mode == "minor" or rng.random() < 0.5 else 1)
            bars.append(Bar(i, degree, degree == 4, energy, "cadence", section_end=k == n_cad - 1))
            continue
        off = i - n_intro if i >= 0 else sec_len - 1
        section = (off // sec_len) % 2
        letter = "AB"[section]
        in_sec = off % sec_len
        prog = progs[letter]
        chord_i = (in_sec // harmonic_rhythm) % 4
        degree = prog[chord_i]
        nxt = prog[(chord_i + 1) % 4]
        if letter == "B" and not calm:
            energy = min(1.0, energy + 0.08)
        bars.append(Bar(i, degree, degree == 4 and nxt == 0, energy, letter,
                        section_start=in_sec == 0, section_end=in_sec == sec_len - 1))
    if final >= 0:
        last_e = bars[-1].energy if bars else spec.energy_start
        bars.append(Bar(final, 0, False, last_e, "final"))
    return bars, pre


def _level(energy: float) -> int:
    return 0 if energy < 0.3 else 1 if energy < 0.55 else 2 if energy < 0.8 else 3


def _roles(spec: Spec) -> tuple[list[str], str | None, str, list[str]]:
    melodic = [i for i in spec.instruments if i not in ("bass", "drums")]
    bed = [i for i in melodic if i in ("pad", "strings", "choir")]
    comp_order = ("epiano", "piano", "pluck", "tremolo_guitar", "synth")
    lead_order = ("bells", "brass", "synth", "pluck", "piano", "epiano", "tremolo_guitar",
                  "strings", "choir", "pad")
    comp: str | None = next((i for i in comp_order if i in melodic), None)
    lead: str | None = next((i for i in lead_order if i in melodic and i != comp), None)
    voice = lead or comp or (bed[0] if bed else "piano")
    extras = [i for i in melodic if i not in bed and i not in (comp, voice)]
    return bed, comp, voice, extras


def arrange(spec: Spec, duration: float, seed: int) -> Arrangement:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, spec.style_hash])
    beat = 60.0 / spec.tempo
    bar_len = 4 * beat
    step = beat / 4
    bars, pre = _layout(spec, duration, bar_len, rng)
    bed, comp, lead, extras = _roles(spec)
    notes: list[NoteEvent] = []
    tonic = 48 + spec.root  # C3..B3
    swing = spec.swing

    def at(bar: Bar, s: float) -> float:
        off = swing * step if int(s) % 2 == 1 else 0.0
        return bar.index * bar_len + s * step + off

    def human(t: float, amount: float = 0.004) -> float:
        return t + float(np.clip(rng.normal(0, amount), -2.5 * amount, 2.5 * amount))

    def vel(energy: float, base: float = 1.0) -> float:
        return base * (0.55 + 0.45 * energy) * float(rng.uniform(0.88, 1.0))

    # Chord shapes per bar, voice-led.
    seventh = spec.sevenths
    shapes_bed: list[list[int]] = []
    shapes_comp: list[list[int]] = []
    prev_b: list[int] | None = None
    prev_c: list[int] | None = None
    for b in bars:
        pcs = [tonic + p for p in _chord(spec, b.degree, b.dominant or b.role == "cadence", seventh)]
        if b.role == "final":
            pcs = [tonic + p for p in _chord(spec, 0, False, False)]
        prev_b = _voice_lead(prev_b, pcs, 53, 74)
        prev_c = _voice_lead(prev_c, pcs, 52, 72)
        shapes_bed.append(prev_b)
        shapes_comp.append(prev_c)

    comp_choice = int(rng.integers(len(COMP_RHYTHMS.get(spec.drums, COMP_RHYTHMS["none"]))))
    motif = _make_motif(rng, spec)
    bass_line = BASS_LINES.get(spec.drums, BASS_LINES["none"])
    grids = DRUM_GRIDS.get(spec.drums, ())
    final_downbeat: float | None = None

    for n, b in enumerate(bars):
        t0 = b.index * bar_len
        root_pc = (tonic + _chord(spec, b.degree, False, False)[0]) % 12
        nxt = bars[n + 1] if n + 1 < len(bars) else b
        nxt_root = (tonic + _chord(spec, nxt.degree, False, False)[0]) % 12
        is_final = b.role == "final"
        hold = (duration - t0 + 0.5) if is_final else bar_len
        lvl = _level(b.energy)

        # Bed: one sustained chord per bar (held over while the chord does not change).
        if not (n > 0 and not is_final and bars[n - 1].degree == b.degree and bars[n - 1].role == b.role
                and b.index % 2 == 1 and spec.genre == "ambient"):
            span = hold
            if spec.genre == "ambient" and not is_final and nxt is not b and nxt.degree == b.degree:
                span = 2 * bar_len
            for inst in bed:
                shape = shapes_bed[n] if inst != "choir" else [p + 12 for p in shapes_bed[n]][:3]
                gain = 0.55 if inst != "strings" or lvl >= 1 else 0.45
                if inst != "choir":  # the chord root doubled below, as an arranger voices a pad
                    shape = [48 + (root_pc - 0) % 12 - (12 if 48 + root_pc % 12 >= min(shape) else 0), *shape]
                for p in shape:
                    notes.append(NoteEvent(inst, t0, span, p, gain * (0.7 + 0.3 * b.energy), PAN[inst]))
                if inst == "strings" and (lvl >= 2 or is_final):
                    notes.append(NoteEvent(inst, t0, span, 36 + root_pc + (12 if root_pc < 4 else 0), 0.5,
                                           -0.2))
        if "brass" in spec.instruments and lead != "brass" and (lvl >= 2 or is_final):
            for p in (0, 7, 12):
                notes.append(NoteEvent("brass", t0 + 0.02, hold * 0.95, 43 + (root_pc - 7) % 12 + p,
                                       0.45 * b.energy, PAN["brass"]))

        # Comping instrument.
        if comp:
            shape = shapes_comp[n]
            if is_final:
                rhythm: tuple[tuple[int, int], ...] = ((0, 64),)
            elif b.role == "intro" or lvl == 0:
                rhythm = ((0, 16),) if spec.tempo >= 80 else ((0, 8), (8, 8))
            else:
                rhythms = COMP_RHYTHMS.get(spec.drums, COMP_RHYTHMS["none"])
                rhythm = rhythms[comp_choice % len(rhythms)]
            if comp in ("pluck", "synth") and not is_final and spec.drums != "rock" and lvl >= 1:
                notes.extend(_arpeggio(comp, b, shape, at, human, vel, lvl, spec, root_pc))
            else:
                strum = 0.012 if comp in ("pluck", "tremolo_guitar") else 0.0
                for s, length in rhythm:
                    start = at(b, s)
                    dur = min(length * step, hold) if not is_final else hold
                    v = vel(b.energy, 0.6 if s % 4 else 0.7)
                    when = human(start)
                    for k, p in enumerate(shape):
                        notes.append(NoteEvent(comp, when + k * strum, dur, p, v * 0.8, PAN[comp]))
                    if comp == "piano" and (s == 0 or is_final):
                        notes.append(NoteEvent(comp, when, dur, 36 + root_pc, v * 0.7, PAN[comp]))

        # Extra melodic instruments double as gentle arpeggios above the harmony.
        for inst in extras:
            if lvl >= 1 and b.role not in ("intro",) and not is_final:
                notes.extend(_arpeggio(inst, b, [p + 12 for p in shapes_comp[n]], at, human, vel, 1, spec,
                                       root_pc))

        # Bass.
        if "bass" in spec.instruments:
            root = 28 + (root_pc - 4) % 12  # E1..D#2
            line = ((0, 16, "R"),) if is_final or lvl == 0 or b.role == "intro" else bass_line
            for s, length, what in line:
                pitch = {"R": root, "F": root + 7, "O": root + 12, "A": 28 + (nxt_root - 4) % 12 - 1}[what]
                if what == "R" and s > 0 and rng.random() < 0.2:
                    pitch = root + 12
                dur = hold if is_final else length * step * 0.92
                notes.append(NoteEvent("bass", human(at(b, s), 0.003), dur, pitch, vel(b.energy, 0.9)))

        # Motif (lead) on body bars: two-bar phrase, answered every other phrase.
        if b.role in ("A", "B", "cadence") and b.index >= -1:
            phrase_bar = (b.index - min(x.index for x in bars if x.role in ("A", "B"))) % 4 \
                if any(x.role in ("A", "B") for x in bars) else 0
            notes.extend(_motif_bar(lead, motif, phrase_bar, b, tonic, spec, at, human, vel, lvl))
        if is_final:
            top = 60 + spec.root + (12 if lead in ("bells",) else 0)
            while top < 67:
                top += 12
            notes.append(NoteEvent(lead, t0, hold, top, 0.55, PAN.get(lead, 0.0)))
            final_downbeat = t0

        # Drums.
        if spec.drums != "none" and b.role not in ("intro",):
            if is_final:
                if b.energy >= 0.3:
                    for kind in ("boom",) if spec.drums == "cinematic" else ("kick", "crash"):
                        notes.append(NoteEvent(kind, t0, 0.0, 0, 0.8, DRUM_PAN[kind]))
                continue
            notes.extend(_drum_bar(b, grids, lvl, at, human, rng, bars, n, spec.drums))
    return Arrangement(tuple(notes), beat, bar_len, pre * bar_len, final_downbeat, tuple(bars))


def _drum_bar(b: Bar, grids: tuple[tuple[str, int, int, str, float], ...], lvl: int, at: At, human: Human,
              rng: np.random.Generator, bars: list[Bar], n: int, style: str) -> list[NoteEvent]:
    out: list[NoteEvent] = []
    for kind, lo, hi, pattern, gain in grids:
        if not lo <= lvl <= hi:
            continue
        for s, ch in enumerate(pattern):
            if ch == ".":
                continue
            if b.section_end and lvl >= 2 and s >= 12 and kind in ("snare", "clap", "hat"):
                continue
            v = gain * (1.0 if ch == "x" else 0.45) * float(rng.uniform(0.82, 1.0)) * (0.7 + 0.3 * b.energy)
            jitter = 0.001 if kind in ("kick", "boom") and s % 4 == 0 else 0.004
            out.append(NoteEvent(kind, human(at(b, s), jitter), 0.0, int(rng.integers(3)), v, DRUM_PAN[kind]))
    if b.section_end and lvl >= 2:
        fill = "tom" if style == "cinematic" else "snare"
        for k, s in enumerate((12, 13, 14, 15)):
            out.append(NoteEvent(fill, human(at(b, s)), 0.0, int(rng.integers(3)), 0.45 + 0.12 * k,
                                 DRUM_PAN[fill]))
    prev_intro = n > 0 and bars[n - 1].role == "intro"
    if (b.section_start and lvl >= 2) or prev_intro:
        out.append(NoteEvent("crash", at(b, 0), 0.0, 0, 0.55 * (0.6 + 0.4 * b.energy), DRUM_PAN["crash"]))
    return out


def _arpeggio(inst: str, b: Bar, shape: list[int], at: At, human: Human, vel: Vel, lvl: int, spec: Spec,
              root: int) -> list[NoteEvent]:
    order = [0, 1, 2, len(shape) - 1, 2, 1] if len(shape) > 3 else [0, 1, 2, 1]
    sixteenths = lvl >= 2 and spec.tempo < 130 and inst == "synth"
    every = 1 if sixteenths else 2
    out = []
    for i, s in enumerate(range(0, 16, every)):
        p = shape[order[i % len(order)] % len(shape)] + (12 if inst == "synth" and i % 8 >= 4 else 0)
        if s % 8 == 0:  # the thumb: chord root on the strong beats, like a fingerpicked guitar
            p = root + 12 * ((shape[0] - root) // 12)
        out.append(NoteEvent(inst, human(at(b, s)), every * 60 / spec.tempo / 4 * 1.5, p,
                             vel(b.energy, 0.55 if s % 4 else 0.7), PAN.get(inst, 0.0)))
    return out


def _make_motif(rng: np.random.Generator, spec: Spec) -> list[tuple[int, int, int]]:
    """(step in a two-bar phrase, length in steps, scale-degree offset from the chord root)."""
    rhythm: tuple[tuple[int, int], ...]
    if (spec.energy_start < 0.3 and spec.energy_end < 0.3) or spec.tempo < 72:
        rhythm = SLOW_MOTIF
    else:
        rhythm = MOTIF_RHYTHMS[int(rng.integers(len(MOTIF_RHYTHMS)))]
    out = []
    deg = int(rng.choice([2, 4, 7]))
    for s, length in rhythm:
        if s % 8 == 0:
            deg = int(rng.choice([0, 2, 4, 7])) if rng.random() < 0.6 else deg + int(rng.choice([-2, 2]))
        else:
            deg += int(rng.choice([-2, -1, 1, 2]))
        deg = int(np.clip(deg, -2, 9))
        out.append((s, length, deg))
    return out


def _motif_bar(lead: str, motif: list[tuple[int, int, int]], phrase_bar: int, b: Bar, tonic: int, spec: Spec,
               at: At, human: Human, vel: Vel, lvl: int) -> list[NoteEvent]:
    half = phrase_bar % 2
    answer = phrase_bar >= 2
    out = []
    base = tonic + 12 + (12 if lead in ("bells",) else 0)
    if base < 60:
        base += 12
    items = [(s - 16 * half, length, d) for s, length, d in motif if 16 * half <= s < 16 * (half + 1)]
    if lvl == 0:
        items = [(s, max(length, 4), d) for s, length, d in items if s % 4 == 0]
    for i, (s, length, d) in enumerate(items):
        if answer and half == 1 and i == len(items) - 1:
            d = 0 if b.degree in (0, 3, 5) else 4
        midi = base + _pc(spec.mode, b.degree + d)
        if b.dominant and spec.mode == "minor" and (b.degree + d) % 7 == 6:
            midi += 1
        while midi > 88:
            midi -= 12
        dur = length * 60 / spec.tempo / 4
        when = human(at(b, s))
        out.append(NoteEvent(lead, when, dur * 0.95, midi, vel(b.energy, 0.75), PAN.get(lead, 0.0)))
        if lvl >= 3 and lead not in ("bells",):
            out.append(NoteEvent(lead, human(at(b, s)), dur * 0.95, midi - 12, vel(b.energy, 0.4),
                                 -PAN.get(lead, 0.0)))
    return out
