"""The piece's form: parts with a character of their own, then the bars they are written in.

A looped block is what background music must not sound like, so every piece longer than
``AUTO_FORM`` seconds gets a form even when nobody asked for one: an intro, a theme (A),
a contrast (B), a breakdown that thins out, a build that leads into the peak, a return of
the theme, and an ending, laid on a grid of four-bar phrases, the way library music for
video is usually cut. When the request carries section cues (the user's notes), the cues
*are* the form: each one becomes a part with the cue's own words and energy, and a part
long enough to need contrast of its own gets a smaller form inside it.

Part boundaries from cues are moved to the nearest beat of the running grid, not the
nearest bar: a bar line can be more than a second away, and a change of music a second
off the cut sounds late. The bar before such a change is cut short, the way a film
composer drops in a bar of 2/4 to land a hit. Tempo and key stay those of the whole
piece; only a cue that names a tempo of its own changes the beat from its part on.

Pure: no audio here, only times, energies and roles, so ``explain`` can show the form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ....models import SectionCue
from .patterns import PROGRESSIONS
from .spec import Spec, parse_prompt

__all__ = ["AUTO_FORM", "Bar", "Form", "Part", "describe_form", "make_form"]

AUTO_FORM = 45.0
"""Seconds above which a stretch of one character gets a form of its own."""
PHRASE = 4
"""Bars per phrase: parts of the automatic form are whole phrases."""
MIN_PHRASE = 9.0
"""Seconds a phrase of the body lasts at least; faster tempos use eight-bar phrases."""
TEMPLATE: tuple[tuple[str, int], ...] = (
    ("A", 2), ("B", 2), ("breakdown", 1), ("build", 1), ("peak", 2),
    ("A'", 2), ("C", 2), ("breakdown", 1), ("build", 1), ("peak", 2), ("B", 2),
)
"""The body of the automatic form, in (role, phrases); long pieces go round it again."""
ROLE_ENERGY: dict[str, tuple[float, float]] = {
    "intro": (-0.25, -0.2), "A": (0.0, 0.0), "A'": (0.08, 0.08), "B": (0.14, 0.14), "C": (0.04, 0.1),
    "breakdown": (-0.3, -0.3), "build": (-0.15, 0.22), "peak": (0.28, 0.28), "outro": (-0.12, -0.25),
}
"""Energy of a role, at its first and last bar, relative to the stretch's own energy."""
LETTER = {"intro": "A", "A": "A", "A'": "A", "B": "B", "C": "C", "breakdown": "B", "build": "C",
          "peak": "A", "outro": "A", "section": "A"}
"""Which chord progression a role plays: the theme returns, the contrast is new harmony."""
MIN_PART_BEATS = 3
"""A cue shorter than this many beats is merged into the part before it."""
BEAT_SNAP_MAX = 0.45
"""Above this many seconds per half beat, changes snap to eighth notes instead of beats."""


@dataclass(frozen=True)
class Part:
    """A stretch of one character: its words, energy at both ends, and role in the form."""

    start: float
    end: float
    spec: Spec
    role: str
    energy0: float
    energy1: float
    label: str
    """What ``explain`` calls it: a role of the automatic form, or ``section N``."""
    tempo: float

    @property
    def beat(self) -> float:
        return 60.0 / self.tempo


@dataclass(frozen=True)
class Bar:
    """One bar as written: where it starts, how many beats it has, and what happens in it."""

    index: int
    """Counts from the first bar at or after sample 0; negative in the pre-roll."""
    start: float
    beats: int
    """4; fewer (or 5) where a part starts off the bar line: the bar before the change is cut
    short, or takes one beat more, so the change lands on the beat nearest the cue."""
    beat: float
    degree: int
    dominant: bool
    energy: float
    role: str
    """intro, A, A', B, C, breakdown, build, peak, outro, section, cadence or final."""
    part: int
    in_part: int
    """Bar number inside its part, from 0: motifs and fills count phrases from the part's start."""
    letter: str = "A"
    section_start: bool = False
    section_end: bool = False
    riser: bool = False
    """A noise swell runs through this bar into a part with much more energy."""
    thin: bool = False
    """The texture empties out ahead of a calmer part (drums and extras drop)."""

    @property
    def length(self) -> float:
        return self.beats * self.beat

    @property
    def end(self) -> float:
        return self.start + self.length


