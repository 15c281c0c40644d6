"""Sections and their prompts: the preset's style plus what the notes say happens when.

Every section's prompt has the same shape, in this order::

    style. scene words. mood, featured instruments. arc. energy. no X. no vocals. continuity

* style: the preset's style prompt, or ``prompt=`` instead;
* scene words: the note's text, modifiers removed;
* arc: the section's place in the story (opening, build, peak, ending), from its
  position and energy cues unless the note says ``[arc: ...]``;
* energy: always worded ("low energy", "medium energy", "high energy"), since the
  generator only hears words;
* ``no X``: from ``[no X]``; also in the negative prompt, but the distilled model mostly
  ignores negatives, so it has to be in the prompt too. Phrases naming X are also taken out
  of the style and the core instruments so the prompt does not contradict itself;
* continuity: the same tempo in BPM, key and core instruments in every section, so that
  chunks and sections generated separately still join.

Prompts are kept within ``MAX_PROMPT`` characters by trimming the least important parts
first (arc and energy elaboration, the tail of the style, the preset's "no vocals"
wording, then scene words); continuity and ``no X`` are never trimmed.

Pure functions: no ffmpeg, no disk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..models import Note, Section
from .notes import energy_value, format_time
from .presets import Preset

__all__ = [
    "BPM_IN_TEXT",
    "MAX_PROMPT",
    "SectionsResult",
    "build_sections",
    "comma_phrases",
    "continuity_terms",
    "drop_phrases",
    "energy_words",
    "is_silent",
    "shared_tempo",
    "unique_words",
]

MAX_PROMPT = 400

ARC_WORDS = {
    "opening": "opening section, introducing the theme",
    "build": "build, developing the theme, gradually rising",
    "peak": "peak, climax, full arrangement",
    "ending": "ending, resolving to a final cadence",
    "whole": "",
}
ARC_ENERGY_SHIFT = {"opening": -0.1, "build": 0.05, "peak": 0.25, "ending": -0.15, "whole": 0.0}
"""Energy of a section without an energy cue: the preset's baseline moved by its arc."""

HIGH_WORDS = (
    "speed up", "speeds up", "fast", "faster", "intense", "intensity", "climax", "action", "energetic",
    "hype", "exciting", "excitement", "chase", "epic", "triumphant", "explosive", "race", "fight",
    "battle", "celebration", "party", "dance", "powerful", "drop", "rush", "urgent", "frantic", "loud",
)
LOW_WORDS = (
    "calm", "quiet", "gentle", "soft", "slow", "slows", "slow down", "still", "peaceful", "sad",
    "reflective", "tender", "sleepy", "somber", "melancholy", "intimate", "relaxed", "serene",
    "whisper", "lonely", "wind down", "winds down",
)
_HIGH_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in HIGH_WORDS) + r")\b", re.IGNORECASE)
_LOW_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in LOW_WORDS) + r")\b", re.IGNORECASE)
_BPM_RE = re.compile(r"\b(\d{2,3})\s*bpm\b", re.IGNORECASE)
BPM_IN_TEXT = _BPM_RE
"""A BPM written in a prompt or note ("100 BPM"): the user's tempo, which nothing overrides."""
_EPSILON = 1e-6
"""Times closer than this are the same time (float noise from parsing and arithmetic)."""
PEAK_CUE = 0.6
"""A middle section whose energy cue reaches this is a candidate for the peak."""


@dataclass(frozen=True)
class SectionsResult:
    sections: tuple[Section, ...]
    warnings: tuple[str, ...] = ()


