"""Scene notes: every format, every modifier, and a clear message for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscore.errors import NotesError, UsageError
from autoscore.models import Chapter
from autoscore.text.notes import (
    energy_value,
    format_time,
    notes_from_chapters,
    parse_notes,
    parse_notes_text,
    parse_time,
)

DATA = Path(__file__).parent / "data"


def starts(text: str, **kwargs: str) -> list[tuple[float, float | None, str]]:
    return [(n.start, n.end, n.text) for n in parse_notes_text(text, **kwargs).notes]


# --------------------------------------------------------------------------------------
# Times


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0:00", 0.0),
        ("1:05", 65.0),
        ("1:05.5", 65.5),
        ("00:01:30", 90.0),
        ("1:00:05.25", 3605.25),
        ("00:00:01,500", 1.5),
        ("95", 95.0),
        ("95s", 95.0),
        ("75:30", 4530.0),
    ],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "reason"), [("0:60", "seconds go up to 59"), ("1:60:00", "minutes go up")])
def test_parse_time_rejects_out_of_range_fields(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_time(text)


@given(st.integers(min_value=0, max_value=10 * 3600 * 10))
def test_format_time_round_trips_through_parse_time(tenths: int) -> None:
    assert parse_time(format_time(tenths / 10)) == pytest.approx(tenths / 10)


def test_format_time_reads_like_a_timestamp() -> None:
    assert format_time(0) == "0:00"
    assert format_time(65.5) == "1:05.5"
    assert format_time(3725) == "1:02:05"


# --------------------------------------------------------------------------------------
# Plain text


def test_plain_text_every_line_style() -> None:
    text = """
    # a comment, then a blank line

    0:00 calm intro
    1:05.5 build
    00:01:30 - 00:02:10 climax
    2:15 - after the climax
    2:20 – en dash separator
    2:25: colon separator
    2:30 | pipe separator
    2:40 --> 2:50 arrow range
    2:55 to 3:00 word range
    200s plain seconds
    """
    assert starts(text) == [
        (0.0, None, "calm intro"),
        (65.5, None, "build"),
        (90.0, 130.0, "climax"),
        (135.0, None, "after the climax"),
        (140.0, None, "en dash separator"),
        (145.0, None, "colon separator"),
        (150.0, None, "pipe separator"),
        (160.0, 170.0, "arrow range"),
        (175.0, 180.0, "word range"),
        (200.0, None, "plain seconds"),
    ]


def test_plain_text_keeps_written_order_and_sources() -> None:
    result = parse_notes_text("0:20 second\n\n0:10 first\n", name="my.txt")
    assert [n.source for n in result.notes] == ["my.txt:1", "my.txt:3"]
    assert [n.start for n in result.notes] == [20.0, 10.0]  # sorting is build_sections' job


def test_sample_notes_file() -> None:
    result = parse_notes(DATA / "sample_notes.txt")
    assert [(n.start, n.text, n.modifiers) for n in result.notes] == [
        (0.0, "calm opening, city at dawn", (("energy", "low"),)),
        (8.0, "the host introduces the project", ()),
        (16.0, "montage of the build, things speed up", (("energy", "high"),)),
        (24.0, "quiet ending, sunset", (("no", "drums"),)),
    ]
    assert result.notes[0].source == "sample_notes.txt:2"
    assert result.warnings == ()


def test_a_note_without_words_is_kept_with_a_warning() -> None:
    result = parse_notes_text("0:00 intro\n0:30\n")
    assert [n.text for n in result.notes] == ["intro", ""]
    assert result.warnings == ("notes:2: the note at 0:30 has no words; it only starts a section.",)


# --------------------------------------------------------------------------------------
# Modifiers


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("[no drums]", ("no", "drums")),
        ("[no electric guitar]", ("no", "electric guitar")),
        ("[No: Bass]", ("no", "Bass")),
        ("[energy: high]", ("energy", "high")),
        ("[energy: LOW]", ("energy", "low")),
        ("[energy: medium]", ("energy", "medium")),
        ("[energy: 0.8]", ("energy", "0.8")),
        ("[tempo: 100]", ("tempo", "100")),
        ("[mood: tense, uneasy]", ("mood", "tense, uneasy")),
        ("[instruments: piano,  strings ,bells]", ("instruments", "piano, strings, bells")),
        ("[arc: Peak]", ("arc", "peak")),
        ("[silence]", ("silence", "")),
    ],
)
def test_every_modifier(written: str, expected: tuple[str, str]) -> None:
    (note,) = parse_notes_text(f"0:10 some words {written} more words").notes
    assert note.modifiers == (expected,)
    assert note.text == "some words more words"


def test_modifiers_keep_their_written_order() -> None:
    (note,) = parse_notes_text("0:00 [silence] intro [no drums] [energy: low] [no bass]").notes
    assert note.modifiers == (("silence", ""), ("no", "drums"), ("energy", "low"), ("no", "bass"))
    assert note.text == "intro"


@pytest.mark.parametrize(("word", "value"), [("low", 0.25), ("medium", 0.5), ("high", 0.85), ("0.3", 0.3)])
def test_energy_values(word: str, value: float) -> None:
    assert energy_value(word) == value


# --------------------------------------------------------------------------------------
# SRT, WebVTT, JSON


SRT = """1
00:00:01,000 --> 00:00:04,000
<i>calm</i> intro [energy: low]
over two lines

