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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import OptionError
from ..models import Section, SectionCue
from ..text.blend import Clause, blend_prompt
from ..text.notes import format_time
from ..text.preset_schema import SECTION_POLICIES
from ..text.presets import Preset
from .backends.base import MAX_DURATION

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


def bar_units(sections: Sequence[Section], tempo: float, warnings: list[str]) -> list[Unit]:
    """``sections`` (one span's, in order) with every one shorter than a bar fused with a neighbour.

    The shortest goes first, into the section after it (the one before at the very end). A
    unit's words are dated from its first section's start, so fusing forward keeps each
    note's words within a bar of its own time: fused backward, a 1 s note at 0:50 was
    announced "from the start" of the scene before it, and a run of short notes all
    collapsed into the first. A span shorter than a bar stays one unit. One warning per
    fused section, naming the longest of its unit.
    """
    bar = 240.0 / tempo
    units: list[list[Section]] = [[s] for s in sections]
    while len(units) > 1:
        short = [i for i, u in enumerate(units) if _length(u) < bar - _EPS]
        if not short:
            break
        i = min(short, key=lambda j: _length(units[j]))
        lo = i if i < len(units) - 1 else i - 1
        units[lo] = [*units[lo], *units[lo + 1]]
        del units[lo + 1]
    for unit in units:
        main = max(unit, key=lambda s: s.end - s.start)  # the first on a tie
        for s in unit:
            if s is not main and s.end - s.start < bar - _EPS:
                warnings.append(
                    f"Section {s.index} at {format_time(s.start)} lasts {s.end - s.start:.1f} s, less than "
                    f"one bar ({bar:.1f} s at {tempo:g} BPM), too short for the music to change: its words "
                    f"are heard with section {main.index}'s. Space the notes further apart to hear it on its "
                    "own."
                )
    return [tuple(u) for u in units]


def group_edges(units: Sequence[Unit], crossfade: float) -> list[float]:
    """Inner boundaries of the stretches that each get their own request(s).

    A stretch plays alone for its length minus half a crossfade at each seam, and that
    must be at least a whole crossfade (so the new music settles before it hands over),
    and the stretch at least ``MIN_SECTION_CHUNK``: a middle one needs max(6 s, 2 x
    crossfade), one at either end max(6 s, 1.5 x crossfade); without crossfades
    (outpainting) 6 s.

    The shortest short stretch goes first, into the neighbour that costs no extra request
    (a stretch past 120 s is split, and the split lands inside a section), then one that is
    too short as well (the shorter of two), else the one before (the next at the very
    start). Always folded into the one before, twenty 3 s sections became one request, and
    a short section after a 110 s one cost a request and a seam inside that section.
    """
    groups = [(u[0].start, u[-1].end) for u in units]

    def need(i: int) -> float:
        seams = (i > 0) + (i < len(groups) - 1)
        return max(MIN_SECTION_CHUNK, crossfade + crossfade / 2 * seams)

    def length(i: int) -> float:
        return groups[i][1] - groups[i][0]

    def requests(lo: int, hi: int) -> int:
        """Requests for groups ``lo..hi`` as one stretch, overlaps included."""
        span = groups[hi][1] - groups[lo][0] + crossfade / 2 * ((lo > 0) + (hi < len(groups) - 1))
        if span <= MAX_DURATION + _EPS:
            return 1
        return math.ceil((span - crossfade) / (MAX_DURATION - crossfade) - _EPS)

    while len(groups) > 1:
        short = [i for i in range(len(groups)) if length(i) < need(i) - _EPS]
        if not short:
            break
        i = min(short, key=length)
        ranked = [
            (requests(min(i, k), max(i, k)) - requests(k, k),  # extra requests
             k not in short, length(k) if k in short else 0.0, k != i - 1, k)
            for k in (i - 1, i + 1) if 0 <= k < len(groups)
        ]
        j = min(ranked)[-1]
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
    # Under --join outpaint, each (crossfades only) is refused unless the join changes too.
    crossfades = " --join crossfade" if costs.get("blend", mine).join == "outpaint" else ""
    options = " or ".join(f"{c.name}{crossfades if c.name == 'each' else ''} ({_money(c.cost)})"
                          for c in cheaper)
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

