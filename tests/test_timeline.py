"""``--timeline``: every exported timeline is read back with OpenTimelineIO's own adapters.

Scored clips are made here with ffmpeg (speech from 2 s on); the frame-rate tests are pure
and run an hour of timeline at each editor's rate through the adapters, without media.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from conftest import make_media, run_cli

import autoscore
import autoscore.batch
import autoscore.pipeline
import autoscore.text.notes
from autoscore.errors import NotesError, OptionError, OutputPathError
from autoscore.media import ffmpeg as ff
from autoscore.mixing.duck import build_envelope
from autoscore.text.presets import load_preset
from autoscore.timeline import check_timeline_path
from autoscore.timeline.fcpxml import fcpxml_bytes
from autoscore.timeline.model import (
    Keyframe,
    Marker,
    MusicClip,
    TimelinePlan,
    cut_markers,
    frame_rate,
    frames,
    thin_envelope,
    timecode_seconds,
)
from autoscore.timeline.otio_io import build_timeline
from autoscore.timeline.xmeml import xmeml_bytes

RATES = {  # what a probe reports -> the exact rate an editor uses
    23.976023976023978: Fraction(24000, 1001),
    25.0: Fraction(25),
    29.97002997002997: Fraction(30000, 1001),
    30.0: Fraction(30),
    50.0: Fraction(50),
    60.0: Fraction(60),
}
HOUR = 3600.0


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 30000/1001 fps: 2 s of silence, then speech to the end."""
    folder = tmp_path_factory.mktemp("timeline")
    return make_media(folder / "talk.mp4", seconds=6, fps="30000/1001")  # type: ignore[arg-type]


def _music_clip(timeline: otio.schema.Timeline) -> otio.schema.Clip:
    clips = [c for c in timeline.find_clips() if c.name == "autoscore music"]
    assert len(clips) == 1
    return clips[0]


def _resolve(url: str, base: Path) -> Path:
    parsed = urllib.parse.urlparse(url)
    path = Path(urllib.parse.unquote(parsed.path))
    return path if parsed.scheme == "file" else base / path


