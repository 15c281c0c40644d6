"""Writing the notes: every bar of the form, for bed, comping, lead, bass and drums.

``form`` decides what each bar is (its part, chord, energy and role); this module decides
what each instrument plays in it. Energy is what an arranger turns up and down: density
(comping and drum patterns, arpeggios from medium energy on), register (the chords climb
as the energy rises) and instrumentation (bass and drums drop out of intros and
breakdowns, the lead doubles its octave at the peak). A part's own words decide which
instruments may play at all, so a ``[no drums]`` section has none. A big lift is led in
by a riser and lands on a crash, calmer parts are reached through a bar that thins out.
There is no drum fill before a change of section: measured, even half a beat of fill moves
the heard change (the novelty peak) ahead of the cut, and the change belongs on the cut.

Every part is a list of ``NoteEvent`` in seconds; rendering is somebody else's job. The
seed picks progressions, motifs, voicings and pattern details, never tempo or key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ....models import SectionCue
from .form import Bar, Form, Part, make_form
from .patterns import (
    BASS_LINES,
    COMP_RHYTHMS,
    DRUM_GRIDS,
    DRUM_PAN,
    MOTIF_RHYTHMS,
    PAN,
    SCALES,
    SLOW_MOTIF,
)
from .spec import Spec

__all__ = ["Arrangement", "NoteEvent", "arrange"]

REGISTER = ((48, 67), (52, 72), (55, 76), (57, 79))
"""Range of the chord voicings at energy levels 0-3: the harmony climbs with the energy."""
QUIET_ROLES = ("intro", "breakdown")
"""Roles without bass or drums: the texture is bed, chords and (in a breakdown) the theme."""


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
    bright: float = 0.5
    """Tone colour 0..1: brighter as the energy rises, so the sound changes with the form."""


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
    parts: tuple[Part, ...] = ()


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


def arrange(spec: Spec, duration: float, seed: int, cues: Sequence[SectionCue] = (),
            guidance: float = 1.0, downbeat: float | None = None) -> Arrangement:
    """The form for ``duration`` seconds (from ``cues`` when given), written out note by note,
    its bar lines on ``downbeat`` when one is given."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, spec.style_hash])
    form = make_form(spec, duration, cues, rng, guidance, downbeat)
    writer = _Writer(spec, form, rng, duration)
    for n in range(len(form.bars)):
        writer.bar(n)
    beat = form.parts[0].beat if form.parts else 60.0 / spec.tempo
    return Arrangement(tuple(writer.notes), beat, 4 * beat, form.preroll, form.final_downbeat, form.bars,
                       form.parts)