@dataclass
class _Span:
    """A section while it is being arranged: mutable, merged and clipped before prompts."""

    start: float
    end: float
    texts: list[str] = field(default_factory=list)
    modifiers: list[tuple[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    arc: str | None = None
    """A fixed place in the arc (podcast beds), else derived from position and energy."""

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        where = self.sources[0] if self.sources else "the stretch without notes"
        return f"{where} ({format_time(self.start)}-{format_time(self.end)})"

    def absorb(self, other: _Span) -> None:
        first, second = (self, other) if self.start <= other.start else (other, self)
        self.texts = [t for t in (*first.texts, *second.texts) if t]
        self.modifiers = [*self.modifiers, *other.modifiers]
        self.sources = [*first.sources, *second.sources]
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)


def is_silent(section: Section | _Span) -> bool:
    """True for a ``[silence]`` section (and the gap between podcast beds): generate nothing.

    The only place that reads ``[silence]``: spans being arranged here, finished sections,
    and the plan's music spans (``music.plan.music_spans``) all ask it.
    """
    return any(k == "silence" for k, _ in section.modifiers)


def shared_tempo(preset: Preset, prompt: str | None = None) -> float:
    """The BPM every section states: a BPM written in ``prompt``, else the preset's tempo,
    else one in its style, else one that suits its energy (so it is always stated, always the same)."""
    match = _BPM_RE.search(prompt or "")
    if match and 40 <= int(match.group(1)) <= 220:
        return int(match.group(1))
    if preset.music.tempo is not None:
        return preset.music.tempo
    match = _BPM_RE.search(preset.music.style)
    if match and 40 <= int(match.group(1)) <= 220:
        return int(match.group(1))
    return round(70 + 60 * preset.music.energy)


def continuity_terms(preset: Preset, tempo: float, without: Sequence[str] = ()) -> str:
    """Tempo, key and core instruments: the words every section shares so the music joins."""
    instruments = [i for i in preset.music.instruments if not any(_names(i, x) for x in without)]
    terms = [f"{tempo:g} BPM"]
    if preset.music.key.strip():
        terms.append(f"in {preset.music.key.strip()}")
    if instruments:
        terms.append("with " + ", ".join(instruments))
    return ", ".join(terms)


def build_sections(
    notes: Sequence[Note],
    duration: float,
    preset: Preset,
    *,
    prompt: str | None = None,
    negative: str | None = None,
) -> SectionsResult:
    """Sections covering ``[0, duration)`` end to end, each with its prompt.

    ``prompt`` replaces the preset's style; ``negative`` adds to its negative prompt.
    """
    if not duration > 0:
        raise InputError(f"The input lasts {duration} s; there is nothing to score. Check the file.")
    if prompt is not None and not prompt.strip():
        raise InputError("The prompt is empty: describe the music (style, mood, instruments).")
    warnings: list[str] = []
    if preset.structure.mode == "beds":
        spans = _beds(notes, duration, preset, warnings)
    else:
        spans = _arrange(notes, duration, warnings)
        spans = _merge_short(spans, preset.structure.min_section, warnings)
    tempo = shared_tempo(preset, prompt)
    arcs, energies = _arcs_and_energy(spans, preset.music.energy)
    sections = []
    for index, (span, arc, energy) in enumerate(zip(spans, arcs, energies, strict=True)):
        section_tempo = _section_tempo(span, tempo, warnings)
        sections.append(_section(index, span, arc, energy, section_tempo, preset, prompt, negative))
    return SectionsResult(tuple(sections), tuple(warnings))


# --------------------------------------------------------------------------------------
# Arranging notes on the timeline.


def _arrange(notes: Sequence[Note], duration: float, warnings: list[str]) -> list[_Span]:
    """Notes to spans: sorted, clipped to the video, overlaps cut, gaps filled."""
    ordered = sorted(notes, key=lambda n: n.start)
    if ordered != list(notes):
        warnings.append("The notes are not in time order; sorted them by start time.")
    entries: list[tuple[_Span, float | None]] = []
    """Each span with the end its note gave, or None when it runs until the next note."""
    for note in ordered:
        where = note.source or "a note"
        if note.start >= duration - _EPSILON:
            warnings.append(
                f"{where}: starts at {format_time(note.start)}, past the end "
                f"({format_time(duration)}); dropped."
            )
            continue
        end = _explicit_end(note, duration, warnings)
        if entries and abs(note.start - entries[-1][0].start) < 1e-6:
            previous, previous_end = entries.pop()
            warnings.append(f"{where}: starts at the same time as {previous.sources[0]}; merged them.")
            previous.absorb(_span_of(note))
            both = None if previous_end is None or end is None else max(previous_end, end)
            entries.append((previous, both))
            continue
        if entries and entries[-1][1] is not None and entries[-1][1] > note.start:
            previous = entries[-1][0]
            warnings.append(
                f"{previous.sources[0]}: its range overlaps {where} at {format_time(note.start)}; "
                "cut it short there."
            )
            entries[-1] = (previous, note.start)
        entries.append((_span_of(note), end))
    return _fill_gaps(entries, duration)


def _span_of(note: Note) -> _Span:
    return _Span(note.start, note.start, [note.text] if note.text else [], list(note.modifiers),
                 [note.source or "a note"])


def _explicit_end(note: Note, duration: float, warnings: list[str]) -> float | None:
    """The end a note gave, clipped to the video; None when it runs until the next note."""
    if note.end is None or note.end <= duration:
        return note.end
    warnings.append(
        f"{note.source or 'a note'}: ends at {format_time(note.end)}, past the end "
        f"({format_time(duration)}); clipped."
    )
    return duration


def _fill_gaps(entries: list[tuple[_Span, float | None]], duration: float) -> list[_Span]:
    """Open-ended spans run to the next one; stretches no note covers get a span of their own."""
    if not entries:
        return [_Span(0.0, duration)]
    filled: list[_Span] = []
    cursor = 0.0
    for i, (span, end) in enumerate(entries):
        next_start = entries[i + 1][0].start if i + 1 < len(entries) else duration
        if span.start > cursor + _EPSILON:
            filled.append(_Span(cursor, span.start))
        else:
            span.start = cursor  # no sliver of a gap: sections must tile exactly
        span.end = next_start if end is None else min(end, next_start)
        filled.append(span)
        cursor = span.end
    if cursor < duration - _EPSILON:
        filled.append(_Span(cursor, duration))
    else:
        filled[-1].end = duration
    return filled


def _merge_short(spans: list[_Span], min_section: float, warnings: list[str]) -> list[_Span]:
    """Fold sections shorter than ``min_section`` into a neighbour, shortest first.

    A short section joins the one before it (the scene it interrupts), or the next one at
    the very start. Silent sections need no generation, so they are never too short, and
    music never merges into silence.
    """
    spans = list(spans)
    stuck: set[int] = set()
    while True:
        short = [
            s for s in spans
            if not is_silent(s) and s.duration < min_section - 1e-6 and id(s) not in stuck and len(spans) > 1
        ]
        if not short:
            return spans
        span = min(short, key=lambda s: s.duration)
        i = spans.index(span)
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(spans) and not is_silent(spans[j])]
        if not neighbours:
            stuck.add(id(span))
            warnings.append(
                f"{span.label} lasts {span.duration:.1f} s, under min_section {min_section:g} s, "
                "but sits between silent sections; kept as it is."
            )
            continue
        target = spans[neighbours[0]]
        if span.texts or span.modifiers:
            warnings.append(
                f"{span.label} lasts {span.duration:.1f} s, under min_section {min_section:g} s; "
                f"merged into the section at {format_time(target.start)}."
            )
        target.absorb(span)
        spans.pop(i)


