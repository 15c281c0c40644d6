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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InputError, OptionError
from ..models import Chunk, Section
from ..text.presets import Preset
from ..text.sections import is_silent
from .backends.base import MAX_DURATION

__all__ = [
    "JOIN_MODES",
    "MIN_CHUNK",
    "OUTPAINT_STEP",
    "Plan",
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

    @property
    def cost(self) -> float:
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
) -> Plan:
    """Plan both join modes (for the cost line) and keep the chunks of ``join``."""
    if join not in JOIN_MODES:
        raise OptionError(f"Unknown join mode {join!r}: use one of {', '.join(JOIN_MODES)}.")
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
    secs = tuple(sections)
    fallback = _fallback_prompts(preset)
    spans = music_spans(duration, secs)
    cf_chunks: list[Chunk] = []
    op_chunks: list[Chunk] = []
    for start, end in spans:
        local = _shift_sections(secs, start, end)
        seams = plan_seams(end - start, local, crossfade)
        cf = _crossfade_chunks(end - start, seams, crossfade, local, fallback)
        op = _outpaint_chunks(end - start, local, fallback)
        cf_chunks += _placed(cf, start, first_index=len(cf_chunks))
        op_chunks += _placed(op, start, first_index=len(op_chunks))
    n_cf, n_op = len(cf_chunks), len(op_chunks)
    return Plan(
        chunks=tuple(op_chunks if join == "outpaint" else cf_chunks),
        requests=n_op if join == "outpaint" else n_cf,
        cost_crossfade=n_cf * price_per_request,
        cost_outpaint=len(spans) * price_per_request + (n_op - len(spans)) * outpaint_price,
        join=join,
        duration=float(duration),
        sections=secs,
        crossfade=crossfade,
        requests_crossfade=n_cf,
        requests_outpaint=n_op,
        backend_name=backend_name,
        price_per_request=price_per_request,
        outpaint_price=outpaint_price,
        spans=spans,
    )


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


def _crossfade_chunks(
    duration: float, seams: list[float], crossfade: float, sections: tuple[Section, ...], fallback: _Prompts
) -> tuple[Chunk, ...]:
    edges = [0.0, *seams, float(duration)]
    n = len(edges) - 1
    chunks = []
    for i in range(n):
        start = 0.0 if i == 0 else edges[i] - crossfade / 2
        end = float(duration) if i == n - 1 else edges[i + 1] + crossfade / 2
        chunks.append(
            _chunk(
                i,
                n,
                start=start,
                seconds=end - start,
                core=(edges[i], edges[i + 1]),
                overlap_before=0.0 if i == 0 else crossfade,
                overlap_after=0.0 if i == n - 1 else crossfade,
                sections=sections,
                fallback=fallback,
            )
        )
    return tuple(chunks)