@dataclass(frozen=True)
class Form:
    parts: tuple[Part, ...]
    bars: tuple[Bar, ...]
    preroll: float
    """Seconds written before sample 0 (one bar when the piece must not open with an intro)."""
    final_downbeat: float | None


# --- parts ------------------------------------------------------------------------------


def make_form(spec: Spec, duration: float, cues: Sequence[SectionCue], seed_rng: np.random.Generator,
              guidance: float = 1.0, downbeat: float | None = None) -> Form:
    """The parts (from the cues, else the automatic form), then the bars that realise them.

    ``downbeat`` puts a bar line there (seconds from sample 0): the grid the score's cuts
    were fitted to. The first bar then starts up to a bar before sample 0, and what lies
    before 0 is rendered as pre-roll and cut off, so the piece starts mid-bar.
    """
    bar = 240.0 / spec.tempo
    origin = 0.0 if downbeat is None else downbeat - math.ceil(downbeat / bar - 1e-9) * bar
    parts = _cue_parts(spec, duration, cues, guidance, origin) if len(cues) > 1 or _speaks(cues) else [
        _whole(spec, duration, origin)]
    parts = [p for big in parts for p in _inner_form(big, spec, first=big is parts[0], last=big is parts[-1])]
    return _bars(spec, duration, parts, seed_rng)


def _speaks(cues: Sequence[SectionCue]) -> bool:
    """One cue says something only when its energy or arc differ from the request's own words."""
    return len(cues) == 1 and cues[0].arc not in ("whole", "")


def _whole(spec: Spec, duration: float, origin: float = 0.0) -> Part:
    return Part(origin, duration, spec, "section", spec.energy_start, spec.energy_end, "whole piece",
                spec.tempo)


def _cue_parts(spec: Spec, duration: float, cues: Sequence[SectionCue], guidance: float,
               origin: float = 0.0) -> list[Part]:
    """One part per cue, on the beat grid, in the piece's tempo and key; tiny cues merge."""
    ordered = sorted((c for c in cues if c.end - c.start > 1e-6), key=lambda c: c.start)
    parts: list[Part] = []
    grid0, tempo = origin, spec.tempo
    for cue in ordered:
        own = parse_prompt(cue.prompt, cue.negative_prompt, guidance)
        words = _in_piece(own, spec)
        start = origin if not parts else _snap(cue.start, grid0, 60.0 / tempo)
        if parts and (start - parts[-1].start) / parts[-1].beat < MIN_PART_BEATS:
            # Too short to be heard as a change: the previous part absorbs it.
            parts[-1] = replace(parts[-1], end=min(duration, cue.end))
            continue
        if parts and (cue.end - start) * own.tempo / 60 < MIN_PART_BEATS and cue is ordered[-1]:
            parts[-1] = replace(parts[-1], end=duration)
            continue
        if own.tempo_source == "named in the prompt" and own.tempo != spec.tempo and parts:
            tempo = own.tempo
        if parts:
            parts[-1] = replace(parts[-1], end=start)
        e0, e1 = _cue_energy(cue, parts[-1].energy1 if parts else None)
        label = f"section {cue.index}" + (f" ({cue.arc})" if cue.arc not in ("whole", "") else "")
        parts.append(Part(start, min(duration, cue.end), words, _cue_role(cue), e0, e1, label, tempo))
        grid0 = start
    if not parts:
        return [_whole(spec, duration)]
    parts[-1] = replace(parts[-1], end=duration)
    return parts


def _in_piece(own: Spec, piece: Spec) -> Spec:
    """A cue's words inside the piece: its instruments, drums and mood; the piece's genre and key."""
    return replace(own, genre=piece.genre, root=piece.root, mode=piece.mode, swing=piece.swing,
                   sevenths=piece.sevenths, style_hash=piece.style_hash, intro=piece.intro,
                   ending=piece.ending, strong_ending=piece.strong_ending,
                   drums=own.drums if own.drums == "none" else piece.drums if piece.drums != "none"
                   else own.drums)


