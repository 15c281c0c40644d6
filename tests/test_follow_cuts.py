"""Issue 18, the pure half: sections from shots, the tempo fitted to cuts, joins moved onto cuts.

No picture is decoded here; ``PictureCuts`` values are typed in, as the detector would
hand them on. ``test_picture.py`` runs the whole way from video files made with ffmpeg.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscore.models import PictureCuts
from autoscore.music.backends.base import MAX_DURATION
from autoscore.music.beats import ON_BEAT, fit_tempo, on_beat_share
from autoscore.music.joins import seams_onto_cuts
from autoscore.pipeline import plan_music
from autoscore.text.notes import parse_notes_text
from autoscore.text.shots import notes_file_text, notes_from_cuts, shot_sections, snap_notes_to_cuts


def picture(cuts: list[float], duration: float, motion: float = 0.01) -> PictureCuts:
    steps = np.arange(0, duration, 0.5)
    return PictureCuts(tuple(cuts), tuple((float(t), motion) for t in steps), duration, 25.0)


SLOW_FAST_STILL = [5.0, 10.0, 15.0, 20.0, *(20.0 + k for k in range(1, 20)), 40.0]
"""Four 5 s shots, a montage of 1 s shots from 20 s to 40 s, then one 20 s shot."""


def test_shots_group_into_sections_that_start_on_cuts_where_the_pace_changes() -> None:
    sections = shot_sections(picture(SLOW_FAST_STILL, 60), 60, min_section=5, max_section=40)
    assert [(s.start, s.end) for s in sections] == [(0, 20), (20, 40), (40, 60)]
    slow, montage, still = sections
    assert montage.energy > slow.energy > still.energy
    assert montage.cuts_per_minute > 50 and still.cuts_per_minute == 0


def test_motion_raises_the_energy_of_a_shot() -> None:
    calm = shot_sections(picture([], 30, motion=0.001), 30, min_section=5, max_section=40)
    busy = shot_sections(picture([], 30, motion=0.08), 30, min_section=5, max_section=40)
    assert len(calm) == len(busy) == 1 and busy[0].energy > calm[0].energy


@given(st.lists(st.floats(0.05, 299.9), max_size=400), st.floats(3, 20), st.floats(20, 90))
@settings(max_examples=60, deadline=None)
def test_sections_stay_within_bounds_whatever_the_cutting(cuts: list[float], low: float, high: float) -> None:
    duration = 300.0
    cut_set = sorted(set(cuts))
    sections = shot_sections(picture(cut_set, duration), duration, min_section=low, max_section=high)
    assert sections[0].start == 0 and sections[-1].end == duration
    for a, b in itertools.pairwise(sections):
        assert a.end == b.start and b.start in cut_set
    for s in sections[:-1]:
        # Shorter than the minimum only when the whole video is; longer than the maximum only
        # where no cut allowed ending sooner (a long shot is not cut in two).
        assert s.duration >= low - 1e-9
        if s.duration > high + 1e-9:
            assert not [c for c in cut_set if s.start + low <= c <= s.start + high]


def test_a_strobe_edit_stays_bounded() -> None:
    cuts = [round(0.1 * k, 3) for k in range(1, 3000)]
    sections = shot_sections(picture(cuts, 300), 300, min_section=5, max_section=40)
    assert 300 / 40 <= len(sections) <= 300 / 5
    assert all(s.energy == sections[0].energy for s in sections)


def test_notes_from_cuts_read_back_as_the_same_notes() -> None:
    notes = notes_from_cuts(picture(SLOW_FAST_STILL, 60), 60, min_section=5, max_section=40)
    again = parse_notes_text(notes_file_text(notes, "header line")).notes
    assert [(n.start, n.text, n.modifiers) for n in again] == [(n.start, n.text, n.modifiers) for n in notes]


def test_a_note_near_a_cut_moves_onto_it_and_others_stay() -> None:
    notes = parse_notes_text("0:00 open\n0:12 near a cut\n0:30 far from cuts\n").notes
    moved = snap_notes_to_cuts(notes, [12.32, 25.0])
    assert [n.start for n in moved] == [0.0, 12.32, 30.0]


@pytest.mark.parametrize(("spacing", "first", "base"), [(2.0, 1.3, 96), (2.35, 0.7, 96), (1.5, 0.0, 120),
                                                         (3.1, 2.2, 80)])
def test_the_fitted_tempo_puts_cuts_spaced_on_a_bar_grid_on_beats(spacing: float, first: float,
                                                                   base: float) -> None:
    cuts = [first + spacing * k for k in range(60)]
    fit = fit_tempo(cuts, base)
    assert abs(fit.bpm - base) <= 0.08 * base + 1e-9
    assert fit.share == 1.0 and on_beat_share(cuts, fit.bpm, fit.downbeat) == 1.0
    assert 0 <= fit.downbeat < 4 * fit.beat


def test_random_cuts_fit_no_better_than_chance_and_never_leave_the_range() -> None:
    cuts = sorted(np.random.default_rng(3).uniform(0, 300, 300).tolist())
    fit = fit_tempo(cuts, 100)
    assert 92 <= fit.bpm <= 108
    assert fit.share < 0.5  # a window of 80 ms in a 600 ms beat holds about 13 % by chance


def test_no_cuts_keep_the_preset_tempo() -> None:
    fit = fit_tempo([], 96)
    assert (fit.bpm, fit.downbeat, fit.share) == (96, 0.0, 1.0)
    assert ON_BEAT == 0.040


def test_a_free_seam_moves_onto_a_cut_within_what_the_chunks_allow() -> None:
    # 200 s in two chunks: the even seam sits at 100 s; cuts at 93 s and 170 s.
    seams = seams_onto_cuts([100.0], [93.0, 170.0], 200.0, 4.0, 20.0)
    assert seams == [93.0]
    # A cut that would make the first chunk longer than 120 s is not taken.
    assert seams_onto_cuts([100.0], [125.0], 200.0, 4.0, 20.0) == [100.0]
    assert seams_onto_cuts([100.0], [93.0], 200.0, 4.0, 20.0, pinned=[100.0]) == [100.0]


def test_joins_of_a_five_minute_clip_land_on_cuts() -> None:
    cuts = [7.0 * k + 0.4 for k in range(1, 43)]
    job = plan_music(300, (), cuts=picture(cuts, 300), backend="procedural")
    assert job.plan.joins and all(j.on_cut for j in job.plan.joins)
    assert all(c.duration <= MAX_DURATION for c in job.plan.chunks)
    starts = [s.start for s in job.sections]
    assert starts[0] == 0 and all(t in cuts for t in starts[1:])
    assert job.plan.downbeat is not None and job.plan.source == "cuts"
    assert on_beat_share(cuts, job.plan.tempo, job.plan.downbeat) >= 0.8


def test_a_bpm_the_user_typed_is_not_refitted() -> None:
    cuts = [2.0 * k + 1.3 for k in range(30)]
    job = plan_music(60, (), cuts=picture(cuts, 60), backend="procedural", prompt="warm piano, 97 BPM")
    assert job.plan.tempo == 97 and job.plan.downbeat is None