def _outpaint_chunks(duration: float, sections: tuple[Section, ...], fallback: _Prompts) -> tuple[Chunk, ...]:
    """The first request, then continuation steps of (nearly) equal whole seconds.

    Each continuation picks up where the previous audio actually ends, so the steps are
    whole seconds laid end to end; spreading the remainder evenly avoids a stub at the end.
    """
    first = min(math.ceil(duration - _EPS), MAX_DURATION)
    rest = max(0, math.ceil(duration - _EPS) - first)
    steps = math.ceil(rest / OUTPAINT_STEP)
    lengths = [first] + [rest // steps + (1 if m < rest % steps else 0) for m in range(steps)]
    starts = [0, *itertools.accumulate(lengths)]
    n = len(lengths)
    return tuple(
        _chunk(
            i,
            n,
            start=float(starts[i]),
            seconds=float(lengths[i]),
            core=(float(starts[i]), min(float(starts[i + 1]), duration)),
            overlap_before=0.0,
            overlap_after=0.0,
            sections=sections,
            fallback=fallback,
        )
        for i in range(n)
    )


def _chunk(
    index: int,
    count: int,
    *,
    start: float,
    seconds: float,
    core: tuple[float, float],
    overlap_before: float,
    overlap_after: float,
    sections: tuple[Section, ...],
    fallback: _Prompts,
) -> Chunk:
    is_first, is_last = index == 0, index == count - 1
    section = _main_section(core, sections)
    base = _Prompts(section.prompt, section.negative_prompt) if section else fallback
    # Whether a chunk opens or ends the piece travels as is_first/is_last; each backend says
    # it in its own terms (the remote model in words, the composer in its arrangement).
    return Chunk(
        index=index,
        start=round(start, 6),
        duration=max(1, math.ceil(seconds - _EPS)),
        prompt=base.prompt,
        negative_prompt=base.negative,
        section_index=section.index if section else 0,
        overlap_before=overlap_before,
        overlap_after=overlap_after,
        is_first=is_first,
        is_last=is_last,
        seed=index,
    )


def _main_section(core: tuple[float, float], sections: tuple[Section, ...]) -> Section | None:
    """The section that covers most of ``core`` (the first on a tie; else the nearest one)."""
    best, best_overlap = None, -math.inf
    for s in sections:
        overlap = min(core[1], s.end) - max(core[0], s.start)
        if overlap > best_overlap + _EPS:
            best, best_overlap = s, overlap
    return best


# --- showing a plan -----------------------------------------------------------------


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Plain JSON-ready values for ``--json``."""
    return {
        "duration": plan.duration,
        "join": plan.join,
        "backend": plan.backend_name,
        "crossfade": plan.crossfade,
        "requests": plan.requests,
        "cost": round(plan.cost, 6),
        "crossfade_plan": {"requests": plan.requests_crossfade, "cost": round(plan.cost_crossfade, 6)},
        "outpaint_plan": {"requests": plan.requests_outpaint, "cost": round(plan.cost_outpaint, 6)},
        "chunks": [
            {
                "index": c.index,
                "start": c.start,
                "duration": c.duration,
                "end": round(c.end, 6),
                "overlap_before": c.overlap_before,
                "overlap_after": c.overlap_after,
                "section": c.section_index,
                "prompt": c.prompt,
                "negative_prompt": c.negative_prompt,
                "seed": c.seed,
                "kind": "continuation" if plan.join == "outpaint" and not c.is_first else "music",
            }
            for c in plan.chunks
        ],
        "spans": [list(s) for s in plan.spans],
        "sections": [
            {"index": s.index, "start": s.start, "end": s.end, "arc": s.arc, "prompt": s.prompt}
            for s in plan.sections
        ],
    }


def format_plan(plan: Plan, prompt_width: int = 60) -> str:
    """The table ``autoscore plan`` and ``score --dry-run`` print."""
    rows = [f"{'#':>3}  {'start':>9}  {'length':>6}  {'overlap':>7}  {'sect':>4}  prompt"]
    for c in plan.chunks:
        prompt = c.prompt if len(c.prompt) <= prompt_width else c.prompt[: prompt_width - 1] + "…"
        overlap = f"{c.overlap_before:g} s" if c.overlap_before else "-"
        if plan.join == "outpaint" and not c.is_first:
            overlap = "extends"
        start, length = _clock(c.start), f"{c.duration} s"
        rows.append(f"{c.index:>3}  {start:>9}  {length:>6}  {overlap:>7}  {c.section_index:>4}  {prompt}")
    rows.append("")
    rows.append(cost_summary(plan))
    return "\n".join(rows)


def cost_summary(plan: Plan) -> str:
    """Requests and price of both join modes: shown before anything is spent."""
    backend = plan.backend_name or "chosen"
    head = (
        f"Music for {_clock(plan.duration)} with the {backend} backend, "
        f"{plan.join} joins ({plan.requests} request{'s' if plan.requests != 1 else ''})."
    )
    if plan.price_per_request == 0 and plan.outpaint_price == 0:
        return f"{head}\nCost: free with the {backend} backend (no paid requests)."
    firsts = len(plan.spans)
    return (
        f"{head}\nCost: crossfade {plan.requests_crossfade} x {_money(plan.price_per_request)} = "
        f"{_money(plan.cost_crossfade)};  outpaint {firsts} x {_money(plan.price_per_request)} + "
        f"{plan.requests_outpaint - firsts} x {_money(plan.outpaint_price)} = {_money(plan.cost_outpaint)}"
    )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds, 1), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def _money(amount: float) -> str:
    return f"${amount:.4f}"