def _cue_energy(cue: SectionCue, before: float | None) -> tuple[float, float]:
    """A build starts halfway up from where the music was, so its first bar is already a
    change (the cut is heard), and climbs from there to its own energy."""
    e = min(max(cue.energy, 0.05), 1.0)
    if cue.arc == "build" and before is not None and before < e:
        return before + 0.5 * (e - before), e
    return e, e


def _cue_role(cue: SectionCue) -> str:
    return {"build": "build", "peak": "peak", "ending": "outro", "opening": "A"}.get(cue.arc, "section")


def _snap(t: float, grid0: float, beat: float) -> float:
    """The beat (or, at slow tempos, the eighth note) of the running grid nearest to ``t``."""
    unit = beat if beat / 2 <= BEAT_SNAP_MAX else beat / 2
    return grid0 + round((t - grid0) / unit) * unit


def _inner_form(part: Part, piece: Spec, *, first: bool, last: bool) -> list[Part]:
    """A long stretch of one character gets the automatic form around its own energy.

    Inside a user's section the contrasts are smaller (the section's words set the
    character; the form only keeps it from looping), and a build or peak the user asked
    for stays one.
    """
    length = part.end - part.start
    bar = 4 * part.beat
    n_bars = math.floor(length / bar + 1e-9)
    if part.label == "whole piece" and (length <= AUTO_FORM or n_bars < 3 * PHRASE):
        return _short_form(part, piece, n_bars)
    if length <= AUTO_FORM or n_bars < 3 * PHRASE or part.role in ("build", "outro"):
        return [part]
    depth = 1.0 if part.label == "whole piece" else 0.6
    intro = first and piece.intro and part.label == "whole piece"
    outro = last and piece.ending
    # A phrase of the body lasts at least MIN_PHRASE seconds (eight bars at fast tempos), so
    # a breakdown is long enough to be heard as a section; intro and outro stay four bars.
    phrase = PHRASE if PHRASE * bar >= MIN_PHRASE else 2 * PHRASE
    edge_bars = (PHRASE if intro else 0) + (PHRASE if outro else 0)
    body = (n_bars - edge_bars) // phrase
    plan: list[tuple[str, int]] = [("intro", PHRASE)] if intro else []
    plan.extend((role, n * phrase) for role, n in _body_plan(body))
    if outro:
        plan.append(("outro", PHRASE))
    # Room above for the peak: a piece asked to be flat out still needs somewhere to go.
    base = min((part.energy0 + part.energy1) / 2, 1.0 - depth * ROLE_ENERGY["peak"][1])
    out: list[Part] = []
    t = part.start
    spare = n_bars - sum(n for _, n in plan)
    for i, (role, n) in enumerate(plan):
        bars = n + (spare if i == len(plan) - 1 else 0)
        end = part.end if i == len(plan) - 1 else t + bars * bar
        lo, hi = ROLE_ENERGY[role]
        e0 = min(max(base + depth * lo, 0.08), 1.0)
        e1 = min(max(base + depth * hi, 0.08), 1.0)
        label = role if part.label == "whole piece" else f"{part.label}: {role}"
        out.append(replace(part, start=t, end=end, role=role, energy0=e0, energy1=e1, label=label))
        t = end
    return out


def _short_form(part: Part, piece: Spec, n_bars: int) -> list[Part]:
    """A short piece: a bar or two of intro, then the theme and its contrast taking turns
    phrase by phrase; too short for a breakdown or a build to mean anything."""
    bar = 4 * part.beat
    n_intro = 0 if not piece.intro or n_bars < 4 else 1 if n_bars < 10 else 2
    phrase = 8 if n_bars >= 16 else 4
    out: list[Part] = []
    t = part.start
    if n_intro:
        t = part.start + n_intro * bar
        out.append(replace(part, end=t, role="intro", energy0=min(part.energy0, 0.3) * 0.8,
                           energy1=min(part.energy0, 0.3) * 0.8, label="intro"))
    k = 0
    while t < part.end - 1e-9:
        end = min(part.end, t + phrase * bar)
        if part.end - end < 2 * bar:
            end = part.end
        role = "A" if k % 2 == 0 else "B"
        out.append(replace(part, start=t, end=end, role=role, label=role))
        t, k = end, k + 1
    return out


