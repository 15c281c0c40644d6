"""Turn a length and its sections into the generation requests that cover it.

The generator gives at most 120 s per request, so longer music is made of chunks that
overlap by ``MixSettings.crossfade`` seconds and are joined by ``assemble``. The rules,
in order of priority:

1. Every request is 1..120 whole seconds (durations are rounded up; the joined track is
   trimmed to the exact length later), and together the chunks cover ``[0, duration]``.
2. The fewest requests: each request costs money (or minutes of CPU).
3. Seams fall on section boundaries wherever that costs no extra request, centred on the
   boundary so the crossfade *is* the change of scene. A chunk may span several short
   sections; a stretch too long for one chunk is split evenly.
4. No chunk is shorter than ``min(duration, MIN_CHUNK)``: a 3-second tail after a
   2-minute chunk sounds like a mistake, not an ending.

A seam is where chunk *i* hands over to chunk *i+1*: chunk *i+1* starts ``crossfade / 2``
before it and chunk *i* runs until ``crossfade / 2`` after it (or a little longer, since
durations are rounded up to whole seconds; assemble throws the surplus away).

The outpaint plan (``join="outpaint"``) is the alternative the cost line offers: one
music request for the first 120 s, then continuation requests that each extend the piece
by up to ``OUTPAINT_STEP`` seconds; they join without any seam but cost more per request.

These rules make the fewest-request plan, which the ``blend`` sections policy follows. The
``each`` and ``outpaint`` policies (``policy.py``) instead start requests on the section
boundaries, so rules 2-4 give way to rule 5:

5. Which requests carry which section's words is the policy's choice; every chunk also
   carries ``cues``, the sections it covers on its own clock, for the composer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import InputError, OptionError
from ..models import Chunk, Section
from ..text.presets import Preset
from ..text.sections import is_silent, shared_tempo
from .backends.base import MAX_DURATION
from .joins import Join, joins_of, seams_onto_cuts
from .policy import (
    SECTION_POLICIES,
    PolicyCost,
    Unit,
    bar_units,
    carried_units,
    choose_policy,
    cues_for,
    group_edges,
    words_for,
)
from .show import cost_summary, format_plan, plan_to_dict

__all__ = [
    "JOIN_MODES",
    "MIN_CHUNK",
    "OUTPAINT_STEP",
    "Plan",
    "cost_summary",
    "format_plan",
    "make_plan",
    "plan_to_dict",
]

JOIN_MODES = ("crossfade", "outpaint")
MIN_CHUNK = 20.0
"""Shortest chunk (unless the whole piece is shorter): long enough to sound intended."""
OUTPAINT_STEP = 120
"""Seconds one continuation request adds in the outpaint plan."""
MIN_CROSSFADE, MAX_CROSSFADE = 0.5, 20.0
"""The preset's range. Never 0: a chunk with no overlap is how assemble recognises an
outpaint continuation, which follows the previous chunk sample for sample."""


_EPS = 1e-6
"""Float slack when rounding seconds up, so 120.0000000001 s still fits one request."""


@dataclass(frozen=True)
class Plan:
    """Everything ``autoscore plan`` shows and the generation stage needs."""

    chunks: tuple[Chunk, ...]
    """The requests of the chosen join mode, in timeline order."""
    requests: int
    cost_crossfade: float
    cost_outpaint: float
    join: str
    duration: float
    sections: tuple[Section, ...]
    crossfade: float = 4.0
    requests_crossfade: int = 0
    requests_outpaint: int = 0
    backend_name: str = ""
    price_per_request: float = 0.0
    outpaint_price: float = 0.0
    spans: tuple[tuple[float, float], ...] = ()
    """Where music plays; silence elsewhere (podcast beds, ``[silence]`` notes)."""
    policy: str = "blend"
    """The sections policy the chunks follow: each, outpaint or blend (``policy.py``)."""
    policy_asked: str = "blend"
    """What the user (or the preset) asked for: auto, or one of the policies."""
    policy_reason: str = ""
    policy_costs: tuple[PolicyCost, ...] = ()
    """Every policy's requests and cost, for the plan's cost lines."""
    carries: tuple[tuple[int, ...], ...] = ()
    """For each chunk, the indices of the sections whose words its prompt carries."""
    warnings: tuple[str, ...] = ()
    joins: tuple[Join, ...] = ()
    """Where chunks meet, and whether each join is on a cut of the picture."""
    tempo: float = 0.0
    """The BPM every section's prompt states."""
    cuts: tuple[float, ...] = ()
    """The picture's cuts (seconds), when they were looked for."""
    downbeat: float | None = None
    """The first downbeat of the grid fitted to the cuts (seconds), or None."""
    source: str = ""
    """Where the sections come from: 'notes', 'chapters', 'cuts', or '' for the preset alone."""

    @property
    def cost(self) -> float:
        for option in self.policy_costs:
            if option.name == self.policy:
                return option.cost
        return self.cost_outpaint if self.join == "outpaint" else self.cost_crossfade


