"""Cost: requests and dollars per minute of video, for every built-in preset, from the real planner.

No generation happens: ``build_sections`` and ``make_plan`` run exactly as ``autoscore plan``
would for an input of each length with no notes, priced at the WaveSpeed backend's rates.
Both join modes are shown: crossfaded chunks (the default) and the outpaint alternative.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import Table

__all__ = ["CostRow", "cost_table", "run_cost"]


@dataclass(frozen=True)
class CostRow:
    preset: str
    mode: str
    """'full' or 'beds' (podcast intro/outro only)."""
    crossfade: float
    minutes: float
    requests_crossfade: int
    cost_crossfade: float
    requests_outpaint: int
    cost_outpaint: float
    requests_over_silence: int = 0
    """Crossfade requests lying wholly inside sections the preset leaves silent (paid, never heard)."""

    @property
    def per_minute_crossfade(self) -> float:
        return self.cost_crossfade / self.minutes

    @property
    def per_minute_outpaint(self) -> float:
        return self.cost_outpaint / self.minutes


def run_cost(minutes: list[float]) -> list[CostRow]:
    from autoscore.music.backends.wavespeed import WaveSpeedBackend
    from autoscore.music.plan import make_plan
    from autoscore.text.presets import list_presets, load_preset
    from autoscore.text.sections import build_sections, is_silent

    rows = []
    for info in list_presets():
        if info.origin != "built-in":
            continue
        preset = load_preset(info.path)
        for m in minutes:
            seconds = m * 60
            sections = build_sections([], seconds, preset).sections
            plan = make_plan(seconds, sections, preset, backend_name="wavespeed",
                             price_per_request=WaveSpeedBackend.price_per_request,
                             outpaint_price=WaveSpeedBackend.outpaint_price)
            silent = sum(1 for c in plan.chunks if is_silent(sections[c.section_index])
                         and all(is_silent(s) for s in sections if s.start < c.end and s.end > c.start))
            rows.append(CostRow(info.name, preset.structure.mode, preset.mix.crossfade, m,
                                plan.requests_crossfade, plan.cost_crossfade,
                                plan.requests_outpaint, plan.cost_outpaint, silent))
    return rows


def cost_table(rows: list[CostRow]) -> Table:
    from autoscore.music.backends.wavespeed import WaveSpeedBackend

    minutes = sorted({r.minutes for r in rows})
    spans = "/".join(f"{m:g}" for m in minutes)
    t = Table(
        f"Cost per preset for {spans} minutes of video (WaveSpeed prices)",
        ["preset", "mode", "crossfade s", f"requests ({spans} min)", "$ per video minute",
         f"outpaint requests ({spans} min)", "outpaint $ per video minute",
         f"requests over silence ({spans})"],
    )
    by_preset: dict[str, list[CostRow]] = {}
    for r in rows:
        by_preset.setdefault(r.preset, []).append(r)
    for name, group in by_preset.items():
        group.sort(key=lambda r: r.minutes)
        first = group[0]
        t.add(name, first.mode, f"{first.crossfade:g}",
              " / ".join(str(r.requests_crossfade) for r in group),
              " / ".join(f"{r.per_minute_crossfade:.4f}" for r in group),
              " / ".join(str(r.requests_outpaint) for r in group),
              " / ".join(f"{r.per_minute_outpaint:.4f}" for r in group),
              " / ".join(str(r.requests_over_silence) for r in group))
    t.notes.append(f"Prices: ${WaveSpeedBackend.price_per_request} per music request, "
                   f"${WaveSpeedBackend.outpaint_price} per outpaint continuation; "
                   "cached chunks cost nothing. The procedural backend is free.")
    wasted = [r for r in rows if r.requests_over_silence]
    if wasted:
        worst = max(wasted, key=lambda r: r.requests_over_silence)
        t.notes.append(f"Requests over silence: {len(wasted)} plan(s) pay for chunks inside sections "
                       f"the preset keeps silent (worst: {worst.preset} at {worst.minutes:g} min, "
                       f"{worst.requests_over_silence} of {worst.requests_crossfade}).")
    return t