class _Writer:
    """The state an arranger carries from bar to bar: voicings, motifs, the running notes."""

    def __init__(self, spec: Spec, form: Form, rng: np.random.Generator, duration: float) -> None:
        self.spec, self.form, self.rng, self.duration = spec, form, rng, duration
        self.notes: list[NoteEvent] = []
        self.tonic = 48 + spec.root  # C3..B3
        self.comp_choice = int(rng.integers(6))
        calm = spec.energy_start < 0.3 and spec.energy_end < 0.3
        self.motifs = {letter: _make_motif(rng, spec, slow=calm) for letter in "ABC"}
        self.shapes_bed: list[list[int]] = []
        self.shapes_comp: list[list[int]] = []
        prev_b: list[int] | None = None
        prev_c: list[int] | None = None
        for b in form.bars:
            if b.role == "final":
                pcs = [self.tonic + p for p in _chord(spec, 0, False, False)]
            else:
                pcs = [self.tonic + p for p in _chord(spec, b.degree, b.dominant or b.role == "cadence",
                                                      spec.sevenths)]
            low, high = REGISTER[_level(b.energy)]
            prev_b = _voice_lead(prev_b, pcs, low + 5, high + 2)
            prev_c = _voice_lead(prev_c, pcs, low + 4, high)
            self.shapes_bed.append(prev_b)
            self.shapes_comp.append(prev_c)

    # -- timing helpers --------------------------------------------------------------

    def at(self, bar: Bar, s: float) -> float:
        step = bar.beat / 4
        off = self.spec.swing * step if int(s) % 2 == 1 else 0.0
        return bar.start + s * step + off

    def human(self, t: float, amount: float = 0.004) -> float:
        return t + float(np.clip(self.rng.normal(0, amount), -2.5 * amount, 2.5 * amount))

    def vel(self, energy: float, base: float = 1.0) -> float:
        return base * (0.55 + 0.45 * energy) * float(self.rng.uniform(0.88, 1.0))

    def add(self, events: list[NoteEvent], bar: Bar, bright: float) -> None:
        """Keep what fits the bar: a bar cut short at a change loses its last steps and ties;
        a bar of five beats plays its fourth beat's figures again, so the groove runs on to
        the change instead of pausing before it."""
        short = bar.beats != 4 and bar.role != "final"
        if bar.beats > 4 and bar.role != "final":
            last = (bar.start + 3 * bar.beat - 0.01, bar.start + 4 * bar.beat - 0.01)
            events = events + [NoteEvent(ev.inst, ev.start + bar.beat, ev.dur, ev.midi, ev.vel, ev.pan)
                               for ev in events if last[0] <= ev.start < last[1]]
        for ev in events:
            dur = ev.dur
            if short:
                if ev.start >= bar.end - 1e-6:
                    continue
                if dur > 0:
                    dur = max(0.02, min(dur, bar.end - ev.start + 0.02))
            self.notes.append(NoteEvent(ev.inst, ev.start, dur, ev.midi, ev.vel, ev.pan, bright))

    # -- one bar ---------------------------------------------------------------------

    def bar(self, n: int) -> None:
        b = self.form.bars[n]
        part = self.form.parts[b.part]
        pspec = part.spec
        bars = self.form.bars
        nxt = bars[n + 1] if n + 1 < len(bars) else b
        # Tone follows energy; the contrasting section opens the filters further and the
        # breakdown closes them (the low-passed breakdown of dance music).
        opened = {"breakdown": -0.25, "intro": -0.1}.get(b.role, 0.15 if b.letter in ("B", "C") else 0.0)
        bright = round(min(max(pspec.brightness + 0.35 * (b.energy - 0.5) + opened, 0.1), 0.9), 1)
        is_final = b.role == "final"
        hold = (self.duration - b.start + 0.5) if is_final else b.length
        lvl = _level(b.energy)
        bed, comp, lead, extras = _roles(pspec)
        root_pc = (self.tonic + _chord(self.spec, b.degree, False, False)[0]) % 12
        nxt_root = (self.tonic + _chord(self.spec, nxt.degree, False, False)[0]) % 12
        out: list[NoteEvent] = []
        out += self._bed(b, n, bed, root_pc, hold, lvl, is_final)
        if "brass" in pspec.instruments and lead != "brass" and (lvl >= 2 or is_final):
            for p in (0, 7, 12):
                out.append(NoteEvent("brass", b.start + 0.02, hold * 0.95, 43 + (root_pc - 7) % 12 + p,
                                     0.45 * b.energy, PAN["brass"]))
        if comp:
            out += self._comp(b, n, comp, pspec, root_pc, hold, lvl, is_final)
        if lvl >= 2 and b.role not in QUIET_ROLES and not is_final and not b.thin:
            for inst in extras:
                out += _arpeggio(inst, b, [p + 12 for p in self.shapes_comp[n]], self.at, self.human,
                                 self.vel, 1, pspec, root_pc)
        if "bass" in pspec.instruments and b.role not in QUIET_ROLES:  # the floor drops out
            out += self._bass(b, pspec, root_pc, nxt_root, hold, lvl, is_final)
        drumless = pspec.drums == "none"
        if drumless and b.energy >= 0.4 and bed and not is_final:
            # Without drums to add, the peak opens the pads up an octave instead.
            for p in self.shapes_bed[n]:
                out.append(NoteEvent(bed[0], b.start, hold, p + 12, 0.35 * b.energy, -0.3))
        silent_lead = drumless and b.role == "breakdown"  # a drumless breakdown is the pads alone
        if b.role != "intro" and b.index >= -1 and not is_final and not silent_lead:
            letter = b.letter if b.role != "cadence" else "A"
            # The breakdown plays the theme bare; the peak doubles it an octave below.
            motif_level = {"breakdown": 0, "peak": 3}.get(b.role, lvl)
            lift = 2 if b.role == "A'" and b.in_part % 8 < 4 else 0
            out += _motif_bar(lead, self.motifs[letter], b.in_part % 4, b, self.tonic, self.spec, self.at,
                              self.human, self.vel, motif_level, lift=lift)
        if is_final:
            top = 60 + self.spec.root + (12 if lead in ("bells",) else 0)
            while top < 67:
                top += 12
            out.append(NoteEvent(lead, b.start, hold, top, 0.55, PAN.get(lead, 0.0)))
        if pspec.drums != "none" and b.role not in QUIET_ROLES:
            out += self._drums(b, n, pspec, lvl, is_final)
        self.add(out, b, bright)
        if b.riser and (n == 0 or not bars[n - 1].riser) and pspec.drums != "none":
            end = b.end
            m = n + 1
            while m < len(bars) and bars[m].riser:
                end = bars[m].end
                m += 1
            level = 0.35 + 0.5 * nxt.energy
            self.notes.append(NoteEvent("riser", b.start, end - b.start, 0, level, 0.0, bright))

    def _bed(self, b: Bar, n: int, bed: list[str], root_pc: int, hold: float, lvl: int,
             is_final: bool) -> list[NoteEvent]:
        """One sustained chord per bar, its root doubled below as an arranger voices a pad."""
        bars = self.form.bars
        if self.spec.genre == "ambient" and not is_final and n > 0 and bars[n - 1].degree == b.degree \
                and bars[n - 1].part == b.part and b.in_part % 2 == 1:
            return []  # ambient pads hold through two bars of one chord
        span = hold
        if self.spec.genre == "ambient" and not is_final and n + 1 < len(bars) \
                and bars[n + 1].degree == b.degree and bars[n + 1].part == b.part:
            span = hold + bars[n + 1].length
        out = []
        for inst in bed:
            shape = self.shapes_bed[n] if inst != "choir" else [p + 12 for p in self.shapes_bed[n]][:3]
            gain = 0.55 if inst != "strings" or lvl >= 1 else 0.45
            if inst != "choir":
                shape = [48 + root_pc % 12 - (12 if 48 + root_pc % 12 >= min(shape) else 0), *shape]
            for p in shape:
                out.append(NoteEvent(inst, b.start, span, p, gain * (0.7 + 0.3 * b.energy), PAN[inst]))
            if inst == "strings" and (lvl >= 2 or is_final):
                low_root = 36 + root_pc + (12 if root_pc < 4 else 0)
                out.append(NoteEvent(inst, b.start, span, low_root, 0.5, -0.2))
        return out

    def _comp(self, b: Bar, n: int, comp: str, pspec: Spec, root_pc: int, hold: float, lvl: int,
              is_final: bool) -> list[NoteEvent]:
        shape = self.shapes_comp[n]
        rhythm: tuple[tuple[int, int], ...]
        if is_final:
            rhythm = ((0, 64),)
        elif b.role in QUIET_ROLES or lvl == 0 or b.thin:
            rhythm = ((0, 16),) if pspec.tempo >= 80 else ((0, 8), (8, 8))
        else:
            rhythms = COMP_RHYTHMS.get(pspec.drums, COMP_RHYTHMS["none"])
            rhythm = rhythms[self.comp_choice % len(rhythms)]
        arpeggiates = comp in ("pluck", "synth") and pspec.drums != "rock"
        contrast = b.letter in ("B", "C") and b.role not in QUIET_ROLES
        if contrast:
            # The contrasting section changes the accompaniment's figure and register: block
            # chords become broken chords an octave up, and broken chords become blocks.
            arpeggiates = not arpeggiates
            shape = [p + 12 for p in shape] if arpeggiates else shape
        if arpeggiates and not is_final and lvl >= 1 and b.role not in QUIET_ROLES and not b.thin:
            return _arpeggio(comp, b, shape, self.at, self.human, self.vel, lvl, pspec, root_pc)
        out = []
        strum = 0.012 if comp in ("pluck", "tremolo_guitar") else 0.0
        for s, length in rhythm:
            start = self.at(b, s)
            dur = min(length * b.beat / 4, hold) if not is_final else hold
            v = self.vel(b.energy, 0.6 if s % 4 else 0.7)
            when = self.human(start)
            for k, p in enumerate(shape):
                out.append(NoteEvent(comp, when + k * strum, dur, p, v * 0.8, PAN[comp]))
            if comp == "piano" and (s == 0 or is_final):
                out.append(NoteEvent(comp, when, dur, 36 + root_pc, v * 0.7, PAN[comp]))
        return out

    def _bass(self, b: Bar, pspec: Spec, root_pc: int, nxt_root: int, hold: float, lvl: int,
              is_final: bool) -> list[NoteEvent]:
        root = 28 + (root_pc - 4) % 12  # E1..D#2
        quiet = is_final or lvl == 0 or b.thin
        line = ((0, 16, "R"),) if quiet else BASS_LINES.get(pspec.drums, BASS_LINES["none"])
        out = []
        for s, length, what in line:
            pitch = {"R": root, "F": root + 7, "O": root + 12, "A": 28 + (nxt_root - 4) % 12 - 1}[what]
            if what == "R" and s > 0 and self.rng.random() < 0.2:
                pitch = root + 12
            dur = hold if is_final else length * b.beat / 4 * 0.92
            when = self.human(self.at(b, s), 0.003)
            out.append(NoteEvent("bass", when, dur, pitch, self.vel(b.energy, 0.9)))
        return out

    def _drums(self, b: Bar, n: int, pspec: Spec, lvl: int, is_final: bool) -> list[NoteEvent]:
        if is_final:
            if b.energy < 0.3:
                return []
            kinds = ("boom",) if pspec.drums == "cinematic" else ("kick", "crash")
            return [NoteEvent(kind, b.start, 0.0, 0, 0.8, DRUM_PAN[kind]) for kind in kinds]
        if b.thin:  # one hit on the downbeat, then the floor drops away
            kind = "boom" if pspec.drums == "cinematic" else "kick"
            return [NoteEvent(kind, b.start, 0.0, 0, 0.7 * (0.7 + 0.3 * b.energy), DRUM_PAN[kind])]
        grids = DRUM_GRIDS.get(pspec.drums, ())
        # The contrasting section's groove is one step busier (hats to sixteenths, a shaker).
        busier = min(3, lvl + 1) if b.letter in ("B", "C") and lvl >= 1 else lvl
        out = _drum_bar(b, grids, busier, self.at, self.human, self.rng, self.form.bars, n, pspec.drums)
        return out