2
00:00:05,500 --> 00:00:08,000
the build
"""

VTT = """WEBVTT - scene notes
Kind: captions

NOTE this block is a comment
and is skipped

intro-cue
00:01.000 --> 00:04.000 align:start position:10%
<v Narrator>calm intro</v> [no drums]

01:00:05.500 --> 01:00:08.000
late note
"""


def test_srt() -> None:
    result = parse_notes_text(SRT, name="cues.srt")
    assert [(n.start, n.end, n.text) for n in result.notes] == [
        (1.0, 4.0, "calm intro over two lines"),
        (5.5, 8.0, "the build"),
    ]
    assert result.notes[0].modifiers == (("energy", "low"),)
    assert [n.source for n in result.notes] == ["cues.srt:2", "cues.srt:7"]


def test_webvtt() -> None:
    result = parse_notes_text(VTT, name="cues.vtt")
    assert [(n.start, n.end, n.text) for n in result.notes] == [
        (1.0, 4.0, "calm intro"),
        (3605.5, 3608.0, "late note"),
    ]
    assert result.notes[0].modifiers == (("no", "drums"),)
    assert result.notes[0].source == "cues.vtt:8"


def test_json_list_and_object_forms() -> None:
    items = [
        {"start": "0:00", "text": "intro [energy: low]"},
        {"start": 12.5, "end": "0:20", "text": "build"},
        {"start": 30, "end": None, "text": "end"},
    ]
    expected = [(0.0, None, "intro"), (12.5, 20.0, "build"), (30.0, None, "end")]
    assert starts(json.dumps(items)) == expected
    assert starts(json.dumps({"notes": items})) == expected
    assert parse_notes_text(json.dumps(items), name="n.json").notes[1].source == "n.json[1]"


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        (".srt", SRT),
        (".vtt", VTT),
        (".json", '[{"start": 1, "text": "calm intro"}]'),
        (".txt", "0:01 calm intro"),
        (".notes", SRT),  # unknown extension: detected from the content
        (".md", VTT),
        (".data", '{"notes": [{"start": 1, "text": "calm intro"}]}'),
    ],
)
def test_files_are_detected_by_extension_or_content(tmp_path: Path, suffix: str, content: str) -> None:
    path = tmp_path / f"scene{suffix}"
    path.write_text(content, encoding="utf-8")
    notes = parse_notes(path).notes
    assert notes[0].start == 1.0
    assert notes[0].text.startswith("calm intro")
    assert notes[0].source.startswith(f"scene{suffix}")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff0:00 café intro\n".encode())
    assert parse_notes(path).notes[0].text == "café intro"


# --------------------------------------------------------------------------------------
# Chapters


def test_notes_from_chapters() -> None:
    chapters = [
        Chapter(0.0, 30.0, "Cold open [4K]"),
        Chapter(30.0, 30.0, "empty"),
        Chapter(30.0, 90.0, "Chapter 2"),
        Chapter(90.0, 120.0, "  The   finale "),
    ]
    notes = notes_from_chapters(chapters)
    assert [(n.start, n.end, n.text, n.modifiers) for n in notes] == [
        (0.0, 30.0, "Cold open [4K]", ()),
        (30.0, 90.0, "", ()),
        (90.0, 120.0, "The finale", ()),
    ]
    assert [n.source for n in notes] == ["chapter 1", "chapter 3", "chapter 4"]


# --------------------------------------------------------------------------------------
# Bad input: each a NotesError (exit 2) whose message names the place and the fix.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:00 intro\ncalm bit\n", "n.txt:2: cannot read a time at the start of 'calm bit'"),
        ("0:00 intro\n\n0:75 bad\n", "n.txt:3: '0:75' has 75 seconds; seconds go up to 59"),
        ("1:00:00:00 x", "n.txt:1: cannot read a time"),
        ("0:20 - 0:10 backwards", "n.txt:1: the range ends at 0:10, not after its start 0:20"),
        ("0:10 [energy high]", "n.txt:1: unknown modifier [energy high]; use [no X]"),
        ("0:10 [loud]", "n.txt:1: unknown modifier [loud]"),
        ("0:10 x\n0:20 [speed: fast]", "n.txt:2: unknown modifier key 'speed' in [speed: fast]"),
        ("0:10 [energy: huge]", "n.txt:1: [energy: huge]: energy must be low, medium, high or a number"),
        ("0:10 [energy: 1.5]", "n.txt:1: [energy: 1.5]: energy must be from 0 to 1"),
        ("0:10 [tempo: 300]", "tempo must be a whole number from 40 to 220 BPM"),
        ("0:10 [tempo: fast]", "n.txt:1: [tempo: fast]: tempo must be a whole number"),
        ("0:10 [arc: middle]", "arc must be one of opening, build, peak, ending"),
        ("0:10 [mood: ]", "n.txt:1: [mood:] has no value; e.g. [mood: tense]"),
        ("0:10 [no]", "n.txt:1: [no] says no to nothing"),
        ("0:10 intro [no drums", "n.txt:1: unbalanced square bracket"),
        ("# only a comment\n\n", "n.txt has no notes"),
        ("", "n.txt has no notes"),
    ],
)
def test_bad_plain_text(text: str, message: str) -> None:
    with pytest.raises(NotesError) as info:
        parse_notes_text(text, name="n.txt")
    assert message in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("1\n00:00:01,000 -> 00:00:02,000\nx\n", "srt", "c:2: expected a SRT time line"),
        (
            "1\n00:00:05,000 --> 00:00:02,000\nx\n",
            "srt",
            "c:2: the range ends at 0:02, not after its start 0:05",
        ),
        ("1\n00:00:01,000 --> 00:00:02,000\n[bogus]\n", "srt", "c:2: unknown modifier [bogus]"),
        ("00:01.000 --> 00:02.000\nx\n", "vtt", "c:1: a WebVTT file must start with 'WEBVTT'"),
        (
            "WEBVTT\n\ncue-id\nx\n",
            "vtt",
            "c:4: expected a WebVTT time line like '00:00:01.000 --> 00:00:04.000', got 'x'",
        ),
        ('[{"start": 1,}]', "json", "c:1: not valid JSON"),
        ("[]", "json", "c has no notes"),
        ('{"items": []}', "json", 'must have exactly one key, "notes"'),
        ('"hello"', "json", "JSON notes must be a list"),
        ("[3]", "json", "c[0]: each note must be an object"),
        ('[{"text": "x"}]', "json", 'c[0]: the note has no "start"'),
        ('[{"start": 1, "txt": "x"}]', "json", "c[0]: unknown field(s) txt"),
        ('[{"start": "1:75", "text": "x"}]', "json", "c[0]: \"start\": '1:75' has 75 seconds"),
        ('[{"start": -1, "text": "x"}]', "json", 'c[0]: "start" must be zero or more seconds'),
        ('[{"start": true, "text": "x"}]', "json", 'c[0]: "start" must be seconds'),
        ('[{"start": 1, "text": 5}]', "json", 'c[0]: "text" must be a string'),
        ("0:00 x", "yaml", "Unknown notes format 'yaml'"),
    ],
)
def test_bad_structured_notes(text: str, fmt: str, message: str) -> None:
    with pytest.raises(NotesError) as info:
        parse_notes_text(text, name="c", fmt=fmt)
    assert message in str(info.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(NotesError, match="does not exist: check the path"):
        parse_notes(tmp_path / "nope.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("0:00 caf\xe9".encode("latin-1"))
    with pytest.raises(NotesError, match="is not UTF-8 text; save it as UTF-8"):
        parse_notes(latin)
