"""A plan as people read it: the table ``autoscore plan`` prints, its JSON, and the cost lines.

Shown before anything is spent, so it says what will be heard (which sections' words each
request carries, and the sections policy with its reason) and what every choice costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["cost_summary", "format_plan", "plan_to_dict"]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Plain JSON-ready values for ``--json``."""
    carries = plan.carries or tuple((c.section_index,) for c in plan.chunks)
    return {
        "duration": plan.duration,
        "join": plan.join,
        "backend": plan.backend_name,
        "crossfade": plan.crossfade,
        "requests": plan.requests,
        "cost": round(plan.cost, 6),
        "crossfade_plan": {"requests": plan.requests_crossfade, "cost": round(plan.cost_crossfade, 6)},
        "outpaint_plan": {"requests": plan.requests_outpaint, "cost": round(plan.cost_outpaint, 6)},
        "sections_policy": {
            "chosen": plan.policy,
            "asked": plan.policy_asked,
            "reason": plan.policy_reason,
            "costs": {
                p.name: {"requests": p.requests, "continuations": p.continuations, "cost": round(p.cost, 6),
                         "join": p.join}
                for p in plan.policy_costs
            },
        },
        "chunks": [
            {
                "index": c.index,
                "start": c.start,
                "duration": c.duration,
                "end": round(c.end, 6),
                "overlap_before": c.overlap_before,
                "overlap_after": c.overlap_after,
                "section": c.section_index,
                "sections": list(carried),
                "prompt": c.prompt,
                "negative_prompt": c.negative_prompt,
                "seed": c.seed,
                "kind": "continuation" if plan.join == "outpaint" and not c.is_first else "music",
                "cues": [{"index": q.index, "start": q.start, "end": q.end, "energy": q.energy, "arc": q.arc}
                         for q in c.cues],
            }
            for c, carried in zip(plan.chunks, carries, strict=True)
        ],
        "spans": [list(s) for s in plan.spans],
        "sections": [
            {"index": s.index, "start": s.start, "end": s.end, "arc": s.arc, "prompt": s.prompt,
             "source": _source_kind(plan.source), "energy": round(s.energy, 3)}
            for s in plan.sections
        ],
        "cuts": [round(t, 4) for t in plan.cuts],
        "bpm": plan.tempo,
        "beat_phase": plan.downbeat,
        "cuts_on_beat": _on_beat(plan),
        "joins": [{"time": j.time, "on_cut": j.on_cut} for j in plan.joins],
    }


def _source_kind(source: str) -> str:
    """notes, chapters or cuts (a notes file's path reads as notes); none for the preset alone."""
    return source if source in ("chapters", "cuts") else "notes" if source else "none"


def _on_beat(plan: Plan) -> float | None:
    """Share of the cuts within 40 ms of a beat of the plan's grid; None without a fitted grid."""
    if plan.downbeat is None or not plan.cuts:
        return None
    from .beats import on_beat_share

    return round(on_beat_share(plan.cuts, plan.tempo, plan.downbeat), 4)


def format_plan(plan: Plan, prompt_width: int = 60) -> str:
    """The table ``autoscore plan`` and ``score --dry-run`` print."""
    rows = [f"{'#':>3}  {'start':>9}  {'length':>6}  {'overlap':>7}  {'sections':>8}  prompt"]
    carries = plan.carries or tuple((c.section_index,) for c in plan.chunks)
    for c, carried in zip(plan.chunks, carries, strict=True):
        prompt = c.prompt if len(c.prompt) <= prompt_width else c.prompt[: prompt_width - 1] + "…"
        overlap = f"{c.overlap_before:g} s" if c.overlap_before else "-"
        if plan.join == "outpaint" and not c.is_first:
            overlap = "extends"
        start, length = _clock(c.start), f"{c.duration} s"
        rows.append(f"{c.index:>3}  {start:>9}  {length:>6}  {overlap:>7}  {_indices(carried):>8}  {prompt}")
    rows.append("")
    if plan.cuts or plan.downbeat is not None:
        rows.append(picture_summary(plan))
    rows.append(cost_summary(plan))
    return "\n".join(rows)


def picture_summary(plan: Plan) -> str:
    """What the picture decided: cuts, tempo and beat phase, joins on cuts."""
    line = f"Picture: {len(plan.cuts)} cut{'s' if len(plan.cuts) != 1 else ''}"
    if plan.downbeat is not None:
        share = _on_beat(plan)
        line += f"; {plan.tempo:g} BPM, first downbeat at {plan.downbeat:.3f} s"
        if share is not None:
            line += f", {share:.0%} of cuts on a beat"
    if plan.joins:
        line += f"; {sum(j.on_cut for j in plan.joins)} of {len(plan.joins)} joins on a cut"
    return line + "."


def cost_summary(plan: Plan) -> str:
    """The chosen policy and why, then the price of every policy: shown before anything is spent."""
    backend = plan.backend_name or "chosen"
    head = (
        f"Music for {_clock(plan.duration)} with the {backend} backend, "
        f"{plan.join} joins ({plan.requests} request{'s' if plan.requests != 1 else ''})."
    )
    if plan.policy_reason:
        head += f"\nSections: {plan.policy} ({plan.policy_reason})."
    if plan.price_per_request == 0 and plan.outpaint_price == 0:
        return f"{head}\nCost: free with the {backend} backend (no paid requests)."
    firsts = len(plan.spans)
    price, more = _money(plan.price_per_request), _money(plan.outpaint_price)
    fewest = (
        f"crossfade {plan.requests_crossfade} x {price} = {_money(plan.cost_crossfade)};  "
        f"outpaint {firsts} x {price} + {plan.requests_outpaint - firsts} x {more} = "
        f"{_money(plan.cost_outpaint)}"
    )
    if not plan.policy_costs:
        return f"{head}\nCost: {fewest}"
    lines = [head, "Cost by --sections policy:"]
    for p in plan.policy_costs:
        mark = "*" if p.name == plan.policy else " "
        if p.name == "blend":
            what = f"fewest requests: {fewest}"
        elif p.continuations:
            what = (f"{p.requests - p.continuations} x {price} + {p.continuations} x {more} = "
                    f"{_money(p.cost)}")
        else:
            what = f"{p.requests} x {price} = {_money(p.cost)}"
        lines.append(f" {mark} {p.name:<9} {what}")
    return "\n".join(lines)


def _indices(indices: tuple[int, ...]) -> str:
    """``0``, ``0-3`` for a run, else a comma list."""
    if not indices:
        return "-"
    if list(indices) == list(range(indices[0], indices[-1] + 1)) and len(indices) > 1:
        return f"{indices[0]}-{indices[-1]}"
    return ",".join(str(i) for i in indices)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds, 1), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def _money(amount: float) -> str:
    return f"${amount:.4f}"
