"""How the sections' words reach the generator: the ``--sections`` policies.

The remote model hears one prompt per request and nothing else, so where requests start
and end decides which notes are heard. Three plans keep every section's words:

* ``each``: every section of playable length gets a request of its own; the requests are
  joined by the usual crossfade, centred exactly on the section boundary, so the change of
  music *is* the change of scene. A section too short to be played alone joins a
  neighbour's request (see ``group_edges``); a section over 120 s is split evenly.
* ``outpaint``: the first section is a music request, each later one a continuation
  (``join="outpaint"``) with its own prompt that extends the piece by that section's
  length, in steps of at most ``OUTPAINT_STEP`` s. The platform keeps tempo, key and sound
  across the change. Whole seconds only, so a step falls on the boundary rounded to the
  second.
* ``blend``: the fewest requests (crossfade, or outpaint under ``--join outpaint``), each
  prompt naming every section it covers with its time on the request's clock
  (``text.blend``).

``auto`` (the default) honours the notes: ``each`` when it fits ``--max-cost`` (or there is
none), else the cheaper of ``outpaint`` and ``blend`` that fits (outpaint on a tie: it
still changes prompt at each section). A free backend gets ``blend``: the procedural
composer follows the section timeline (``Chunk.cues``) inside one request, and one
continuous piece sounds better than separate pieces crossfaded.

Under every policy, sections shorter than one bar are fused with a neighbour for the
words (with a warning): no music can change that fast.

Pure functions: no ffmpeg, no disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import OptionError
from ..models import Section, SectionCue
from ..text.blend import Clause, blend_prompt
from ..text.notes import format_time
from ..text.preset_schema import SECTION_POLICIES
from ..text.presets import Preset

__all__ = [
    "CARRY",
    "MIN_SECTION_CHUNK",
    "SECTION_POLICIES",
    "PolicyCost",
    "Unit",
    "bar_units",
    "carried_units",
    "choose_policy",
    "cues_for",
    "group_edges",
    "over_budget",
    "words_for",
]

MIN_SECTION_CHUNK = 6.0
"""Shortest stretch (s) that gets a request of its own under ``each`` or a continuation
under ``outpaint``: a couple of bars, enough to be heard as a part rather than a blip."""
CARRY = 0.5
"""A request carries a section's words when it covers more than this many seconds of it
(or more of it than any other request does): an outpaint step rounded to the whole
second does not announce the neighbour it brushes."""
_EPS = 1e-6

Unit = tuple[Section, ...]
"""Consecutive sections whose words are heard as one clause (one, unless some are sub-bar)."""


@dataclass(frozen=True)
class PolicyCost:
    """What one policy's plan asks for and costs."""

    name: str
    requests: int
    continuations: int
    """Of which outpainting continuations (priced differently)."""
    cost: float
    join: str


def bar_units(sections: Sequence[Section], tempo: int, warnings: list[str]) -> list[Unit]:
    """``sections`` (one span's, in order) with every one shorter than a bar fused with a neighbour.

    The shortest goes first, into the section before it (the scene it interrupts), or the
    next at the very start. A span shorter than a bar stays one unit.
    """
    bar = 240.0 / tempo
    units: list[list[Section]] = [[s] for s in sections]
    while len(units) > 1:
        short = [i for i, u in enumerate(units) if _length(u) < bar - _EPS]
        if not short:
            break
        i = min(short, key=lambda j: _length(units[j]))
        target = i - 1 if i > 0 else i + 1
        for s in units[i]:
            warnings.append(
                f"Section {s.index} at {format_time(s.start)} lasts {s.end - s.start:.1f} s, less than one "
                f"bar ({bar:.1f} s at {tempo} BPM), too short for the music to change: its words are "
                f"heard with section {units[target][0].index}'s. Space the notes further apart to hear it "
                "on its own."
            )
        units[min(i, target)] = [*units[min(i, target)], *units[max(i, target)]]
        del units[max(i, target)]
    return [tuple(u) for u in units]


def group_edges(units: Sequence[Unit], crossfade: float) -> list[float]:
    """Inner boundaries of the stretches that each get their own request(s).

    A stretch plays alone for its length minus half a crossfade at each seam, and that
    must be at least a whole crossfade (so the new music settles before it hands over),
    and the stretch at least ``MIN_SECTION_CHUNK``: a middle one needs max(6 s, 2 x
    crossfade), one at either end max(6 s, 1.5 x crossfade); without crossfades
    (outpainting) 6 s. Short ones merge like sub-bar sections do.
    """
    groups = [(u[0].start, u[-1].end) for u in units]
    while len(groups) > 1:
        def need(i: int) -> float:
            seams = (i > 0) + (i < len(groups) - 1)
            return max(MIN_SECTION_CHUNK, crossfade + crossfade / 2 * seams)

        short = [i for i, (a, b) in enumerate(groups) if b - a < need(i) - _EPS]
        if not short:
            break
        i = min(short, key=lambda j: groups[j][1] - groups[j][0])
        j = i - 1 if i > 0 else i + 1
        lo, hi = min(i, j), max(i, j)
        groups[lo] = (groups[lo][0], groups[hi][1])
        del groups[hi]
    return [a for a, _ in groups[1:]]