def make_plan(
    duration: float,
    sections: Sequence[Section],
    preset: Preset,
    *,
    backend_name: str,
    price_per_request: float,
    outpaint_price: float,
    join: str = "crossfade",
    policy: str = "auto",
    max_cost: float | None = None,
    prompt: str | None = None,
    cuts: Sequence[float] = (),
    tempo: float | None = None,
    downbeat: float | None = None,
    source: str = "",
) -> Plan:
    """Plan every sections policy (for the cost lines) and keep the chunks of the chosen one.

    ``policy`` is auto or a policy of ``SECTION_POLICIES``; auto weighs the costs against
    ``max_cost``. ``prompt`` is the style that replaced the preset's (``--prompt``), which
    blended prompts state once. Seams free to move go onto ``cuts`` (see ``joins``);
    ``tempo`` is the BPM the sections state, when the plan's caller chose it (to fit cuts),
    and ``downbeat`` the time of its first downbeat, which each chunk learns on its own clock.
    ``source`` says where the sections came from (notes, chapters, cuts), for the plan's readers.
    """
    crossfade = _checked(duration, preset, join, policy)
    secs = tuple(sections)
    spans = music_spans(duration, secs)
    tempo = tempo or shared_tempo(preset, prompt)
    warnings: list[str] = []
    layouts, carries = _lay_out(spans, secs, preset, prompt, cuts, tempo, crossfade, warnings)
    firsts = len(spans)

    def priced(name: str, layout: str, joins: str) -> PolicyCost:
        n = len(layouts[layout])
        more = n - firsts if joins == "outpaint" else 0
        return PolicyCost(name, n, more, (n - more) * price_per_request + more * outpaint_price, joins)

    blend_layout = "continued" if join == "outpaint" else "crossfade"
    costs = {"each": priced("each", "each", "crossfade"),
             "outpaint": priced("outpaint", "outpaint", "outpaint"),
             "blend": priced("blend", blend_layout, join)}
    free = price_per_request == 0 and outpaint_price == 0
    chosen, reason = choose_policy(policy, join, costs, max_cost, free)
    layout = {"each": "each", "outpaint": "outpaint", "blend": blend_layout}[chosen]
    as_crossfade, as_outpaint = priced("", "crossfade", "crossfade"), priced("", "continued", "outpaint")
    chosen_chunks = layouts[layout]
    if downbeat is not None:
        bar = 240.0 / tempo
        chosen_chunks = [replace(c, downbeat=round((downbeat - c.start) % bar, 6)) for c in chosen_chunks]
    return Plan(
        chunks=tuple(chosen_chunks),
        requests=len(layouts[layout]),
        cost_crossfade=as_crossfade.cost,
        cost_outpaint=as_outpaint.cost,
        join=costs[chosen].join,
        duration=float(duration),
        sections=secs,
        crossfade=crossfade,
        requests_crossfade=as_crossfade.requests,
        requests_outpaint=as_outpaint.requests,
        backend_name=backend_name,
        price_per_request=price_per_request,
        outpaint_price=outpaint_price,
        spans=spans,
        policy=chosen,
        policy_asked=policy,
        policy_reason=reason,
        policy_costs=tuple(costs.values()),
        carries=tuple(carries[layout]),
        warnings=tuple(dict.fromkeys(warnings)),
        joins=joins_of(layouts[layout], cuts),
        tempo=float(tempo),
        cuts=tuple(cuts),
        downbeat=downbeat,
        source=source,
    )


_LAYOUTS = ("each", "outpaint", "crossfade", "continued")
"""The chunk layouts planned for every span: the ``each`` and ``outpaint`` policies, and the
fewest requests joined by crossfades or by continuations (``blend`` under either join)."""