def _body_plan(phrases: int) -> list[tuple[str, int]]:
    """Roles for ``phrases`` four-bar phrases: short bodies keep the arc (theme, contrast,
    build, peak) and drop the rest; long ones go round ``TEMPLATE``, never ending on a
    build or a breakdown."""
    short = {1: [("A", 1)], 2: [("A", 1), ("B", 1)], 3: [("A", 1), ("B", 1), ("peak", 1)],
             4: [("A", 1), ("B", 1), ("build", 1), ("peak", 1)],
             5: [("A", 2), ("B", 1), ("build", 1), ("peak", 1)],
             6: [("A", 2), ("B", 1), ("breakdown", 1), ("build", 1), ("peak", 1)],
             7: [("A", 2), ("B", 2), ("breakdown", 1), ("build", 1), ("peak", 1)]}
    if phrases <= 0:
        return []
    if phrases in short:
        return short[phrases]
    plan: list[tuple[str, int]] = []
    k = 0
    while phrases > 0:
        role, n = TEMPLATE[k % len(TEMPLATE)]
        plan.append((role, min(n, phrases)))
        phrases -= min(n, phrases)
        k += 1
    if plan[-1][0] == "build":
        plan[-1] = ("peak", plan[-1][1])
    elif plan[-1][0] == "breakdown":
        plan[-1] = ("A'", plan[-1][1])
    return plan


# --- bars -------------------------------------------------------------------------------


