"""The --sections policies: which request carries which section's words, where the joins go,
what each costs, how auto chooses, and the cues every chunk carries on its own clock."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscore.errors import CostLimitError, OptionError
from autoscore.models import Section
from autoscore.music.plan import Plan, format_plan, make_plan, plan_to_dict
from autoscore.music.policy import MIN_SECTION_CHUNK
from autoscore.options import ScoreOptions
from autoscore.pipeline import check_cost
from autoscore.text.blend import MAX_BLEND_PROMPT, Clause, blend_prompt
from autoscore.text.notes import parse_notes_text
from autoscore.text.presets import MixSettings, Preset
from autoscore.text.sections import build_sections

PRICE, OUTPAINT_PRICE = 0.0217, 0.0446
SAMPLE_NOTES = """\
0:00 calm opening, city at dawn [energy: low]
0:08 the host introduces the project
0:16 montage of the build, things speed up [energy: high]
0:24 quiet ending, sunset [no drums]
"""


def preset(crossfade: float = 4.0) -> Preset:
    return replace(Preset(), mix=MixSettings(crossfade=crossfade))


def sections_at(duration: float, cuts: list[float]) -> list[Section]:
    edges = [0.0, *cuts, duration]
    return [Section(i, a, b, f"scene {i}", f"prompt of section {i}", f"avoid {i}", "build")
            for i, (a, b) in enumerate(itertools.pairwise(edges))]


def plan(duration: float, cuts: list[float] | None = None, policy: str = "auto", *, crossfade: float = 4.0,
         join: str = "crossfade", max_cost: float | None = None, price: float = PRICE,
         outpaint_price: float = OUTPAINT_PRICE, sections: list[Section] | None = None) -> Plan:
    return make_plan(duration, sections if sections is not None else sections_at(duration, cuts or []),
                     preset(crossfade), backend_name="wavespeed", price_per_request=price,
                     outpaint_price=outpaint_price, join=join, policy=policy, max_cost=max_cost)


def sample_sections() -> tuple[Section, ...]:
    return build_sections(list(parse_notes_text(SAMPLE_NOTES).notes), 30.0, Preset()).sections


def seams(p: Plan) -> list[float]:
    return [c.start + p.crossfade / 2 for c in p.chunks[1:]]


def words_reach_the_generator(p: Plan) -> None:
    """Every section is listed by some request, and its scene words are in every prompt that lists it."""
    for c, carried in zip(p.chunks, p.carries, strict=True):
        for index in carried:
            section = p.sections[index]
            assert section.text in c.prompt or c.prompt == section.prompt
    assert sorted({i for carried in p.carries for i in carried}) == [s.index for s in p.sections]


def covers(p: Plan) -> None:
    assert all(1 <= c.duration <= 120 for c in p.chunks)
    assert p.chunks[0].start == 0 and p.chunks[-1].end >= p.duration - 1e-6
    for a, b in itertools.pairwise(p.chunks):
        assert b.start <= a.end - b.overlap_before + 1e-6, "no gap between requests"


# --- each -------------------------------------------------------------------------


def test_each_gives_every_section_its_request_and_joins_on_the_boundaries() -> None:
    p = make_plan(30, sample_sections(), Preset(), backend_name="wavespeed", price_per_request=PRICE,
                  outpaint_price=OUTPAINT_PRICE, policy="each")
    assert (p.policy, p.join, p.requests) == ("each", "crossfade", 4)
    assert seams(p) == pytest.approx([8, 16, 24]), "the crossfade is centred on each boundary"
    assert [c.duration for c in p.chunks] == [10, 12, 12, 8]
    assert p.carries == ((0,), (1,), (2,), (3,))
    for c, s in zip(p.chunks, p.sections, strict=True):
        assert (c.prompt, c.negative_prompt) == (s.prompt, s.negative_prompt)
    assert "no drums" in p.chunks[3].prompt and "drums" in p.chunks[3].negative_prompt
    assert p.cost == pytest.approx(4 * PRICE)
    covers(p)


def test_each_cues_are_on_the_chunks_own_clock() -> None:
    p = plan(30, [8, 16, 24], "each")
    second = p.chunks[1]  # starts at 6 s: the last 2 s of section 0 under the crossfade
    assert [(q.index, q.start, q.end) for q in second.cues] == [(0, 0, 2), (1, 2, 10), (2, 10, 12)]
    assert second.cues[1].prompt == "prompt of section 1" and second.cues[1].arc == "build"
    last = p.chunks[-1]  # 22 s to the end (30 s): 8 s of which 6 are section 3
    assert [(q.index, q.start, q.end) for q in last.cues] == [(2, 0, 2), (3, 2, 8)]


def test_sections_too_short_for_a_request_share_a_neighbours() -> None:
    # 3 s at 20-23 s is playable by nobody alone (a middle section needs 2 x 4 s crossfade).
    p = plan(60, [20, 23, 40], "each")
    assert seams(p) == pytest.approx([23, 40])
    assert p.carries == ((0, 1), (2,), (3,))
    first = p.chunks[0].prompt
    assert "From the start: scene 0" in first and "at 0:20 scene 1" in first
    assert p.chunks[1].prompt == "prompt of section 2"
    assert not p.warnings, "a playable-length merge is the policy's business, not a warning"
    words_reach_the_generator(p)


@pytest.mark.parametrize(("crossfade", "cuts", "requests"), [
    (4.0, [6.0, 24.0], 3),    # ends need max(6, 1.5 x 4) = 6 s
    (4.0, [5.0, 24.0], 2),    # 5 s at the start joins the next section
    (6.0, [8.0, 18.0], 2),    # a 10 s middle section needs 2 x 6 = 12 s
    (6.0, [12.0, 24.0], 2),   # a 6 s ending needs 1.5 x 6 = 9 s
    (6.0, [9.0, 21.0], 3),
])
def test_the_playable_length_rule(crossfade: float, cuts: list[float], requests: int) -> None:
    p = plan(30, cuts, "each", crossfade=crossfade)
    assert p.requests == requests
    assert all(any(abs(s - cut) < 1e-6 for cut in cuts) for s in seams(p)), "seams only on boundaries"
    assert min(c.duration for c in p.chunks) >= MIN_SECTION_CHUNK


def test_a_long_piece_with_a_section_over_two_minutes() -> None:
    p = plan(300, [60, 130], "each")
    assert seams(p)[:2] == pytest.approx([60, 130])
    assert seams(p)[2] == pytest.approx(130 + (170 + 2) / 2 - 2, abs=1e-6), "170 s split evenly"
    assert p.carries == ((0,), (1,), (2,), (2,))
    assert p.requests == 4 and p.cost == pytest.approx(4 * PRICE)
    covers(p)
    o = plan(300, [60, 130], "outpaint")
    assert [(c.start, c.duration) for c in o.chunks] == [(0, 60), (60, 70), (130, 85), (215, 85)]
    assert o.join == "outpaint" and o.carries == ((0,), (1,), (2,), (2,))
    assert o.cost == pytest.approx(PRICE + 3 * OUTPAINT_PRICE)
    b = plan(300, [60, 130], "blend")
    assert b.requests == 3 and b.cost == pytest.approx(3 * PRICE)
    for p_ in (p, o, b):
        words_reach_the_generator(p_)


def test_a_short_section_joins_the_side_that_costs_no_extra_request() -> None:
    # 10.6 s between 105.6 s and 52.8 s is too short to play alone with 8 s crossfades.
    # Joined to the long first section it would need 120.2 s: a split inside that section.
    p = plan(169, [105.625, 116.188], "each", crossfade=8.0)
    assert seams(p) == pytest.approx([105.625]) and p.carries == ((0,), (1, 2))
    assert p.requests == 2
    covers(p)


def test_a_single_section_is_the_same_plan_under_every_policy() -> None:
    shapes = {policy: [(c.start, c.duration, c.prompt) for c in plan(250, [], policy).chunks]
              for policy in ("each", "blend")}
    assert shapes["each"] == shapes["blend"]
    assert len(shapes["each"]) == 3 and all(prompt == "prompt of section 0" for *_, prompt in shapes["each"])
    assert [c.duration for c in plan(250, [], "outpaint").chunks] == [120, 65, 65]


def test_without_any_sections_the_preset_speaks_and_there_are_no_cues() -> None:
    p = make_plan(200, [], Preset(), backend_name="wavespeed", price_per_request=PRICE,
                  outpaint_price=OUTPAINT_PRICE)
    assert p.policy == "each" and p.requests == 2
    assert all(c.prompt.startswith(Preset().music.style) and c.cues == () for c in p.chunks)
    assert p.carries == ((), ())


# --- outpaint ---------------------------------------------------------------------


def test_outpaint_continues_at_every_section_with_its_own_prompt() -> None:
    p = make_plan(30, sample_sections(), Preset(), backend_name="wavespeed", price_per_request=PRICE,
                  outpaint_price=OUTPAINT_PRICE, policy="outpaint")
    assert [(c.start, c.duration) for c in p.chunks] == [(0, 8), (8, 8), (16, 8), (24, 6)]
    assert p.join == "outpaint" and p.carries == ((0,), (1,), (2,), (3,))
    assert [c.prompt for c in p.chunks] == [s.prompt for s in p.sections]
    assert p.cost == pytest.approx(PRICE + 3 * OUTPAINT_PRICE)
    # A continuation's clock starts at the join: its section runs from 0.
    assert [(q.index, q.start, q.end) for q in p.chunks[2].cues] == [(2, 0, 8)]


def test_outpaint_steps_fall_on_boundaries_rounded_to_the_second() -> None:
    p = plan(40.7, [8.4, 20.6], "outpaint")
    assert [c.start for c in p.chunks] == [0, 8, 21]
    assert p.carries == ((0,), (1,), (2,)), "a step brushing 0.4 s of a neighbour does not announce it"
    assert [(q.index, q.start, q.end) for q in p.chunks[1].cues] == [(0, 0, 0.4), (1, 0.4, 12.6),
                                                                      (2, 12.6, 13)]


# --- blend ------------------------------------------------------------------------


def test_blend_names_every_section_at_its_time_in_one_request() -> None:
    p = make_plan(30, sample_sections(), Preset(), backend_name="wavespeed", price_per_request=PRICE,
                  outpaint_price=OUTPAINT_PRICE, policy="blend")
    (chunk,) = p.chunks
    assert p.carries == ((0, 1, 2, 3),)
    prompt = chunk.prompt
    assert prompt.startswith(Preset().music.style.split(",")[0])
    order = [prompt.index(w) for w in ("From the start: calm opening, city at dawn, low energy",
                                       "at 0:08 the host introduces the project",
                                       "at 0:16 montage of the build, things speed up, high energy",
                                       "at 0:24 quiet ending, sunset, low energy, no drums")]
    assert order == sorted(order)
    assert prompt.count("96 BPM") == 1 and prompt.count("instrumental") == 1, "style and continuity once"
    assert set(chunk.negative_prompt.split(", ")) == {"vocals", "singing", "speech", "drums"}
    cues = [(q.index, q.start, q.end) for q in chunk.cues]
    assert cues == [(0, 0, 8), (1, 8, 16), (2, 16, 24), (3, 24, 30)]
    assert [q.energy for q in chunk.cues] == [s.energy for s in p.sections]


def test_blend_under_outpaint_joins_is_the_fewest_continuations() -> None:
    p = plan(300, [100], "blend", join="outpaint")
    assert p.join == "outpaint" and p.requests == 3
    assert p.carries == ((0, 1), (1,), (1,))
    assert "at 1:40 scene 1" in p.chunks[0].prompt


def test_a_blended_prompt_keeps_every_scene_and_no_x_when_it_must_trim() -> None:
    sections = [Section(i, i * 10.0, i * 10.0 + 10, f"scene number {i} with a fairly long description",
                        "", "vocals, singing, speech" + (", drums" if i == 5 else ""), "build",
                        modifiers=(("no", "drums"),) if i == 5 else ())
                for i in range(12)]
    prompt, negative = blend_prompt([Clause(s.start, (s,)) for s in sections], Preset())
    for s in sections:
        assert s.text in prompt
    assert "at 0:50 scene number 5 with a fairly long description, medium energy, no drums" in prompt
    assert "no vocals" in prompt and "96 BPM, in C major" in prompt
    assert negative == "vocals, singing, speech, drums"
    assert len(prompt) > MAX_BLEND_PROMPT, "scene words are never cut, even past the target"
    short, _ = blend_prompt([Clause(0, (sections[0],)), Clause(10, (sections[1],))], Preset())
    assert len(short) <= MAX_BLEND_PROMPT and Preset().music.style in short


def test_what_every_section_leaves_out_leaves_the_style_too() -> None:
    both = [Section(i, i * 10.0, i * 10.0 + 10, f"scene {i}", "", "drums", "build",
                    modifiers=(("no", "drums"),))
            for i in range(2)]
    prompt, _ = blend_prompt([Clause(s.start, (s,)) for s in both], Preset())
    assert "gentle drums" not in prompt and "with piano, soft pads, bass." not in prompt[-5:]
    assert not prompt.rstrip().endswith("drums")
    one = [both[0], replace(both[1], modifiers=())]
    prompt, _ = blend_prompt([Clause(s.start, (s,)) for s in one], Preset())
    assert "gentle drums" in prompt and prompt.endswith("bass, drums"), "the other section keeps its drums"


# --- auto, costs and the usage errors ---------------------------------------------


def test_auto_is_each_when_there_is_no_limit_or_it_fits() -> None:
    assert plan(30, [8, 16, 24]).policy == "each"
    p = plan(30, [8, 16, 24], max_cost=0.09)
    assert p.policy == "each" and "within --max-cost $0.0900" in p.policy_reason
    costs = {c.name: c for c in p.policy_costs}
    assert (costs["each"].requests, costs["outpaint"].continuations, costs["blend"].requests) == (4, 3, 1)
    assert costs["outpaint"].cost == pytest.approx(PRICE + 3 * OUTPAINT_PRICE)


def test_auto_above_the_limit_takes_the_cheapest_plan_that_keeps_every_word() -> None:
    p = plan(30, [8, 16, 24], max_cost=0.05)
    assert p.policy == "blend" and p.requests == 1
    assert "each would cost $0.0868, above --max-cost $0.0500" in p.policy_reason
    check_cost(p, 0.05)  # fits: nothing raised
    words_reach_the_generator(p)
    # Continuations as cheap as blend's one request: a tie goes to outpaint.
    tie = plan(30, [8, 16, 24], max_cost=0.05, outpaint_price=0.0)
    assert tie.policy == "outpaint" and tie.requests == 4 and tie.cost == pytest.approx(PRICE)


def test_auto_with_outpaint_joins_continues_section_by_section_when_it_can() -> None:
    assert plan(30, [8, 16, 24], join="outpaint").policy == "outpaint"
    p = plan(30, [8, 16, 24], join="outpaint", max_cost=0.05)
    assert (p.policy, p.join, p.requests) == ("blend", "outpaint", 1)


def test_auto_on_a_free_backend_is_one_blended_piece() -> None:
    p = plan(30, [8, 16, 24], price=0.0, outpaint_price=0.0)
    assert p.policy == "blend" and p.requests == 1 and len(p.chunks[0].cues) == 4
    assert "free" in p.policy_reason
    assert "Sections: blend (auto: a free composer" in format_plan(p)


def test_each_above_max_cost_is_a_usage_error_naming_the_cheaper_policies() -> None:
    p = plan(30, [8, 16, 24], "each", max_cost=0.05)
    assert p.policy == "each", "an explicit choice is kept, and refused by the cost check"
    with pytest.raises(CostLimitError) as err:
        check_cost(p, 0.05)
    assert err.value.exit_code == 2
    assert str(err.value) == ("--sections each needs 4 requests ($0.0868), more than --max-cost $0.0500 "
                              "allows: use --sections blend ($0.0217), or raise --max-cost.")
    cheap = plan(30, [8, 16, 24], "each", max_cost=0.05, outpaint_price=0.01)
    with pytest.raises(CostLimitError, match=r"use --sections blend \(\$0\.0217\) or outpaint \(\$0\.0517\)"):
        check_cost(cheap, 0.05)
    with pytest.raises(CostLimitError, match=r"above --max-cost .* use --sections blend"):
        check_cost(plan(30, [8, 16, 24], "outpaint", max_cost=0.05), 0.05)
    # Under --join outpaint, each is cheaper but needs crossfades: the advice must say so.
    joined = plan(300, [100, 200], join="outpaint", max_cost=0.10)
    with pytest.raises(CostLimitError) as err:
        check_cost(joined, 0.10)
    assert "use --sections each --join crossfade ($0.0651)" in str(err.value)


def test_the_option_is_checked_where_it_is_made() -> None:
    assert ScoreOptions(sections="outpaint").sections == "outpaint" and ScoreOptions().sections is None
    with pytest.raises(OptionError, match="--sections is 'every'; use one of auto, each, outpaint, blend"):
        ScoreOptions(sections="every")


def test_each_with_outpaint_joins_is_a_usage_error() -> None:
    with pytest.raises(OptionError, match="use --sections outpaint"):
        plan(30, [8, 16, 24], "each", join="outpaint")
    with pytest.raises(OptionError, match="Unknown sections policy 'all'"):
        plan(30, [8], "all")


# --- sections shorter than a bar ----------------------------------------------------


def test_sections_shorter_than_a_bar_are_merged_with_a_warning() -> None:
    # At 96 BPM a bar is 2.5 s: the notes at 20 and 21 s come too fast for the music to follow.
    p = plan(40, [20, 21, 22], "blend")
    assert len(p.warnings) == 2 and all("less than one bar (2.5 s at 96 BPM)" in w for w in p.warnings)
    assert "scene 1, scene 2" in p.chunks[0].prompt or "scene 2, scene 3" in p.chunks[0].prompt
    words_reach_the_generator(p)
    assert len(p.chunks[0].cues) == 4, "the cues stay truthful: the composer snaps to its bars"


def test_notes_all_shorter_than_a_bar_make_one_request_of_at_least_a_second() -> None:
    for policy in ("each", "outpaint", "blend"):
        p = plan(0.6, [0.2, 0.4], policy)
        assert [c.duration for c in p.chunks] == [1]
        assert p.carries == ((0, 1, 2),) and len(p.warnings) == 2  # the notes fused, and the user told
        q = plan(2.4, [0.5, 1.0, 1.5], policy)
        assert q.requests == 1 and q.chunks[0].duration == 3
        words_reach_the_generator(q)


def test_a_short_section_is_heard_from_its_own_time_not_its_neighbours() -> None:
    # A 1 s note at 0:50 between two long scenes: its words must not be announced from 0:00.
    p = plan(100, [50, 51], "blend")
    prompt = p.chunks[0].prompt
    assert "From the start: scene 0, medium energy; at 0:50 scene 1, scene 2" in prompt
    assert p.warnings == ("Section 1 at 0:50 lasts 1.0 s, less than one bar (2.5 s at 96 BPM), too short for "
                          "the music to change: its words are heard with section 2's. Space the notes "
                          "further apart to hear it on its own.",)


def test_a_run_of_short_notes_pairs_up_instead_of_collapsing_into_the_first() -> None:
    # 40 notes 1.5 s apart (a bar is 2.5 s): pairs of 3 s can each change the music.
    p = plan(60, [1.5 * i for i in range(1, 40)], "blend")
    assert len(p.warnings) == 20
    prompt = p.chunks[0].prompt
    for k in range(20):  # every pair is named at its own time (rounded to the second)
        at = "From the start: " if k == 0 else f"at 0:{round(3.0 * k):02d} "
        assert f"{at}scene {2 * k}, scene {2 * k + 1}," in prompt, k
    words_reach_the_generator(p)


def test_each_pairs_short_sections_up_rather_than_folding_them_all_into_one_request() -> None:
    # Twenty 3 s sections: none plays alone (8 s in the middle with 4 s crossfades), but
    # neighbours together do; folding each into the one before made a single 60 s request.
    cuts = [3.0 * i for i in range(1, 20)]
    p = plan(60, cuts, "each")
    assert p.requests == 6 and p.cost == pytest.approx(6 * PRICE)
    assert all(any(abs(s - cut) < 1e-6 for cut in cuts) for s in seams(p)), "seams only on boundaries"
    assert min(c.duration for c in p.chunks) >= MIN_SECTION_CHUNK
    covers(p)
    words_reach_the_generator(p)
    o = plan(60, cuts, "outpaint")
    assert o.requests == 10 and all(c.duration == 6 for c in o.chunks)


# --- every policy, any timeline ---------------------------------------------------


@st.composite
def timelines(draw: st.DrawFn) -> tuple[float, list[float], float]:
    duration = draw(st.floats(1, 900, allow_nan=False).map(lambda v: round(v, 3)))
    fractions = draw(st.lists(st.floats(0.001, 0.999), max_size=12))
    cuts = sorted({round(f * duration, 3) for f in fractions} - {0.0, duration})
    return duration, cuts, draw(st.sampled_from([0.5, 4.0, 8.0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines(), st.sampled_from(["each", "outpaint", "blend"]))
def test_every_policy_carries_every_sections_words(case: tuple[float, list[float], float],
                                                   policy: str) -> None:
    duration, cuts, crossfade = case
    p = plan(duration, cuts, policy, crossfade=crossfade)
    covers(p)
    words_reach_the_generator(p)
    for c in p.chunks:
        assert c.cues and all(0 <= q.start < q.end <= c.duration + 1e-6 for q in c.cues)
        assert abs(sum(q.end - q.start for q in c.cues) - min(c.duration, duration - c.start)) < 1e-5
    if policy == "each":  # a seam is on a boundary, or splits a stretch too long for one request
        on = [0.0, *(s for s in seams(p) if any(abs(s - cut) < 1e-6 for cut in cuts)), duration]
        for s in seams(p):
            if not any(abs(s - cut) < 1e-6 for cut in cuts):
                a, b = max(x for x in on if x < s), min(x for x in on if x > s)
                assert (b - a) + crossfade / 2 * ((a > 0) + (b < duration)) > 120, (s, a, b)


def test_plan_json_lists_the_sections_each_request_carries() -> None:
    p = plan(30, [8, 16, 24], max_cost=0.05)
    d = json.loads(json.dumps(plan_to_dict(p)))
    assert d["sections_policy"]["chosen"] == "blend" and d["sections_policy"]["asked"] == "auto"
    assert "above --max-cost" in d["sections_policy"]["reason"]
    assert set(d["sections_policy"]["costs"]) == {"each", "outpaint", "blend"}
    assert d["sections_policy"]["costs"]["each"] == {"requests": 4, "continuations": 0, "cost": 0.0868,
                                                      "join": "crossfade"}
    assert d["chunks"][0]["sections"] == [0, 1, 2, 3]
    assert [q["start"] for q in d["chunks"][0]["cues"]] == [0, 8, 16, 24]
    assert d["requests"] == 1 and d["crossfade_plan"]["requests"] == 1  # the old keys still work
    table = format_plan(plan(30, [8, 16, 24]))
    assert re.search(r"\* each +4 x \$0\.0217 = \$0\.0868", table)
    assert "outpaint  1 x $0.0217 + 3 x $0.0446 = $0.1555" in table
    assert all(len(line) < 140 for line in table.splitlines())