def _levels_db(clip: otio.schema.Clip, rate: float) -> list[tuple[float, float]]:
    """(seconds, dB) of the music's keyframes, from whichever form the format keeps them in."""
    if "autoscore" in clip.metadata:
        return [(k["time"].to_seconds(), k["db"]) for k in clip.metadata["autoscore"]["keyframes"]]
    (effect,) = [e for e in clip.effects if e.metadata["fcp_xml"].get("effectid") == "audiolevels"]
    keys = effect.metadata["fcp_xml"]["parameter"]["keyframe"]
    return [(float(k["when"]) / rate, 20 * np.log10(float(k["value"]))) for k in keys]


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_exported_timeline_reads_back(talk: Path, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"talk{suffix}"
    result = autoscore.score(talk, tmp_path / "talk.scored.mp4", backend="procedural", timeline=path)
    assert result.timeline == path and result.mix is not None
    timeline = otio.adapters.read_from_file(str(path))

    kinds = [t.kind for t in timeline.tracks]
    assert kinds == [otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio, otio.schema.TrackKind.Audio]
    music = _music_clip(timeline)
    rate = music.source_range.duration.rate
    assert rate == pytest.approx(30000 / 1001)
    assert abs(music.source_range.duration.to_seconds() - result.duration) <= 1 / rate + 1e-9
    for clip in timeline.find_clips():
        url = clip.media_reference.target_url
        assert _resolve(url, path.parent).is_file(), url
    assert (tmp_path / f"talk.music.{'flac' if suffix == '.otio' else 'wav'}").is_file()

    # Under the speech (2 s on) the music lies the preset's depth below where there is none.
    depth = load_preset("default").mix.duck_depth_db
    levels = _levels_db(music, rate)
    assert 3 <= len(levels) <= 8, levels  # thinned: a start, the floor, an end
    (start, _end), = result.mix.speech_regions
    outside = [db for t, db in levels if t < start - 0.3]
    under = [db for t, db in levels if t >= start]
    assert outside and under
    assert max(under) < min(outside)
    assert np.mean(outside) - np.mean(under) == pytest.approx(depth, abs=2.0)

    names = [m.name for m in timeline.tracks.markers]
    assert names == [s.text or f"Section {i}" for i, s in enumerate(result.sections, 1)] + [
        f"Cut {n}" for n in range(1, len(result.plan.cuts) + 1)]


def test_cli_bed_writes_a_timeline_without_a_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    episode = make_media(tmp_path / "episode.wav", video=None, seconds=5)
    code, _, err = run_cli(["bed", str(episode), "--intro", "3", "-b", "procedural", "-q",
                            "--timeline", str(tmp_path / "episode.otio")], capsys)
    assert code == 0, err
    timeline = otio.adapters.read_from_file(str(tmp_path / "episode.otio"))
    assert [t.kind for t in timeline.tracks] == [otio.schema.TrackKind.Audio] * 2
    assert _music_clip(timeline).media_reference.target_url == "episode.music.flac"


def test_batch_writes_one_timeline_beside_each_output(talk: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a", "b"):
        (clips / f"{name}.mp4").write_bytes(talk.read_bytes())
    out = tmp_path / "scored"
    argv = ["batch", str(clips), "--out", str(out), "-b", "procedural", "--timeline", "xml", "--json"]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    for name in ("a", "b"):
        timeline = otio.adapters.read_from_file(str(out / f"{name}.scored.xml"))
        url = _music_clip(timeline).media_reference.target_url
        assert _resolve(url, out) == out / f"{name}.scored.music.wav"
    (out / "b.scored.xml").unlink()  # a rerun finishes what is missing, and only that
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and (out / "b.scored.xml").is_file()
    statuses = {Path(o["input"]).name: o["status"] for o in json.loads(stdout)["files"]}
    assert statuses == {"a.mp4": "skipped", "b.mp4": "ok"}
    with pytest.raises(OptionError, match="unknown format"):
        autoscore.batch.run_batch([clips], out, timeline="edl")


@pytest.mark.parametrize(("name", "message"), [
    ("talk.edl", "cannot tell the format"),
    ("missing/talk.otio", "does not exist"),
])
def test_bad_timeline_paths_are_usage_errors_before_any_work(
        talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str) -> None:
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(["score", str(talk), "-o", str(out), "-b", "procedural",
                            "--timeline", str(tmp_path / name)], capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert not out.exists()


def test_missing_extra_is_named(talk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "otio_fcp_adapter", None)  # find_spec answers None: not installed
    with pytest.raises(OptionError, match=r"pip install 'autoscore\[timeline\]'"):
        check_timeline_path(talk, tmp_path / "t.xml")
    with pytest.raises(OutputPathError, match="overwrite"):
        check_timeline_path(talk, talk.with_suffix(".otio"), talk.with_name("talk.music.flac"))


# -- pure: times, rates, keyframes ------------------------------------------------------------


@pytest.mark.parametrize("probed", list(RATES))
def test_rates_are_exact_and_an_hour_does_not_drift(probed: float) -> None:
    rate = frame_rate(probed)
    assert rate == RATES[probed]
    assert frame_rate(round(probed, 3)) == rate  # what a banner shows
    for seconds in np.linspace(0, HOUR, 997):
        n = frames(float(seconds), rate)
        assert abs(float(n / rate) - seconds) <= 0.5 / rate
    assert frames(HOUR, rate) == round(HOUR * rate)


def _hour_plan(rate: Fraction, folder: Path) -> TimelinePlan:
    marks = (Marker(0.0, 1800.0, "first half", "calm piano"), Marker(1800.0, 1800.0, "second half", "drums"),
             *cut_markers([HOUR - 1 / float(rate)], HOUR))
    keys = (Keyframe(0.0, -10.0), Keyframe(HOUR - 2, -10.0), Keyframe(HOUR - 1, -22.0), Keyframe(HOUR, -22.0))
    return TimelinePlan("hour", rate, 0.0, folder / "hour.mp4", HOUR, True, True, 0.0,
                        MusicClip(folder / "hour.music.wav", HOUR, -10.0, keys), marks)


@pytest.mark.parametrize("rate", list(RATES.values()), ids=str)
@pytest.mark.parametrize("adapter", ["otio_json", "fcp_xml"])
def test_an_hour_at_each_rate_reads_back_frame_exact(rate: Fraction, adapter: str, tmp_path: Path) -> None:
    plan = _hour_plan(rate, tmp_path)
    if adapter == "fcp_xml":
        text = xmeml_bytes(plan).decode()
        assert ("<ntsc>TRUE</ntsc>" in text) == (rate.denominator == 1001)
        if rate in (Fraction(30000, 1001), Fraction(60000, 1001)):
            assert "<displayformat>DF</displayformat>" in text
    else:
        text = otio.adapters.write_to_string(build_timeline(plan, tmp_path), adapter)
    timeline = otio.adapters.read_from_string(text, adapter)
    music = _music_clip(timeline)
    assert music.source_range.duration.value == round(HOUR * rate)
    assert music.source_range.duration.to_seconds() == pytest.approx(HOUR, abs=0.5 / float(rate))
    markers = list(timeline.tracks.markers)
    assert [m.name for m in markers] == ["first half", "second half", "Cut 1"]
    assert markers[1].marked_range.start_time.value == round(1800 * rate)
    assert markers[2].marked_range.start_time.value == round(HOUR * rate) - 1  # the last frame, not one off
    levels = _levels_db(music, float(rate))
    assert levels[-2][0] == pytest.approx(HOUR - 1, abs=1 / float(rate))
    assert levels[-1][1] == pytest.approx(-22.0, abs=0.01)


def test_thinned_envelope_keeps_start_floor_and_end_of_each_dip() -> None:
    mix = load_preset("default").mix
    env = build_envelope([(2.0, 3.0), (6.0, 7.5)], 10.0, mix)
    times = np.arange(len(env.duck_db)) / env.control_rate
    keys = thin_envelope(times, env.duck_db, -6.0, 10.0)
    assert len(keys) == 2 + 4 * 2
    assert [k.db for k in keys] == pytest.approx([-6, -6, -6 - mix.duck_depth_db, -6 - mix.duck_depth_db, -6,
                                                  -6, -6 - mix.duck_depth_db, -6 - mix.duck_depth_db, -6, -6])
    floors = [k.time for k in keys if k.db < -6.5]
    assert floors[0] == pytest.approx(2.0, abs=0.1) and floors[1] == pytest.approx(3.0, abs=0.05)
    assert keys[0].time == 0.0 and keys[-1].time == 10.0
    # speech from the first frame: the curve starts at its floor
    env0 = build_envelope([(0.0, 10.0)], 10.0, mix)
    start = thin_envelope(np.arange(len(env0.duck_db)) / env0.control_rate, env0.duck_db, 0.0, 10.0)
    assert start[0].db == pytest.approx(-mix.duck_depth_db) and len(start) <= 3


def test_cut_markers_are_points_in_order() -> None:
    marks = cut_markers([4.0, 1.5, 99.0], 10.0)
    assert [(m.name, m.start, m.duration, m.kind) for m in marks] == [
        ("Cut 1", 1.5, 0.0, "cut"), ("Cut 2", 4.0, 0.0, "cut")]


def test_a_clip_with_a_cut_gets_a_cut_marker(tmp_path: Path) -> None:
    clip = tmp_path / "two.mp4"
    ff.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=3",
            "-f", "lavfi", "-i", "smptebars=s=160x90:r=25:d=3",
            "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
            "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)],
           what="make a two-shot clip")
    path = tmp_path / "two.otio"
    result = autoscore.score(clip, tmp_path / "two.scored.mp4", backend="procedural", timeline=path)
    assert result.plan.cuts == pytest.approx((3.0,), abs=0.05)
    timeline = otio.adapters.read_from_file(str(path))
    assert [t.kind for t in timeline.tracks] == [otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio]
    (cut,) = [m for m in timeline.tracks.markers if m.metadata["autoscore"]["kind"] == "cut"]
    assert cut.marked_range.start_time.value == 75


# -- import: an editor's markers as notes ------------------------------------------------------


def _marked_timeline(rate: int = 25, markers: bool = True) -> otio.schema.Timeline:
    """A 2 s gap then a clip (source 5 s to 25 s) and markers on the sequence and on the clip."""
    def t(seconds: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(seconds * rate, rate)

    def span(start: float, length: float) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(t(start), t(length))

    timeline = otio.schema.Timeline("rough cut", global_start_time=t(0))
    track = otio.schema.Track("V1", kind=otio.schema.TrackKind.Video)
    ref = otio.schema.ExternalReference(target_url="file:///media/a.mov", available_range=span(0, 30))
    clip = otio.schema.Clip("a", media_reference=ref, source_range=span(5, 20))
    track.extend([otio.schema.Gap(source_range=span(0, 2)), clip])
    timeline.tracks.append(track)
    if markers:
        clip.markers.append(otio.schema.Marker("the reveal", span(8, 0)))  # 2 + 8 - 5 = 5 s on the timeline
        timeline.tracks.markers.extend([otio.schema.Marker("calm opening", span(0, 4)),
                                        otio.schema.Marker("the build [energy: high]", span(10, 0))])
    return timeline


@pytest.mark.parametrize(("adapter", "suffix"), [("otio_json", ".otio"), ("fcp_xml", ".xml")])
def test_markers_written_by_the_adapters_read_back_as_notes(adapter: str, suffix: str, tmp_path: Path
                                                            ) -> None:
    path = tmp_path / f"cut{suffix}"
    otio.adapters.write_to_file(_marked_timeline(), str(path), adapter_name=adapter)
    notes = autoscore.text.notes.parse_notes(path).notes
    assert [(n.start, n.end, n.text, n.modifiers) for n in notes] == [
        (0.0, 4.0, "calm opening", ()),
        (5.0, None, "the reveal", ()),
        (10.0, None, "the build", (("energy", "high"),)),
    ]


def test_fcpxml_clip_markers_read_back_as_notes(tmp_path: Path) -> None:
    """The FCP X writer keeps markers on clips only (the sequence's are dropped)."""
    path = tmp_path / "cut.fcpxml"
    otio.adapters.write_to_file(_marked_timeline(), str(path), adapter_name="fcpx_xml")
    notes = autoscore.text.notes.parse_notes(path).notes
    assert [(n.start, n.end, n.text) for n in notes] == [(5.0, None, "the reveal")]


@pytest.mark.parametrize("rate", list(RATES.values()), ids=str)
def test_markers_of_our_own_fcpxml_come_back_within_a_frame(rate: Fraction, tmp_path: Path) -> None:
    path = tmp_path / "hour.fcpxml"
    path.write_bytes(fcpxml_bytes(_hour_plan(rate, tmp_path)))
    notes = autoscore.text.notes.parse_notes(path).notes
    assert [n.text for n in notes] == ["first half", "second half", "Cut 1"]
    frame = 1 / int(rate)  # the FCP X reader counts 29.97 as 29 frames a second and truncates
    expected = [(0.0, 1800.0), (1800.0, HOUR), (float((round(HOUR * rate) - 1) / rate), None)]
    for note, (start, end) in zip(notes, expected, strict=True):
        assert note.start == pytest.approx(start, abs=1.01 * frame)
        assert (note.end is None) == (end is None)
        if end is not None:
            assert note.end == pytest.approx(end, abs=2.01 * frame)  # start and length, each truncated


def test_edl_locators_read_back_as_notes(tmp_path: Path) -> None:
    """The CMX reader starts the timeline at the first event and reads only clip locators."""
    path = tmp_path / "cut.edl"
    otio.adapters.write_to_file(_marked_timeline(), str(path), adapter_name="cmx_3600")
    assert "* LOC:" in path.read_text()
    (note,) = autoscore.text.notes.parse_notes(path).notes
    assert (note.start, note.text.lower()) == (3.0, "the reveal")


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".fcpxml", ".edl"])
def test_a_timeline_without_markers_or_unreadable_says_so(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"cut{suffix}"
    adapter = {".otio": "otio_json", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml", ".edl": "cmx_3600"}[suffix]
    otio.adapters.write_to_file(_marked_timeline(markers=False), str(path), adapter_name=adapter)
    with pytest.raises(NotesError, match="has no markers"):
        autoscore.text.notes.parse_notes(path)
    path.write_text("this is not a timeline\n")
    with pytest.raises(NotesError, match="cannot be read as"):
        autoscore.text.notes.parse_notes(path)


def test_score_takes_markers_as_notes(talk: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    otio.adapters.write_to_file(_marked_timeline(), str(path), adapter_name="fcp_xml")
    job = autoscore.pipeline.plan_job(talk, backend="procedural", notes=path)
    assert job.notes_source == str(path)
    assert job.sections[0].text.startswith("calm opening")
    assert any(w.startswith("cut.xml marker 3") and "past the end" in w for w in job.warnings), job.warnings


# -- Final Cut Pro X -----------------------------------------------------------------------------


def _seconds(rational: str) -> Fraction:
    return Fraction(rational.rstrip("s"))


def _fcpx_levels(path: Path) -> tuple[ET.Element, list[tuple[float, float]]]:
    root = ET.parse(path).getroot()
    (music,) = [c for c in root.iter("clip") if c.get("name") == "autoscore music"]
    keys = music.findall("./adjust-volume/param[@name='amount']/keyframeAnimation/keyframe")
    return music, [(float(_seconds(k.get("time", ""))), float(k.get("value", "").removesuffix("dB")))
                   for k in keys]


def test_fcpxml_reads_back_with_volume_keyframes_and_markers(talk: Path, tmp_path: Path) -> None:
    path = tmp_path / "talk.fcpxml"
    result = autoscore.score(talk, tmp_path / "talk.scored.mp4", backend="procedural", timeline=path)
    assert result.mix is not None
    timeline = otio.adapters.read_from_file(str(path))
    kinds = sorted(t.kind for t in timeline.tracks)
    assert kinds == sorted([otio.schema.TrackKind.Video] + [otio.schema.TrackKind.Audio] * 2)
    for clip in timeline.find_clips():
        assert _resolve(clip.media_reference.target_url, path.parent).is_file()
    markers = [m.name for c in timeline.find_clips() for m in c.markers]
    assert markers == [s.text or f"Section {i}" for i, s in enumerate(result.sections, 1)] + [
        f"Cut {n}" for n in range(1, len(result.plan.cuts) + 1)]

    # The adapter reads NTSC times at a whole rate, so lengths and levels are checked in the XML itself.
    music, levels = _fcpx_levels(path)
    frame = Fraction(1001, 30000)
    assert abs(_seconds(music.get("duration", "")) - Fraction(result.duration)) <= frame
    assert ET.parse(path).getroot().find("./resources/format").get("frameDuration") == "1001/30000s"
    depth = load_preset("default").mix.duck_depth_db
    (start, _end), = result.mix.speech_regions
    outside = [db for t, db in levels if t < start - 0.3]
    under = [db for t, db in levels if t >= start]
    assert outside and under and max(under) < min(outside)
    assert np.mean(outside) - np.mean(under) == pytest.approx(depth, abs=2.0)


def test_fcpxml_of_an_episode_without_a_picture(tmp_path: Path) -> None:
    episode = make_media(tmp_path / "episode.wav", video=None, seconds=5)
    path = tmp_path / "episode.fcpxml"
    autoscore.score(episode, tmp_path / "episode.scored.wav", backend="procedural", timeline=path)
    timeline = otio.adapters.read_from_file(str(path))
    assert sorted(t.kind for t in timeline.tracks if len(t)) == [otio.schema.TrackKind.Audio] * 2
    assert _fcpx_levels(path)[1]


@pytest.mark.parametrize("rate", list(RATES.values()), ids=str)
def test_an_hour_of_fcpxml_is_exact_at_each_rate(rate: Fraction, tmp_path: Path) -> None:
    root = ET.fromstring(fcpxml_bytes(_hour_plan(rate, tmp_path)))
    assert _seconds(root.find("./resources/format").get("frameDuration", "")) == 1 / rate
    (music,) = [c for c in root.iter("clip") if c.get("name") == "autoscore music"]
    assert _seconds(music.get("duration", "")) == round(HOUR * rate) / rate
    markers = root.findall(".//spine/*/marker")
    assert [m.get("value") for m in markers] == ["first half", "second half", "Cut 1"]
    assert _seconds(markers[2].get("start", "")) == (round(HOUR * rate) - 1) / rate
    assert markers[0].get("note") == "calm piano"


def test_in_memory_clips_refuse_a_timeline() -> None:
    """A moviepy clip or pydub segment has no file to point at: the option is refused, not ignored."""
    from moviepy import ColorClip

    from autoscore.integrations.moviepy import score_clip

    with pytest.raises(OptionError, match="timeline"):
        score_clip(ColorClip((16, 16), (0, 0, 0), duration=1), timeline="cut.otio")
    from autoscore.integrations.pydub import _pydub, score_segment

    AudioSegment = _pydub()  # the class, found the way the integration finds it

    with pytest.raises(OptionError, match="timeline"):
        score_segment(AudioSegment.silent(500), timeline="cut.otio")


def test_a_timeline_that_cannot_be_written_takes_its_music_with_it(talk: Path, tmp_path: Path) -> None:
    from autoscore.media.pcm import PcmFile
    from autoscore.media.probe import probe
    from autoscore.mixing.mix import MixReport
    from autoscore.timeline.export import write

    raw = tmp_path / "music.f32"
    np.zeros((48000, 2), np.float32).tofile(raw)
    envelope = build_envelope([(0.2, 0.6)], 1.0, load_preset("default").mix)
    mix = MixReport(None, None, -10.0, 0.0, None, -1.0, ((0.2, 0.6),), envelope, 0.0, np.zeros(10))
    blocked = tmp_path / "cut.otio"
    blocked.mkdir()  # the rename onto it fails after the music is written
    with pytest.raises(OSError):
        write(blocked, probe(talk), (), (), PcmFile(raw, 48000), mix)
    assert not (tmp_path / "cut.music.flac").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otio", "music.f32"]


@pytest.mark.parametrize(("stamp", "suffix"), [("01:00:00;00", ".otio"), ("10:00:00:00", ".xml")])
def test_the_timeline_starts_at_the_inputs_timecode(stamp: str, suffix: str, tmp_path: Path) -> None:
    """A camera file that starts at 01:00:00;00 (29.97 drop-frame) or 10:00:00:00 gives a
    timeline that starts there, and the music still runs the clip's length from that start."""
    clip = tmp_path / "camera.mov"
    ff.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=30000/1001:d=4",
            "-f", "lavfi", "-i", "sine=d=4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            "-timecode", stamp, str(clip)], what="make camera.mov")
    path = tmp_path / f"camera{suffix}"
    result = autoscore.score(clip, tmp_path / "camera.scored.mov", backend="procedural", timeline=path)
    timeline = otio.adapters.read_from_file(str(path))
    rate = 30000 / 1001
    start = timeline.global_start_time
    assert start is not None
    assert otio.opentime.to_timecode(start, rate, drop_frame=";" in stamp) == stamp
    music = _music_clip(timeline)
    assert abs(music.source_range.duration.to_seconds() - result.duration) <= 1 / rate + 1e-9


def test_timecode_seconds_follow_smpte_drop_frame() -> None:
    ntsc = Fraction(30000, 1001)
    for stamp in ("00:00:00;00", "00:01:00;02", "00:10:00;00", "01:00:00;00", "23:59:59;29"):
        ours = timecode_seconds(stamp, ntsc)
        assert ours == pytest.approx(otio.opentime.from_timecode(stamp, 30000 / 1001).to_seconds(), abs=1e-6)
    assert timecode_seconds("01:00:00:00", Fraction(25)) == 3600.0
    assert timecode_seconds(None, Fraction(25)) == 0.0


def test_fcp7_audio_clips_name_their_source_track(talk: Path, tmp_path: Path) -> None:
    """Premiere's own FCP 7 XML gives each audio clip a <sourcetrack>; ours does too."""
    path = tmp_path / "talk.xml"
    autoscore.score(talk, tmp_path / "talk.scored.mp4", backend="procedural", timeline=path)
    root = ET.parse(path).getroot()
    items = [i for a in root.iter("audio") for t in a.findall("track") for i in t.findall("clipitem")]
    assert len(items) == 2
    assert all(i.findtext("sourcetrack/mediatype") == "audio" for i in items)