def _bars(spec: Spec, duration: float, parts: list[Part], rng: np.random.Generator) -> Form:
    """Bars part by part, then the pre-roll, the cadence and the final chord."""
    progs = {
        "A": _pick(PROGRESSIONS[(spec.mode, "A")], rng),
        "B": _pick(PROGRESSIONS[(spec.mode, "B")], rng),
    }
    others = [p for p in PROGRESSIONS[(spec.mode, "A")] + PROGRESSIONS[(spec.mode, "B")]
              if p not in progs.values()]
    progs["C"] = others[int(rng.integers(len(others)))] if others else progs["B"]
    harmonic_rhythm = 2 if spec.genre == "ambient" or spec.tempo < 66 else 1

    bars: list[Bar] = []
    for pi, part in enumerate(parts):
        letter = LETTER.get(part.role, "A")
        if part.role == "section":
            letter = "AB"[pi % 2]
        beats_total = max(1, round((part.end - part.start) / part.beat))
        if pi == len(parts) - 1:
            beats_total = max(1, math.ceil((part.end - part.start) / part.beat - 1e-9))
        n_bars = math.ceil(beats_total / 4)
        if n_bars >= 2 and beats_total % 4 == 1 and pi < len(parts) - 1:
            n_bars -= 1  # a lone beat before the change joins the bar before it (a bar of 5/4)
        for k in range(n_bars):
            beats = min(4, beats_total - 4 * k) if k < n_bars - 1 else beats_total - 4 * k
            pos = k / max(1, n_bars - 1)
            energy = part.energy0 + (part.energy1 - part.energy0) * pos
            prog = progs[letter]
            chord_i = (k // harmonic_rhythm) % len(prog)
            degree = prog[chord_i]
            nxt = prog[(chord_i + 1) % len(prog)]
            # Phrase ends inside a part get the drummer's fill; the part's own last bar does not
            # (a fill there is heard as the change, early).
            phrase_end = k % (2 * PHRASE) == 2 * PHRASE - 1 and k != n_bars - 1
            bars.append(Bar(
                index=len(bars), start=part.start + 4 * k * part.beat, beats=beats, beat=part.beat,
                degree=degree, dominant=degree == 4 and nxt == 0, energy=energy, role=part.role,
                part=pi, in_part=k, letter=letter, section_start=k % (2 * PHRASE) == 0,
                section_end=phrase_end,
            ))
    bars = _transitions(bars, parts)
    bars, final = _ending(spec, duration, bars)
    if not spec.intro and bars:
        b0 = bars[0]
        bars.insert(0, replace(b0, index=-1, start=b0.start - 4 * b0.beat, beats=4, in_part=-1,
                               section_start=False, section_end=False))
    pre = max(0.0, -bars[0].start) if bars else 0.0
    return Form(tuple(parts), tuple(bars), pre, final)


def _pick(options: tuple[tuple[int, ...], ...], rng: np.random.Generator) -> tuple[int, ...]:
    return options[int(rng.integers(len(options)))]


def _transitions(bars: list[Bar], parts: list[Part]) -> list[Bar]:
    """What leads from one part into the next: a riser and a dominant into a big lift, a
    thinning texture into less; a small lift simply starts on the downbeat.

    The riser fills the last bar, no more: a longer swell is heard as the change itself,
    early, and the change belongs on the cut.
    """
    out = list(bars)
    for i, b in enumerate(bars):
        nxt = bars[i + 1] if i + 1 < len(bars) else None
        if nxt is None or nxt.part == b.part or b.role == "intro":
            continue  # an intro opens onto the theme; it does not build into it
        rise = nxt.energy - b.energy
        if rise >= 0.25 or (parts[nxt.part].role == "peak" and rise > 0.05):
            # A half cadence (the dominant) under the swell, which fills the last bar only.
            dominant = b.beats >= 2 and b.in_part >= 1
            out[i] = replace(b, riser=True, degree=4 if dominant else b.degree, dominant=dominant)
        elif rise <= -0.15:
            out[i] = replace(b, thin=True)
    return out


def _ending(spec: Spec, duration: float, bars: list[Bar]) -> tuple[list[Bar], float | None]:
    """Cut the bars where the final chord goes and write the cadence before it."""
    if not spec.ending or not bars:
        return bars, None
    tail = min(3.0 if spec.strong_ending else 1.8, duration * 0.5)
    last = bars[-1]
    grid = [b for b in bars if (b.start <= duration - tail + 1e-9 and b.beats == 4) or b is bars[0]]
    final_bar = grid[-1] if grid else last
    t_final = final_bar.start
    kept = [b for b in bars if b.start < t_final - 1e-9]
    n_body = len(kept)
    n_cad = min(n_body, 2 if n_body >= 4 else 1)
    for j in range(n_body - n_cad, n_body):
        k = j - (n_body - n_cad)
        degree = 4 if k == n_cad - 1 else (3 if spec.mode == "minor" or kept[j].index % 2 else 1)
        kept[j] = replace(kept[j], degree=degree, dominant=degree == 4, role="cadence",
                          section_end=k == n_cad - 1, riser=False, thin=False)
    energy = kept[-1].energy if kept else last.energy
    kept.append(replace(final_bar, index=len(kept), start=t_final, role="final", degree=0, dominant=False,
                        energy=energy, beats=4, riser=False, thin=False, section_start=False,
                        section_end=False))
    return kept, t_final


# --- showing the form -------------------------------------------------------------------


def describe_form(form: Form) -> list[str]:
    """One line per part: its bars, seconds and energy, for ``generate --explain``."""
    lines = []
    for pi, part in enumerate(form.parts):
        bars = [b for b in form.bars if b.part == pi and b.index >= 0 and b.role not in ("final",)]
        if not bars:
            continue
        first, last = bars[0].index + 1, bars[-1].index + 1
        energy = f"{part.energy0:.2f}" if abs(part.energy0 - part.energy1) < 0.005 else \
            f"{part.energy0:.2f} -> {part.energy1:.2f}"
        drums = "" if "drums" in part.spec.instruments else ", no drums"
        lines.append(f"  {part.label}: bars {first}-{last} ({part.start:.1f}-{part.end:.1f} s), "
                     f"energy {energy}{drums}")
    if form.final_downbeat is not None:
        lines.append(f"  ending: final chord at {form.final_downbeat:.1f} s")
    return lines