def _checked(duration: float, preset: Preset, join: str, policy: str) -> float:
    """The preset's crossfade, once the plan's inputs are known to make sense."""
    if join not in JOIN_MODES:
        raise OptionError(f"Unknown join mode {join!r}: use one of {', '.join(JOIN_MODES)}.")
    if policy not in SECTION_POLICIES:
        raise OptionError(f"Unknown sections policy {policy!r}: use one of {', '.join(SECTION_POLICIES)}.")
    if not math.isfinite(duration) or duration <= 0:
        raise InputError(
            f"The input lasts {duration!r} s, so there is nothing to score: check that the file "
            "has a video or audio stream with a duration."
        )
    crossfade = float(preset.mix.crossfade)
    if not MIN_CROSSFADE <= crossfade <= MAX_CROSSFADE:
        raise OptionError(
            f"Crossfade {crossfade:g} s is out of range: use {MIN_CROSSFADE:g} to {MAX_CROSSFADE:g} seconds."
        )
    return crossfade


def _lay_out(spans: Sequence[tuple[float, float]], sections: tuple[Section, ...], preset: Preset,
             prompt: str | None, cuts: Sequence[float], tempo: float, crossfade: float,
             warnings: list[str]) -> tuple[dict[str, list[Chunk]], dict[str, list[tuple[int, ...]]]]:
    """Every layout's chunks across the spans, numbered on, and the sections each carries.

    All four are planned, whichever is chosen, because the plan shows what each policy
    would cost. Seams free to move go onto ``cuts``; those on section edges stay.
    """
    fallback = _fallback_prompts(preset)
    layouts: dict[str, list[Chunk]] = {name: [] for name in _LAYOUTS}
    carries: dict[str, list[tuple[int, ...]]] = {name: [] for name in _LAYOUTS}
    for start, end in spans:
        local = _shift_sections(sections, start, end)
        units = bar_units(local, tempo, warnings)
        length = end - start
        local_cuts = [c - start for c in cuts if start < c < end]
        shortest = shortest_chunk(length, crossfade)
        edges = group_edges(units, crossfade)
        each_seams = seams_onto_cuts(_seams_between(length, edges, crossfade), local_cuts, length, crossfade,
                                     shortest, pinned=edges)
        fewest_seams = seams_onto_cuts(plan_seams(length, local, crossfade), local_cuts, length, crossfade,
                                       shortest, pinned=_boundaries(length, local))
        shapes = {
            "each": _crossfade_chunks(length, each_seams, crossfade),
            "outpaint": _outpaint_chunks(length, group_edges(units, 0.0)),
            "crossfade": _crossfade_chunks(length, fewest_seams, crossfade),
            "continued": _outpaint_chunks(length, []),
        }
        for name, shape in shapes.items():
            chunks, carried = _worded(shape, units, local, preset, prompt, fallback)
            layouts[name] += _placed(chunks, start, first_index=len(layouts[name]))
            carries[name] += carried
    return layouts, carries


# --- where music plays ---------------------------------------------------------------


def music_spans(duration: float, sections: Sequence[Section]) -> tuple[tuple[float, float], ...]:
    """The stretches that get music: runs of sections that are not ``[silence]``.

    A podcast-beds preset gives two (the intro and the outro bed); ``[silence]`` notes cut
    a video's music in two. Each span is planned, generated and assembled as a piece of
    its own, with its own ending and fades.
    """
    if not sections:
        return ((0.0, float(duration)),)
    spans: list[tuple[float, float]] = []
    for s in sorted(sections, key=lambda s: s.start):
        if is_silent(s) or s.end - s.start <= _EPS:
            continue
        if spans and abs(spans[-1][1] - s.start) <= _EPS:
            spans[-1] = (spans[-1][0], s.end)
        else:
            spans.append((s.start, s.end))
    return tuple((max(0.0, a), min(float(duration), b)) for a, b in spans if b - a > _EPS)


def _shift_sections(sections: tuple[Section, ...], start: float, end: float) -> tuple[Section, ...]:
    """The sections inside ``[start, end)``, on the span's own clock."""
    return tuple(
        replace(s, start=max(s.start, start) - start, end=min(s.end, end) - start)
        for s in sections
        if s.end > start + _EPS and s.start < end - _EPS
    )


def _placed(chunks: Sequence[Chunk], offset: float, first_index: int) -> list[Chunk]:
    """A span's chunks moved onto the timeline, numbered (and seeded) after the spans before."""
    return [
        replace(c, index=first_index + c.index, seed=first_index + c.index, start=round(c.start + offset, 6))
        for c in chunks
    ]


