"""One prompt for a request that carries several sections, each one's words at its own time.

Stable Audio hears a single prompt per request, and the cheapest plan makes a video of
two minutes or less in one request; a prompt naming only the section that covers most of
it dropped every other note before the generator heard it. A blended prompt keeps the
style and the continuity terms once and says what happens when, on the request's clock::

    <style>. From the start: calm opening, city at dawn, low energy; at 0:08 the host
    introduces the project, medium energy; at 0:24 quiet ending, sunset, low energy, no
    drums. no vocals, no singing, no speech. 96 BPM, in C major, with piano, soft pads, bass

* A clause is one or more sections the plan keeps together (sections shorter than a bar
  are fused with a neighbour, since the music cannot change that fast): their scene
  words, mood and featured instruments, their own tempo when a note asks for one, the
  energy in words, and their ``no X``.
* Every clause's scene words and ``no X`` are kept whatever the length. To stay within
  ``MAX_BLEND_PROMPT`` only elaboration is trimmed: the preset's "no vocals" wording, then
  the tail of the style. A request with very many notes may therefore run longer.
* The negative prompt is the union of the sections' negative prompts. A thing that every
  clause leaves out also leaves the style and the core instruments, as a section's prompt
  does; a thing only some leave out stays there, so the other sections keep it, and the
  clause's own "no X" says when it goes.

Pure functions: no ffmpeg, no disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Section
from .notes import format_time
from .presets import Preset
from .sections import comma_phrases, continuity_terms, drop_phrases, energy_words, shared_tempo, unique_words

__all__ = ["MAX_BLEND_PROMPT", "Clause", "blend_prompt"]

MAX_BLEND_PROMPT = 800
"""Characters a blended prompt aims for: twice a single section's (``MAX_PROMPT``), as it
carries several sections' words. The API states no limit; an encoder reads only so much."""


@dataclass(frozen=True)
class Clause:
    """Sections heard together from ``at`` seconds on the request's clock."""

    at: float
    sections: tuple[Section, ...]


def blend_prompt(clauses: Sequence[Clause], preset: Preset, *, style: str | None = None) -> tuple[str, str]:
    """The prompt and negative prompt of a request carrying ``clauses``, in time order.

    ``style`` replaces the preset's style, as ``--prompt`` does for every section.
    """
    if not clauses:
        raise ValueError("a blended prompt needs at least one clause")
    tempo = shared_tempo(preset, style)
    withouts = [_without(c.sections) for c in clauses]
    everywhere = [x for x in withouts[0] if all(x.lower() in map(str.lower, w) for w in withouts[1:])]
    negatives = unique_words([p for c in clauses for s in c.sections
                              for p in comma_phrases(s.negative_prompt)])
    excluded = {x.lower() for w in withouts for x in w}
    avoid = [n for n in negatives if n.lower() not in excluded]
    timed = "; ".join(
        ("From the start: " if i == 0 else f"at {format_time(round(c.at))} ") + _clause(c, tempo)
        for i, c in enumerate(clauses)
    )
    style_text = drop_phrases(style if style is not None else preset.music.style, everywhere)
    avoid_text = ", ".join(f"no {n}" for n in avoid)
    parts = [style_text, timed, avoid_text, continuity_terms(preset, tempo, everywhere)]
    for index in (2, 0):  # "no vocals" wording first, then the style's tail; each keeps one phrase
        while len(_joined(parts)) > MAX_BLEND_PROMPT and len(comma_phrases(parts[index])) > 1:
            parts[index] = ", ".join(comma_phrases(parts[index])[:-1])
    return _joined(parts), ", ".join(negatives)


def _clause(clause: Clause, tempo: float) -> str:
    """Scene words, colour, tempo, energy and ``no X`` of one clause, as comma phrases."""
    sections = clause.sections
    mods = [(k, v) for s in sections for k, v in s.modifiers]
    moods = unique_words([v for k, v in mods if k == "mood"])
    featured = unique_words([i for k, v in mods if k == "instruments" for i in comma_phrases(v)])
    tempos = [v for k, v in mods if k == "tempo" and v.strip() != f"{tempo:g}"]
    length = sum(max(0.0, s.end - s.start) for s in sections)
    energy = (sum(s.energy * max(0.0, s.end - s.start) for s in sections) / length if length > 0
              else sections[0].energy)
    words = [
        *(s.text.strip() for s in sections if s.text.strip()),
        *(f"{m} mood" for m in moods),
        *(f"featuring {i}" for i in featured),
        *(f"{t} BPM" for t in tempos[:1]),
        energy_words(energy).split(",")[0],
        *(f"no {x}" for x in _without(sections)),
    ]
    return ", ".join(words)


def _without(sections: Sequence[Section]) -> list[str]:
    return unique_words([v for s in sections for k, v in s.modifiers if k == "no"])


def _joined(parts: Sequence[str]) -> str:
    return ". ".join(p for p in parts if p)