def _beds(notes: Sequence[Note], duration: float, preset: Preset, warnings: list[str]) -> list[_Span]:
    """Podcast beds: music under the intro and the outro, silence in between.

    Notes give words to the bed they start in; notes in the silent middle are not scored.
    """
    intro, outro = preset.structure.intro, preset.structure.outro
    if intro + outro > duration:
        scale = duration / (intro + outro)
        warnings.append(
            f"The intro and outro beds ({intro:g} s + {outro:g} s) are longer than the input "
            f"({duration:.1f} s); shortened them to fit."
        )
        intro, outro = intro * scale, outro * scale
    spans = []
    if intro > 0:
        spans.append(_Span(0.0, intro, arc="opening"))
    if duration - intro - outro > 1e-6:
        spans.append(_Span(intro, duration - outro, modifiers=[("silence", "")]))
    if outro > 0:
        spans.append(_Span(duration - outro, duration, arc="ending"))
    for note in sorted(notes, key=lambda n: n.start):
        home = next((s for s in spans if s.start <= note.start < s.end and not is_silent(s)), None)
        if home is None:
            warnings.append(
                f"{note.source or 'a note'}: at {format_time(note.start)}, outside the intro/outro beds "
                "of this preset; not scored (use a 'full' preset to score the whole input)."
            )
            continue
        home.absorb(_Span(home.start, home.start, [note.text] if note.text else [],
                          list(note.modifiers), [note.source or "a note"]))
    return spans