def span_chunks(plan: Plan) -> list[tuple[tuple[float, float], tuple[Chunk, ...]]]:
    """Each span with its chunks, for assembling span by span."""
    out = []
    for start, end in plan.spans:
        inside = tuple(c for c in plan.chunks if start - _EPS <= c.start < end - _EPS)
        out.append(((start, end), inside))
    return out


# --- where the seams go -------------------------------------------------------------


def min_chunks(duration: float, crossfade: float, max_len: float = MAX_DURATION) -> int:
    """Fewest chunks of at most ``max_len`` s, overlapping by ``crossfade``, that cover ``duration``."""
    if duration <= max_len + _EPS:
        return 1
    return math.ceil((duration - crossfade) / (max_len - crossfade) - _EPS)


def shortest_chunk(duration: float, crossfade: float) -> float:
    """No stub chunks: at least MIN_CHUNK, and at least both crossfades' worth."""
    return min(duration, max(MIN_CHUNK, 2 * crossfade))


def plan_seams(duration: float, sections: Sequence[Section], crossfade: float) -> list[float]:
    """Seam centres (seconds) for the fewest chunks, on as many section boundaries as possible.

    A small dynamic programme over the section boundaries: each step picks the next
    boundary to put a seam on and fills the stretch between with evenly spaced seams.
    Candidates are ranked by (chunks, -seams on boundaries, sum of squared lengths), so
    the count is never traded for prettier seams, and among equals the chunks are even.
    """
    shortest = shortest_chunk(duration, crossfade)
    points = [0.0, *_boundaries(duration, sections), float(duration)]
    last = len(points) - 1
    best: list[tuple[int, int, float] | None] = [None] * len(points)
    came_from = [0] * len(points)
    best[0] = (0, 0, 0.0)
    for j in range(1, len(points)):
        for i in range(j):
            prev = best[i]
            if prev is None:
                continue
            span = _span(points[i], points[j], i == 0, j == last, crossfade)
            k = min_chunks(span, crossfade)
            length = (span + (k - 1) * crossfade) / k
            if length < shortest - _EPS:
                continue
            score = (prev[0] + k, prev[1] - (j != last), prev[2] + k * length * length)
            current = best[j]
            if current is None or score < current:
                best[j] = score
                came_from[j] = i
    chosen = [last]
    while chosen[-1] != 0:
        chosen.append(came_from[chosen[-1]])
    chosen.reverse()
    seams: list[float] = []
    for i, j in itertools.pairwise(chosen):
        seams.extend(_even_seams(points[i], points[j], i == 0, j == last, crossfade))
        if j != last:
            seams.append(points[j])
    return seams


def _boundaries(duration: float, sections: Sequence[Section]) -> list[float]:
    inside = {round(t, 6) for s in sections for t in (s.start, s.end) if 0 < t < duration}
    return sorted(inside)


def _span(a: float, b: float, a_is_start: bool, b_is_end: bool, crossfade: float) -> float:
    """Length the chunks between seams (or ends) ``a`` and ``b`` must cover, overlaps included."""
    return (b - a) + (0 if a_is_start else crossfade / 2) + (0 if b_is_end else crossfade / 2)


def _even_seams(a: float, b: float, a_is_start: bool, b_is_end: bool, crossfade: float) -> list[float]:
    """Seams strictly between ``a`` and ``b`` that cut the stretch into equal chunks."""
    span = _span(a, b, a_is_start, b_is_end, crossfade)
    k = min_chunks(span, crossfade)
    length = (span + (k - 1) * crossfade) / k
    first = a - (0 if a_is_start else crossfade / 2)
    # Chunk m starts at first + m*(length - crossfade); its seam is crossfade/2 later.
    return [first + m * (length - crossfade) + crossfade / 2 for m in range(1, k)]


def _seams_between(duration: float, edges: Sequence[float], crossfade: float) -> list[float]:
    """A seam on every edge, and even seams inside any stretch too long for one request."""
    points = [0.0, *edges, float(duration)]
    last = len(points) - 1
    seams: list[float] = []
    for i, (a, b) in enumerate(itertools.pairwise(points)):
        seams.extend(_even_seams(a, b, i == 0, i + 1 == last, crossfade))
        if i + 1 != last:
            seams.append(b)
    return seams


# --- chunks --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prompts:
    prompt: str
    negative: str


