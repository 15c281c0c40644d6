"""Sections and prompts: arrangement on the timeline, arc and energy, and the prompt text."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscore.errors import InputError
from autoscore.models import Chapter, Note, Section
from autoscore.text.notes import notes_from_chapters, parse_notes, parse_notes_text
from autoscore.text.presets import Preset, StructureSettings, list_presets, load_preset
from autoscore.text.sections import MAX_PROMPT, build_sections, is_silent, shared_tempo

DATA = Path(__file__).parent / "data"
DEFAULT = Preset()


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("AUTOSCORE_PRESETS", raising=False)


@pytest.fixture(scope="module")
def sample_notes() -> tuple[Note, ...]:
    return parse_notes(DATA / "sample_notes.txt").notes


def notes(text: str) -> tuple[Note, ...]:
    return parse_notes_text(text).notes


def spans(sections: tuple[Section, ...]) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in sections]


def assert_covers(sections: tuple[Section, ...], duration: float) -> None:
    assert sections[0].start == 0.0
    assert sections[-1].end == pytest.approx(duration)
    for before, after in pairwise(sections):
        assert before.end == after.start
        assert after.duration > 0
    assert [s.index for s in sections] == list(range(len(sections)))


# --------------------------------------------------------------------------------------
# Golden: the sample's notes with the default preset.

STYLE = (
    "instrumental warm modern background music, uplifting and relaxed, piano, soft pads, "
    "electric bass and gentle drums, clean polished production"
)
CONTINUITY = "96 BPM, in C major, with piano, soft pads, bass, drums"
GOLDEN = [
    (
        0.0,
        8.0,
        "opening",
        0.25,
        f"{STYLE}. calm opening, city at dawn. opening section, introducing the theme. "
        f"low energy, sparse and soft. no vocals, no singing, no speech. {CONTINUITY}",
        "vocals, singing, speech",
    ),
    (
        8.0,
        16.0,
        "build",
        0.55,
        f"{STYLE}. the host introduces the project. build, developing the theme, gradually rising. "
        f"medium energy, steady groove. no vocals, no singing, no speech. {CONTINUITY}",
        "vocals, singing, speech",
    ),
    (
        16.0,
        24.0,
        "peak",
        0.85,
        f"{STYLE}. montage of the build, things speed up. peak, climax, full arrangement. "
        f"high energy, intense and driving. no vocals, no singing, no speech. {CONTINUITY}",
        "vocals, singing, speech",
    ),
    (
        24.0,
        30.0,
        "ending",
        0.2,
        "instrumental warm modern background music, uplifting and relaxed, piano, soft pads, "
        "electric bass, clean polished production. quiet ending, sunset. ending, resolving to a final "
        "cadence. low energy, sparse and soft. no drums. no vocals, no singing, no speech. "
        "96 BPM, in C major, with piano, soft pads, bass",
        "vocals, singing, speech, drums",
    ),
]


def test_golden_prompts_for_the_sample(sample_notes: tuple[Note, ...]) -> None:
    result = build_sections(sample_notes, 30.0, load_preset())
    assert result.warnings == ()
    got = [(s.start, s.end, s.arc, s.energy, s.prompt, s.negative_prompt) for s in result.sections]
    assert got == GOLDEN
    assert [s.text for s in result.sections] == [
        "calm opening, city at dawn",
        "the host introduces the project",
        "montage of the build, things speed up",
        "quiet ending, sunset",
    ]
    assert result.sections[3].modifiers == (("no", "drums"),)


# --------------------------------------------------------------------------------------
# Every built-in preset, short and long.


@pytest.mark.parametrize("duration", [45.0, 600.0])
@pytest.mark.parametrize("with_notes", [False, True])
def test_every_builtin_produces_sections(
    duration: float, with_notes: bool, sample_notes: tuple[Note, ...]
) -> None:
    for info in list_presets():
        preset = load_preset(info.name)
        result = build_sections(sample_notes if with_notes else (), duration, preset)
        sections = result.sections
        assert_covers(sections, duration)
        music = [s for s in sections if not is_silent(s)]
        assert music, info.name
        tempo = f"{preset.music.tempo} BPM"
        for s in music:
            assert 0 < len(s.prompt) <= MAX_PROMPT, (info.name, s.prompt)
            assert tempo in s.prompt and preset.music.key in s.prompt
            assert 0 <= s.energy <= 1
        if preset.structure.mode == "beds":
            assert any(is_silent(s) for s in sections)
        elif not with_notes:
            assert len(sections) == 1 and sections[0].arc == "whole"
            assert sections[0].energy == preset.music.energy


def test_beds_lay_intro_and_outro_with_silence_between() -> None:
    intro = build_sections((), 45.0, load_preset("podcast-intro")).sections
    assert [(s.start, s.end, s.arc, is_silent(s)) for s in intro] == [
        (0.0, 20.0, "opening", False),
        (20.0, 45.0, "whole", True),
    ]
    assert intro[1].prompt == "" and intro[1].energy == 0.0
    outro = build_sections((), 600.0, load_preset("podcast-outro")).sections
    assert [(s.start, s.end, s.arc, is_silent(s)) for s in outro] == [
        (0.0, 570.0, "whole", True),
        (570.0, 600.0, "ending", False),
    ]


def test_beds_longer_than_the_input_are_shortened() -> None:
    preset = replace(DEFAULT, structure=StructureSettings(mode="beds", intro=20, outro=20))
    result = build_sections((), 10.0, preset)
    assert [(s.start, s.end, s.arc) for s in result.sections] == [
        (0.0, 5.0, "opening"),
        (5.0, 10.0, "ending"),
    ]
    assert "longer than the input (10.0 s); shortened them to fit" in result.warnings[0]


def test_beds_take_words_from_notes_inside_them() -> None:
    preset = replace(DEFAULT, structure=StructureSettings(mode="beds", intro=10, outro=10))
    result = build_sections(notes("0:02 bright opener\n0:20 interview\n0:55 goodbye"), 60.0, preset)
    assert [s.text for s in result.sections] == ["bright opener", "", "goodbye"]
    assert result.warnings == (
        "notes:2: at 0:20, outside the intro/outro beds of this preset; not scored "
        "(use a 'full' preset to score the whole input).",
    )


# --------------------------------------------------------------------------------------
# Arranging notes on the timeline.


def test_no_notes_is_one_section_for_the_whole_video() -> None:
    result = build_sections((), 75.5, DEFAULT)
    (section,) = result.sections
    assert (section.start, section.end, section.arc, section.text) == (0.0, 75.5, "whole", "")
    assert section.prompt.startswith(DEFAULT.music.style)
    assert result.warnings == ()


def test_notes_past_the_end_are_dropped_or_clipped() -> None:
    result = build_sections(notes("0:00 intro\n0:20 - 0:50 long one\n1:10 too late"), 40.0, DEFAULT)
    assert spans(result.sections) == [(0.0, 20.0), (20.0, 40.0)]
    assert result.warnings == (
        "notes:2: ends at 0:50, past the end (0:40); clipped.",
        "notes:3: starts at 1:10, past the end (0:40); dropped.",
    )


def test_unsorted_notes_are_sorted_with_a_warning() -> None:
    result = build_sections(notes("0:20 second\n0:00 first\n0:40 third"), 60.0, DEFAULT)
    assert [s.text for s in result.sections] == ["first", "second", "third"]
    assert result.warnings == ("The notes are not in time order; sorted them by start time.",)


def test_overlapping_ranges_are_cut_with_a_warning() -> None:
    result = build_sections(notes("0:00 - 0:30 first\n0:20 second"), 60.0, DEFAULT)
    assert spans(result.sections) == [(0.0, 20.0), (20.0, 60.0)]
    assert result.warnings == ("notes:1: its range overlaps notes:2 at 0:20; cut it short there.",)


def test_notes_at_the_same_time_are_merged() -> None:
    result = build_sections(notes("0:00 intro\n0:10 drums come in\n0:10 [mood: tense]"), 30.0, DEFAULT)
    assert [s.text for s in result.sections] == ["intro", "drums come in"]
    assert result.sections[1].modifiers == (("mood", "tense"),)
    assert result.warnings == ("notes:3: starts at the same time as notes:2; merged them.",)


def test_gaps_between_ranges_get_their_own_section() -> None:
    result = build_sections(notes("0:10 - 0:20 scene one\n0:40 - 0:50 scene two"), 60.0, DEFAULT)
    assert spans(result.sections) == [(0.0, 10.0), (10.0, 20.0), (20.0, 40.0), (40.0, 50.0), (50.0, 60.0)]
    assert [s.text for s in result.sections] == ["", "scene one", "", "scene two", ""]


def test_short_sections_merge_into_the_previous_one() -> None:
    preset = replace(DEFAULT, structure=StructureSettings(min_section=8))
    result = build_sections(notes("0:00 intro\n0:10 blip\n0:13 main part\n0:40 outro"), 45.0, preset)
    assert [(s.start, s.end, s.text) for s in result.sections] == [
        (0.0, 13.0, "intro; blip"),
        (13.0, 45.0, "main part; outro"),
    ]
    assert result.warnings == (
        "notes:2 (0:10-0:13) lasts 3.0 s, under min_section 8 s; merged into the section at 0:00.",
        "notes:4 (0:40-0:45) lasts 5.0 s, under min_section 8 s; merged into the section at 0:13.",
    )


def test_a_short_first_section_merges_into_the_next() -> None:
    result = build_sections(notes("0:00 cold open\n0:02 intro"), 30.0, DEFAULT)
    assert [(s.start, s.end, s.text) for s in result.sections] == [(0.0, 30.0, "cold open; intro")]


def test_unnoted_lead_in_merges_silently() -> None:
    result = build_sections(notes("0:03 intro\n0:20 outro"), 40.0, DEFAULT)
    assert [(s.start, s.end, s.text) for s in result.sections] == [
        (0.0, 20.0, "intro"),
        (20.0, 40.0, "outro"),
    ]
    assert result.warnings == ()


def test_silence_is_never_merged_and_music_never_merges_into_it() -> None:
    result = build_sections(
        notes("0:00 intro\n0:20 [silence]\n0:22 tiny\n0:25 [silence]\n0:27 main"), 60.0, DEFAULT
    )
    assert [(s.start, s.end, is_silent(s)) for s in result.sections] == [
        (0.0, 20.0, False),
        (20.0, 22.0, True),
        (22.0, 25.0, False),
        (25.0, 27.0, True),
        (27.0, 60.0, False),
    ]
    silent = result.sections[1]
    assert (
        silent.prompt == "" and silent.energy == 0.0 and silent.negative_prompt == "vocals, singing, speech"
    )
    assert result.warnings == (
        "notes:3 (0:22-0:25) lasts 3.0 s, under min_section 5 s, but sits between silent sections; "
        "kept as it is.",
    )


def test_sections_from_chapters() -> None:
    chapters = [
        Chapter(0.0, 20.0, "Welcome"),
        Chapter(20.0, 50.0, "Chapter 2"),
        Chapter(50.0, 60.0, "Wrap up"),
    ]
    result = build_sections(notes_from_chapters(chapters), 60.0, DEFAULT)
    assert [(s.start, s.end, s.text, s.arc) for s in result.sections] == [
        (0.0, 20.0, "Welcome", "opening"),
        (20.0, 50.0, "", "peak"),
        (50.0, 60.0, "Wrap up", "ending"),
    ]


def test_nothing_to_score_is_an_input_error() -> None:
    with pytest.raises(InputError, match="The input lasts 0 s; there is nothing to score"):
        build_sections((), 0, DEFAULT)
    with pytest.raises(InputError, match="The prompt is empty"):
        build_sections((), 10, DEFAULT, prompt="  ")


# --------------------------------------------------------------------------------------
# Arc and energy.


def test_arc_from_position_when_the_notes_say_nothing_about_energy() -> None:
    result = build_sections(notes("0:00 a\n0:20 b\n0:40 c\n1:00 d\n1:20 e"), 100.0, DEFAULT)
    assert [s.arc for s in result.sections] == ["opening", "build", "build", "peak", "ending"]
    assert [s.energy for s in result.sections] == [0.4, 0.55, 0.55, 0.75, 0.35]


def test_arc_follows_energy_words() -> None:
    result = build_sections(notes("0:00 a\n0:20 the chase begins\n0:40 c\n1:00 d\n1:20 e"), 100.0, DEFAULT)
    assert [s.arc for s in result.sections] == ["opening", "peak", "build", "build", "ending"]
    assert result.sections[1].energy == 0.8
    calm = build_sections(notes("0:00 a\n0:20 calm and quiet talk\n0:40 c"), 60.0, DEFAULT).sections
    assert [s.arc for s in calm] == ["opening", "build", "ending"]  # a low cue is no peak
    assert calm[1].energy == 0.2 and "low energy" in calm[1].prompt


def test_explicit_arc_and_energy_win() -> None:
    result = build_sections(
        notes(
            "0:00 a [arc: peak] [energy: 0.9]\n0:20 b [energy: high]\n0:40 c [arc: build] [energy: medium]"
        ),
        60.0,
        DEFAULT,
    )
    assert [(s.arc, s.energy) for s in result.sections] == [("peak", 0.9), ("peak", 0.85), ("build", 0.5)]


# --------------------------------------------------------------------------------------
# Modifiers in prompts.


def test_no_modifier_reaches_prompt_negative_style_and_instruments() -> None:
    (section,) = build_sections(notes("0:00 intro [no drums] [no piano]"), 20.0, DEFAULT).sections
    assert "no drums, no piano" in section.prompt
    assert section.negative_prompt == "vocals, singing, speech, drums, piano"
    assert "gentle drums" not in section.prompt and "with soft pads, bass" in section.prompt
    assert section.prompt.count("piano") == 1 and section.prompt.count("drums") == 1


def test_tempo_mood_and_instruments_modifiers() -> None:
    result = build_sections(
        notes("0:00 intro\n0:20 chase [tempo: 120] [mood: tense, uneasy] [instruments: harp, bells]"),
        40.0,
        DEFAULT,
    )
    first, second = result.sections
    assert "96 BPM" in first.prompt
    assert "120 BPM" in second.prompt and "96 BPM" not in second.prompt
    assert "tense, uneasy mood, featuring harp, featuring bells" in second.prompt
    assert result.warnings == (
        "notes:2 (0:20-0:40): [tempo: 120] differs from the shared 96 BPM; "
        "the joins into and out of this section may be audible.",
    )


def test_prompt_replaces_style_and_negative_adds() -> None:
    (section,) = build_sections(
        (), 30.0, DEFAULT, prompt="solo cello, 70 BPM, sombre", negative="brass"
    ).sections
    assert section.prompt.startswith("solo cello, 70 BPM, sombre. ")
    assert DEFAULT.music.style not in section.prompt
    assert section.prompt.endswith("70 BPM, in C major, with piano, soft pads, bass, drums")
    assert section.negative_prompt == "vocals, singing, speech, brass"
    assert "no brass" in section.prompt


def test_shared_tempo_sources() -> None:
    assert shared_tempo(DEFAULT) == 96
    assert shared_tempo(DEFAULT, "fast house at 126 bpm") == 126
    no_tempo = replace(DEFAULT, music=replace(DEFAULT.music, tempo=None))
    assert shared_tempo(no_tempo) == 100
    styled = replace(no_tempo, music=replace(no_tempo.music, style="slow jazz, 72 BPM"))
    assert shared_tempo(styled) == 72


def test_long_prompts_are_trimmed_but_keep_continuity_and_exclusions() -> None:
    long_style = ", ".join(f"texture number {i}" for i in range(40))
    long_text = " ".join(f"word{i}" for i in range(80))
    preset = replace(DEFAULT, music=replace(DEFAULT.music, style=long_style))
    (section,) = build_sections(notes(f"0:00 {long_text} [no drums] [mood: eerie]"), 30.0, preset).sections
    assert len(section.prompt) <= MAX_PROMPT
    assert section.prompt.startswith("texture number 0")
    assert "word0 word1" in section.prompt
    assert "no drums" in section.prompt
    assert section.prompt.endswith("96 BPM, in C major, with piano, soft pads, bass")
    # A moderately long prompt loses elaboration before any scene words.
    medium = " ".join(f"word{i}" for i in range(22))
    (section,) = build_sections(notes(f"0:00 {medium}"), 30.0, DEFAULT).sections
    assert len(section.prompt) <= MAX_PROMPT
    assert medium in section.prompt


ENERGIES = ((), (("energy", "low"),), (("energy", "high"),), (("silence", ""),), (("no", "drums"),))


@settings(max_examples=80, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=200, allow_nan=False),
            st.one_of(st.none(), st.floats(min_value=0.1, max_value=60)),
            st.sampled_from(ENERGIES),
        ),
        max_size=12,
    ),
    duration=st.floats(min_value=1, max_value=180),
    min_section=st.floats(min_value=1, max_value=30),
)
def test_sections_always_tile_the_video(
    entries: list[tuple[float, float | None, tuple[tuple[str, str], ...]]],
    duration: float,
    min_section: float,
) -> None:
    """Whatever the notes (unsorted, overlapping, past the end), sections tile [0, duration)."""
    preset = replace(DEFAULT, structure=StructureSettings(min_section=min_section))
    given_notes = [
        Note(start=start, text=f"scene {i}", end=None if length is None else start + length,
             modifiers=modifiers, source=f"n:{i}")
        for i, (start, length, modifiers) in enumerate(entries)
    ]
    result = build_sections(given_notes, duration, preset)
    assert_covers(result.sections, duration)
    music = [s for s in result.sections if not is_silent(s)]
    if len(result.sections) > 1:
        stuck = [w for w in result.warnings if "between silent sections" in w]
        assert sum(s.duration < min_section - 1e-6 for s in music) <= len(stuck)
    assert all(0 < len(s.prompt) <= MAX_PROMPT for s in music)
    assert all(s.prompt == "" for s in result.sections if is_silent(s))
    assert sum(s.arc == "opening" for s in result.sections) <= 1