# --------------------------------------------------------------------------------------
# Arc and energy.


def _energy_cue(span: _Span, base: float) -> float | None:
    """What the notes say about energy: an [energy: ...] modifier, else energy words."""
    for key, value in span.modifiers:
        if key == "energy":
            return energy_value(value)
    words = " ".join([*span.texts, *(v for k, v in span.modifiers if k == "mood")])
    high, low = len(_HIGH_RE.findall(words)), len(_LOW_RE.findall(words))
    if high > low:
        return min(0.95, max(base + 0.3, 0.7))
    if low > high:
        return max(0.1, min(base - 0.3, 0.3))
    return None


def _arcs_and_energy(spans: list[_Span], base: float) -> tuple[list[str], list[float]]:
    music = [i for i, s in enumerate(spans) if not is_silent(s)]
    cues = {i: _energy_cue(spans[i], base) for i in music}
    arcs = ["whole"] * len(spans)
    if len(music) > 1:
        for pos, i in enumerate(music):
            arcs[i] = "opening" if pos == 0 else "ending" if pos == len(music) - 1 else "build"
        middle = music[1:-1]
        peak = _pick_peak(spans, middle, cues)
        if peak is not None:
            arcs[peak] = "peak"
    for i, span in enumerate(spans):
        explicit = [v for k, v in span.modifiers if k == "arc"]
        if explicit or span.arc:
            arcs[i] = explicit[0] if explicit else span.arc or arcs[i]
    energies = []
    for i, span in enumerate(spans):
        if is_silent(span):
            energies.append(0.0)
            continue
        cue = cues[i]
        shaped = base + ARC_ENERGY_SHIFT[arcs[i]]
        energies.append(round(min(1.0, max(0.05, cue if cue is not None else shaped)), 2))
    return arcs, energies


def _pick_peak(spans: list[_Span], middle: list[int], cues: dict[int, float | None]) -> int | None:
    """The climax: the most energetic middle section by the notes; if the notes say nothing
    about energy, the one playing at 70% of the way through, where climaxes usually sit."""
    if not middle:
        return None
    cued = [i for i in middle if cues[i] is not None]
    if cued:
        best = max(cued, key=lambda i: (cues[i], i))
        return best if (cues[best] or 0) >= PEAK_CUE else None
    total = spans[-1].end - spans[0].start
    mark = spans[0].start + 0.7 * total
    return min(middle, key=lambda i: 0 if spans[i].start <= mark < spans[i].end else
               min(abs(spans[i].start - mark), abs(spans[i].end - mark)) + 1)


def energy_words(energy: float) -> str:
    if energy < 0.35:
        return "low energy, sparse and soft"
    if energy < 0.65:
        return "medium energy, steady groove"
    return "high energy, intense and driving"


# --------------------------------------------------------------------------------------
# Prompts.


def _section_tempo(span: _Span, tempo: float, warnings: list[str]) -> float:
    asked = [int(v) for k, v in span.modifiers if k == "tempo"]
    if asked and asked[0] != tempo and not is_silent(span):
        warnings.append(
            f"{span.label}: [tempo: {asked[0]}] differs from the shared {tempo:g} BPM; "
            "the joins into and out of this section may be audible."
        )
    return asked[0] if asked else tempo