def _fallback_prompts(preset: Preset) -> _Prompts:
    """What to ask for when no section says: the preset's own style words."""
    words = [preset.music.style]
    if preset.music.tempo:
        words.append(f"{preset.music.tempo} BPM")
    if preset.music.key:
        words.append(preset.music.key)
    return _Prompts(", ".join(w for w in words if w), preset.music.negative)


_Shape = list[tuple[Chunk, tuple[float, float]]]
"""Chunks without words yet, each with its core: the stretch where it alone is heard."""


def _crossfade_chunks(duration: float, seams: list[float], crossfade: float) -> _Shape:
    edges = [0.0, *seams, float(duration)]
    n = len(edges) - 1
    chunks = []
    for i in range(n):
        start = 0.0 if i == 0 else edges[i] - crossfade / 2
        end = float(duration) if i == n - 1 else edges[i + 1] + crossfade / 2
        chunk = _chunk(i, n, start=start, seconds=end - start, overlap_before=0.0 if i == 0 else crossfade,
                       overlap_after=0.0 if i == n - 1 else crossfade)
        chunks.append((chunk, (edges[i], edges[i + 1])))
    return chunks


def _outpaint_chunks(duration: float, edges: Sequence[float]) -> _Shape:
    """The first request, then continuation steps of (nearly) equal whole seconds.

    Each continuation picks up where the previous audio actually ends, so the steps are
    whole seconds laid end to end. ``edges`` (section boundaries, for the outpaint policy)
    start new steps, rounded to the second; within a stretch the remainder is spread
    evenly, so there is no stub at the end.
    """
    total = max(1, math.ceil(duration - _EPS))
    marks = [0, *sorted({round(e) for e in edges if 0 < round(e) < total}), total]
    lengths: list[int] = []
    for a, b in itertools.pairwise(marks):
        stretch = b - a
        if not lengths:
            lengths.append(min(stretch, MAX_DURATION))
            stretch -= lengths[0]
        steps = math.ceil(stretch / OUTPAINT_STEP)
        lengths += [stretch // steps + (1 if m < stretch % steps else 0) for m in range(steps)]
    starts = [0, *itertools.accumulate(lengths)]
    n = len(lengths)
    return [
        (_chunk(i, n, start=float(starts[i]), seconds=float(lengths[i]), overlap_before=0.0,
                overlap_after=0.0), (float(starts[i]), min(float(starts[i + 1]), duration)))
        for i in range(n)
    ]


def _chunk(index: int, count: int, *, start: float, seconds: float, overlap_before: float,
           overlap_after: float) -> Chunk:
    # Whether a chunk opens or ends the piece travels as is_first/is_last; each backend says
    # it in its own terms (the remote model in words, the composer in its arrangement).
    return Chunk(
        index=index,
        start=round(start, 6),
        duration=max(1, math.ceil(seconds - _EPS)),
        prompt="",
        negative_prompt="",
        section_index=0,
        overlap_before=overlap_before,
        overlap_after=overlap_after,
        is_first=index == 0,
        is_last=index == count - 1,
        seed=index,
    )


def _worded(
    shape: _Shape, units: list[Unit], sections: tuple[Section, ...], preset: Preset, style: str | None,
    fallback: _Prompts,
) -> tuple[list[Chunk], list[tuple[int, ...]]]:
    """The chunks with their words, main section and cues; and the sections each one carries."""
    carried = carried_units([core for _, core in shape], units)
    chunks, carries = [], []
    for (chunk, core), mine in zip(shape, carried, strict=True):
        own = [units[k] for k in mine]
        prompt, negative = words_for(own, chunk.start, preset, style, (fallback.prompt, fallback.negative))
        main = _main_section(core, sections)
        chunks.append(replace(chunk, prompt=prompt, negative_prompt=negative,
                              section_index=main.index if main else 0,
                              cues=cues_for(sections, chunk.start, chunk.start + chunk.duration)))
        carries.append(tuple(s.index for u in own for s in u))
    return chunks, carries


def _main_section(core: tuple[float, float], sections: tuple[Section, ...]) -> Section | None:
    """The section that covers most of ``core`` (the first on a tie; else the nearest one)."""
    best, best_overlap = None, -math.inf
    for s in sections:
        overlap = min(core[1], s.end) - max(core[0], s.start)
        if overlap > best_overlap + _EPS:
            best, best_overlap = s, overlap
    return best
