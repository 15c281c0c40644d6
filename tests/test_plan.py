"""The chunk planner: request sizes, coverage, counts, seams on section boundaries, prompts, cost.

These hold the fewest-request plan (``--sections blend``); ``test_sections_policy.py`` holds
the per-section policies and the choice between them.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscore.errors import InputError, OptionError
from autoscore.models import Chunk, Section
from autoscore.music.plan import (
    MIN_CHUNK,
    Plan,
    format_plan,
    make_plan,
    plan_to_dict,
)
from autoscore.text.presets import MixSettings, Preset

PRICE, OUTPAINT_PRICE = 0.0217, 0.0446
MAX = 120


def preset(crossfade: float = 4.0) -> Preset:
    return replace(Preset(), mix=MixSettings(crossfade=crossfade))


def sections_at(duration: float, cuts: list[float]) -> list[Section]:
    edges = [0.0, *cuts, duration]
    return [
        Section(i, a, b, f"text {i}", f"prompt of section {i}", f"avoid {i}", "build")
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]


def plan(
    duration: float, cuts: list[float] | None = None, crossfade: float = 4.0, join: str = "crossfade",
    policy: str = "blend",
) -> Plan:
    return make_plan(
        duration,
        sections_at(duration, cuts or []),
        preset(crossfade),
        backend_name="wavespeed",
        price_per_request=PRICE,
        outpaint_price=OUTPAINT_PRICE,
        join=join,
        policy=policy,
    )


def fewest(duration: float, crossfade: float) -> int:
    """Independent count: n chunks of 120 s overlapping by X cover n*120 - (n-1)*X seconds."""
    n = 1
    while n * MAX - (n - 1) * crossfade < duration - 1e-6:
        n += 1
    return n


def seams_of(p: Plan) -> list[float]:
    return [c.start + p.crossfade / 2 for c in p.chunks[1:]]


def covered_until(p: Plan, c: Chunk) -> float:
    """Where chunk ``c`` hands over: the end of its crossfade with the next, or the end."""
    return p.duration if c.is_last else p.chunks[c.index + 1].start + p.crossfade


def check_rules(p: Plan) -> None:
    chunks, d, x = p.chunks, p.duration, p.crossfade
    assert p.requests == len(chunks) == fewest(d, x)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.seed for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == 0 and chunks[0].is_first and chunks[-1].is_last
    assert sum(c.is_first for c in chunks) == 1 and sum(c.is_last for c in chunks) == 1
    for c in chunks:
        assert isinstance(c.duration, int) and 1 <= c.duration <= MAX
        # Whole seconds rounded up: never more than a second of waste per request.
        assert covered_until(p, c) - c.start <= c.duration + 1e-6
        assert c.duration - (covered_until(p, c) - c.start) < 1 + 1e-6
        assert covered_until(p, c) - c.start >= min(d, max(MIN_CHUNK, 2 * x)) - 1e-6
    for a, b in itertools.pairwise(chunks):
        assert b.overlap_before == a.overlap_after == x
        assert a.end >= b.start + x - 1e-6, "neighbours overlap by at least the crossfade"
        assert b.start > a.start
    assert chunks[0].overlap_before == 0 and chunks[-1].overlap_after == 0
    assert chunks[-1].end >= d - 1e-6
    assert p.cost_crossfade == pytest.approx(len(chunks) * PRICE)


@pytest.mark.parametrize("duration", [1, 30, 119, 120, 121, 240, 600, 3600])
def test_plans_for_typical_lengths_follow_the_rules(duration: float) -> None:
    check_rules(plan(duration))


@pytest.mark.parametrize(
    ("duration", "requests"), [(1, 1), (30, 1), (119, 1), (120, 1), (121, 2), (240, 3), (600, 6), (3600, 31)]
)
def test_request_counts(duration: float, requests: int) -> None:
    assert plan(duration).requests == requests


def test_one_second_video_gets_one_one_second_request() -> None:
    (chunk,) = plan(1).chunks
    assert (chunk.start, chunk.duration, chunk.is_first, chunk.is_last) == (0.0, 1, True, True)
    assert plan(0.3).chunks[0].duration == 1


def test_without_sections_chunks_are_even() -> None:
    p = plan(600)
    lengths = [covered_until(p, c) - c.start for c in p.chunks]
    assert max(lengths) - min(lengths) < 1e-5


def test_float_noise_does_not_cost_a_request() -> None:
    assert plan(120.0000000001).requests == 1


def test_seam_lands_on_the_section_boundary() -> None:
    p = plan(200, [100])
    assert seams_of(p) == [pytest.approx(100)]
    assert [c.section_index for c in p.chunks] == [0, 1]
    assert p.chunks[0].prompt == "prompt of section 0"


def test_short_sections_share_a_chunk_and_long_ones_split_evenly() -> None:
    # Four 15-s sections then a 340-s one: the short ones share the first chunk, whose
    # seam sits on the boundary at 60 s; the long section is split into equal chunks.
    p = plan(400, [15, 30, 45, 60])
    check_rules(p)
    seams = seams_of(p)
    assert seams[0] == pytest.approx(60)
    inner = [covered_until(p, c) - c.start for c in p.chunks[1:]]
    assert len(inner) == 3 and max(inner) - min(inner) < 1e-5


def test_fewest_requests_beat_boundaries() -> None:
    # 70/70/70: two chunks are enough, but neither boundary allows two, so the seam goes
    # mid-section rather than spending a third request.
    p = plan(210, [70, 140])
    check_rules(p)
    assert p.requests == 2


def test_a_late_boundary_does_not_make_a_stub_chunk() -> None:
    p = plan(200, [100, 195])
    check_rules(p)
    assert seams_of(p) == [pytest.approx(100)]
    assert p.chunks[-1].section_index == 1


def test_the_plan_flags_where_the_piece_opens_and_ends_and_the_remote_words_say_it() -> None:
    """Chunks carry flags, not words a backend must parse back; the WaveSpeed client words them."""
    from autoscore.music.backends.wavespeed.payload import in_words

    p = plan(600, [200, 400])
    first, *middle, last = p.chunks
    assert (first.is_first, first.is_last, last.is_first, last.is_last) == (True, False, False, True)
    assert not any(c.is_first or c.is_last for c in middle)
    for c in p.chunks:  # the section's own words, nothing added by the planner
        assert "ending" not in c.prompt and "intro" not in c.negative_prompt
        assert f"avoid {c.section_index}" in c.negative_prompt
    words = [in_words(c.prompt, c.negative_prompt, opens=c.is_first, ends=c.is_last) for c in p.chunks]
    assert "clear ending" in words[-1][0] and all("ending" not in w[0] for w in words[:-1])
    for _prompt, negative in words[:-1]:
        assert "ending" in negative and "fade-out" in negative
    assert all("intro" in negative for _, negative in words[1:])
    assert "intro" not in words[0][1] and "ending" not in words[-1][1]
    single = plan(60).chunks[0]
    assert single.is_first and single.is_last


def test_without_sections_the_preset_style_is_the_prompt() -> None:
    p = make_plan(300, [], Preset(), backend_name="procedural", price_per_request=0.0, outpaint_price=0.0)
    assert all(c.prompt.startswith(Preset().music.style) for c in p.chunks)
    assert all("vocals" in c.negative_prompt for c in p.chunks)
    assert p.cost_crossfade == 0 and p.cost_outpaint == 0
    assert "free with the procedural backend" in format_plan(p)


def test_outpaint_plan() -> None:
    p = plan(600, [300], join="outpaint")
    assert p.join == "outpaint" and p.requests == p.requests_outpaint == 5
    assert p.requests_crossfade == 6
    assert p.cost_outpaint == pytest.approx(PRICE + 4 * OUTPAINT_PRICE)
    assert p.cost == p.cost_outpaint
    assert p.chunks[0].duration == 120 and p.chunks[0].start == 0
    assert all(c.overlap_before == 0 and c.overlap_after == 0 for c in p.chunks)
    assert all(1 <= c.duration <= MAX for c in p.chunks)
    for a, b in itertools.pairwise(p.chunks):
        assert b.start == a.start + a.duration, "each continuation starts where the audio ends"
    assert p.chunks[-1].start + p.chunks[-1].duration >= 600 - 1e-6
    assert p.chunks[-1].is_last and not any(c.is_last for c in p.chunks[:-1])


def test_outpaint_has_no_stub_step() -> None:
    p = plan(245, join="outpaint")
    assert [c.duration for c in p.chunks] == [120, 63, 62]


def test_dict_and_table() -> None:
    p = plan(300, [100])
    d = json.loads(json.dumps(plan_to_dict(p)))
    assert d["requests"] == 3 and len(d["chunks"]) == 3
    assert d["crossfade_plan"]["cost"] == pytest.approx(3 * PRICE)
    assert d["outpaint_plan"]["requests"] == 3
    table = format_plan(p)
    assert "crossfade 3 x $0.0217 = $0.0651" in table
    assert "outpaint 1 x $0.0217 + 2 x $0.0446 = $0.1109" in table
    assert "1:38.0" in table  # chunk 1 starts 2 s before the seam at 1:40
    long_prompt = replace(sections_at(300, [])[0], prompt="x" * 200)
    p = make_plan(300, [long_prompt], preset(), backend_name="w", price_per_request=1, outpaint_price=2)
    assert all(len(line) < 140 for line in format_plan(p).splitlines())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"duration": 0}, InputError),
        ({"duration": float("nan")}, InputError),
        ({"crossfade": 30.0}, OptionError),
        ({"crossfade": 0.0}, OptionError),
        ({"join": "glue"}, OptionError),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict, error: type[Exception]) -> None:
    args = {"duration": 100.0, "crossfade": 4.0, "join": "crossfade"} | kwargs
    with pytest.raises(error, match=r"\."):
        plan(args["duration"], crossfade=args["crossfade"], join=args["join"])


# --- properties ---------------------------------------------------------------------


def best_boundary_seams(duration: float, cuts: list[float], x: float) -> int:
    """Brute force: the most seams that can sit on boundaries with the fewest chunks."""
    n = fewest(duration, x)
    best = -1
    for r in range(len(cuts) + 1):
        for chosen in itertools.combinations(cuts, r):
            edges = [0.0, *chosen, duration]
            total, ok = 0, True
            for i, (a, b) in enumerate(itertools.pairwise(edges)):
                span = b - a + (x / 2 if i > 0 else 0) + (x / 2 if i < len(edges) - 2 else 0)
                k = fewest(span, x)
                total += k
                ok &= (span + (k - 1) * x) / k >= min(duration, max(MIN_CHUNK, 2 * x)) - 1e-6
            if ok and total == n:
                best = max(best, r)
    return best


@st.composite
def timelines(draw: st.DrawFn, max_cuts: int = 6) -> tuple[float, list[float], float]:
    duration = draw(st.floats(1, 7200, allow_nan=False).map(lambda v: round(v, 3)))
    fractions = draw(st.lists(st.floats(0.001, 0.999), max_size=max_cuts))
    cuts = sorted({round(f * duration, 3) for f in fractions} - {0.0, duration})
    crossfade = draw(st.sampled_from([0.5, 1.0, 4.0, 6.5, 20.0]))
    return duration, cuts, crossfade


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_any_timeline_meets_the_rules(case: tuple[float, list[float], float]) -> None:
    duration, cuts, crossfade = case
    p = plan(duration, cuts, crossfade)
    check_rules(p)
    on_boundary = sum(any(math.isclose(s, c, abs_tol=1e-6) for c in cuts) for s in seams_of(p))
    assert on_boundary == best_boundary_seams(duration, cuts, crossfade)


@settings(max_examples=100, deadline=None)
@given(timelines(max_cuts=60))
def test_many_sections_stay_valid(case: tuple[float, list[float], float]) -> None:
    duration, cuts, crossfade = case
    p = plan(duration, cuts, crossfade)
    check_rules(p)
    for c, carried in zip(p.chunks, p.carries, strict=True):  # the main section is the one covering most
        core = (c.start + (c.overlap_before / 2), covered_until(p, c) - c.overlap_after / 2)
        share = {s.index: min(core[1], s.end) - max(core[0], s.start) for s in p.sections}
        assert share[c.section_index] == pytest.approx(max(share.values()))
        assert c.section_index in carried
        for index in carried:  # and the prompt carries the words of every section it lists
            assert c.prompt == f"prompt of section {index}" or re.search(rf"\btext {index}\b", c.prompt)
            assert re.search(rf"\bavoid {index}\b", c.negative_prompt)
    assert sorted({i for carried in p.carries for i in carried}) == [s.index for s in p.sections]


@settings(max_examples=100, deadline=None)
@given(st.floats(1, 7200).map(lambda v: round(v, 3)))
def test_outpaint_covers_any_length(duration: float) -> None:
    p = plan(duration, join="outpaint")
    assert p.requests == 1 + math.ceil(max(0.0, duration - 120) / 120 - 1e-9)
    assert all(1 <= c.duration <= MAX for c in p.chunks)
    assert p.chunks[-1].start + p.chunks[-1].duration >= duration - 1e-6
    for a, b in itertools.pairwise(p.chunks):
        assert b.start == a.start + a.duration
    if len(p.chunks) > 1:
        steps = [c.duration for c in p.chunks[1:]]
        assert max(steps) - min(steps) <= 1, "the remainder is spread evenly: no stub"