def _drum_bar(b: Bar, grids: tuple[tuple[str, int, int, str, float], ...], lvl: int, at: At, human: Human,
              rng: np.random.Generator, bars: Sequence[Bar], n: int, style: str) -> list[NoteEvent]:
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
    if b.section_end and lvl >= 2 and not b.riser:
        fill = "tom" if style == "cinematic" else "snare"
        for k, s in enumerate((12, 13, 14, 15)):
            out.append(NoteEvent(fill, human(at(b, s)), 0.0, int(rng.integers(3)), 0.45 + 0.12 * k,
                                 DRUM_PAN[fill]))
    prev_intro = n > 0 and bars[n - 1].role in QUIET_ROLES
    new_part = b.in_part == 0 and b.part > 0 and lvl >= 1  # a change of section is marked
    if (b.section_start and lvl >= 2) or prev_intro or new_part:
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
        out.append(NoteEvent(inst, human(at(b, s)), every * b.beat / 4 * 1.5, p,
                             vel(b.energy, 0.55 if s % 4 else 0.7), PAN.get(inst, 0.0)))
    return out


def _make_motif(rng: np.random.Generator, spec: Spec, slow: bool) -> list[tuple[int, int, int]]:
    """(step in a two-bar phrase, length in steps, scale-degree offset from the chord root)."""
    slow = slow or spec.tempo < 72
    rhythm = SLOW_MOTIF if slow else MOTIF_RHYTHMS[int(rng.integers(len(MOTIF_RHYTHMS)))]
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
               at: At, human: Human, vel: Vel, lvl: int, lift: int = 0) -> list[NoteEvent]:
    """One bar of the two-bar motif; ``lift`` moves it up by scale steps (the theme's return)."""
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
        d += lift
        midi = base + _pc(spec.mode, b.degree + d)
        if b.dominant and spec.mode == "minor" and (b.degree + d) % 7 == 6:
            midi += 1
        while midi > 88:
            midi -= 12
        dur = length * b.beat / 4
        when = human(at(b, s))
        out.append(NoteEvent(lead, when, dur * 0.95, midi, vel(b.energy, 0.75), PAN.get(lead, 0.0)))
        if lvl >= 3 and lead not in ("bells",):
            out.append(NoteEvent(lead, human(at(b, s)), dur * 0.95, midi - 12, vel(b.energy, 0.4),
                                 -PAN.get(lead, 0.0)))
    return out