def _section(
    index: int, span: _Span, arc: str, energy: float, tempo: float,
    preset: Preset, prompt: str | None, negative: str | None,
) -> Section:
    without = unique_words([v for k, v in span.modifiers if k == "no"])
    negatives = unique_words([*comma_phrases(preset.music.negative), *comma_phrases(negative or ""),
                              *without])
    text = "; ".join(span.texts)
    modifiers = tuple(span.modifiers)
    if is_silent(span):
        return Section(index, span.start, span.end, text, "", ", ".join(negatives), arc, 0.0, modifiers)
    style = drop_phrases(prompt if prompt is not None else preset.music.style, without)
    featured = unique_words([i for k, v in span.modifiers if k == "instruments" for i in comma_phrases(v)])
    moods = [v for k, v in span.modifiers if k == "mood"]
    colour = ", ".join([*(f"{m} mood" for m in moods), *(f"featuring {i}" for i in featured)])
    avoid_preset = [n for n in negatives if n not in without]
    parts = [
        _Part(style, trim_order=(3, 6), keep=1),
        _Part(text, trim_order=(5, 5), keep=99),
        _Part(colour, trim_order=(4, 4), keep=99),
        _Part(ARC_WORDS[arc], trim_order=(1, 1), keep=1),
        _Part(energy_words(energy), trim_order=(1, 1), keep=1),
        _Part(", ".join(f"no {w}" for w in without), trim_order=None),
        _Part(", ".join(f"no {w}" for w in avoid_preset), trim_order=(2, 2), keep=1),
        _Part(continuity_terms(preset, tempo, without), trim_order=None),
    ]
    return Section(
        index, span.start, span.end, text, _fit(parts), ", ".join(negatives), arc, energy, modifiers
    )


@dataclass
class _Part:
    text: str
    trim_order: tuple[int, int] | None
    """Lower is trimmed first, in the first and in the second pass; None is never trimmed."""
    keep: int = 0
    """Comma phrases kept in the first pass; the second pass may trim further."""


def _fit(parts: list[_Part]) -> str:
    """Join the parts, trimming the least important first until the prompt fits MAX_PROMPT.

    The first pass only trims elaboration (each part keeps its first phrases); the second
    may cut deeper, scene words before the style, so the music's genre always survives.
    """
    def joined() -> str:
        return ". ".join(p.text for p in parts if p.text)

    for pass_index in (0, 1):
        trimmable = [p for p in parts if p.trim_order is not None]
        for part in sorted(trimmable, key=lambda p: p.trim_order[pass_index] if p.trim_order else 0):
            while len(joined()) > MAX_PROMPT and part.text:
                phrases = comma_phrases(part.text)
                if pass_index == 0 and len(phrases) <= part.keep:
                    break
                part.text = _shorten(part.text)
    return joined()



def _shorten(text: str) -> str:
    """Drop the last comma phrase; a single phrase loses its last word."""
    phrases = comma_phrases(text)
    if len(phrases) > 1:
        return ", ".join(phrases[:-1])
    return " ".join(text.split()[:-1])


def _names(phrase: str, thing: str) -> bool:
    """Whether ``phrase`` mentions ``thing`` (singular or plural): 'gentle drums' names 'drum'."""
    stem = re.escape(thing.strip().lower().removesuffix("s"))
    return re.search(rf"\b{stem}s?\b", phrase.lower()) is not None


def drop_phrases(style: str, without: Sequence[str]) -> str:
    """The style without the phrases that name an excluded thing, so "no drums" is not
    contradicted by "gentle drums" a few words earlier."""
    if not without:
        return style
    kept = []
    for phrase in comma_phrases(style):
        pieces = [p for p in re.split(r"\s+and\s+", phrase) if not any(_names(p, x) for x in without)]
        if pieces:
            kept.append(" and ".join(pieces))
    return ", ".join(kept) or style


def comma_phrases(text: str) -> list[str]:
    """The comma-separated phrases of ``text``, stripped, empty ones dropped."""
    return [p.strip() for p in text.split(",") if p.strip()]


def unique_words(items: Sequence[str]) -> list[str]:
    """``items`` without repeats (case-insensitive), first spelling and order kept."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out