def carried_units(cores: Sequence[tuple[float, float]], units: Sequence[Unit]) -> list[list[int]]:
    """For each request's core (the stretch it is heard alone), the units whose words it carries.

    A unit is carried where it covers more than ``CARRY`` s of a core, and always by the
    request that covers most of it, so every section's words reach some request.
    """
    overlap = [[min(b, u[-1].end) - max(a, u[0].start) for u in units] for a, b in cores]
    best = {k: max(range(len(cores)), key=lambda c: overlap[c][k]) for k in range(len(units)) if cores}
    carried = []
    for c in range(len(cores)):
        mine = [k for k in range(len(units)) if overlap[c][k] > CARRY + _EPS or best[k] == c]
        if not mine and units:
            mine = [max(range(len(units)), key=lambda k: overlap[c][k])]
        carried.append(mine)
    return carried


def words_for(
    units: Sequence[Unit], start: float, preset: Preset, style: str | None, fallback: tuple[str, str]
) -> tuple[str, str]:
    """Prompt and negative prompt of a request starting at ``start`` that carries ``units``.

    One section keeps its own prompt; several are blended, each at its time on the
    request's clock; none (no sections at all) gets ``fallback``.
    """
    if not units:
        return fallback
    if len(units) == 1 and len(units[0]) == 1:
        return units[0][0].prompt, units[0][0].negative_prompt
    return blend_prompt([Clause(max(0.0, u[0].start - start), u) for u in units], preset, style=style)


def cues_for(sections: Sequence[Section], start: float, end: float) -> tuple[SectionCue, ...]:
    """The sections inside ``[start, end)``, clipped and on that stretch's clock (0 = ``start``)."""
    cues = []
    for s in sections:
        a, b = max(s.start, start), min(s.end, end)
        if b - a > _EPS:
            cues.append(SectionCue(round(a - start, 6), round(b - start, 6), s.prompt, s.negative_prompt,
                                   s.energy, s.arc, s.index))
    return tuple(cues)


def choose_policy(
    asked: str,
    join: str,
    costs: Mapping[str, PolicyCost],
    max_cost: float | None,
    free: bool,
) -> tuple[str, str]:
    """The policy to follow and why, in words for the plan."""
    if asked not in SECTION_POLICIES:
        raise OptionError(f"Unknown sections policy {asked!r}: use one of {', '.join(SECTION_POLICIES)}.")
    if asked == "each" and join == "outpaint":
        raise OptionError(
            "--sections each joins one request per section with crossfades, which --join outpaint rules out: "
            "use --sections outpaint (each section continues the music with its own prompt), or drop "
            "--join outpaint. (The policy may come from the preset's [music] sections.)"
        )
    if asked != "auto":
        return asked, "as asked (--sections or the preset's [music] sections)"
    if free:
        return "blend", "auto: a free composer follows every section within one continuous piece"

    def fits(name: str) -> bool:
        return max_cost is None or costs[name].cost <= max_cost + 1e-9

    within = "no --max-cost set" if max_cost is None else f"within --max-cost {_money(max_cost)}"
    first = "outpaint" if join == "outpaint" else "each"
    if fits(first):
        what = ("each section continues the music with its own prompt (--join outpaint)"
                if first == "outpaint" else "every section has a request of its own")
        return first, f"auto: {what}, {within}"
    ranked = sorted(("outpaint", "blend"), key=lambda n: (round(costs[n].cost, 9), n != "outpaint"))
    fitting = [n for n in ranked if fits(n)]
    chosen = (fitting or ranked)[0]
    over = f"{first} would cost {_money(costs[first].cost)}, above --max-cost {_money(max_cost or 0)}"
    if fitting:
        return chosen, f"auto: {over}; {chosen} is the cheapest plan that keeps every section's words"
    return chosen, f"auto: {over}, and no plan fits; {chosen} is the cheapest"


def over_budget(
    asked: str, chosen: str, costs: Mapping[str, PolicyCost], max_cost: float | None
) -> str | None:
    """Why the chosen plan may not run under ``max_cost`` (with the cheaper policies), or None."""
    mine = costs.get(chosen)
    if max_cost is None or mine is None or mine.cost <= max_cost + 1e-9:
        return None
    cheaper = sorted((c for n, c in costs.items() if n != chosen and c.cost < mine.cost - 1e-9),
                     key=lambda c: c.cost)
    options = " or ".join(f"{c.name} ({_money(c.cost)})" for c in cheaper)
    plural = "s" if mine.requests != 1 else ""
    if asked == "each":
        way = f"use --sections {options}, or raise --max-cost" if cheaper else "raise --max-cost"
        return (f"--sections each needs {mine.requests} request{plural} ({_money(mine.cost)}), more than "
                f"--max-cost {_money(max_cost)} allows: {way}.")
    way = (f"use --sections {options}, raise the limit or shorten the input" if cheaper
           else "raise the limit or shorten the input")
    return (f"This job needs {mine.requests} request{plural} costing {_money(mine.cost)} (sections "
            f"{chosen}), above --max-cost {_money(max_cost)}: {way}.")


def _length(unit: Sequence[Section]) -> float:
    return unit[-1].end - unit[0].start


def _money(amount: float) -> str:
    return f"${amount:.4f}"

