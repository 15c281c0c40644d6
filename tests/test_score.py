"""End to end on generated media: the picture is copied, the music is there, lengths match."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Media, level_between, packet_hashes, with_chapters

import autoscore
from autoscore.media.probe import probe
from autoscore.text.presets import load_preset


def _score(src: Path, out: Path, **kw: object) -> autoscore.ScoreResult:
    return autoscore.score(src, out, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["mp4", "vertical", "mkv", "webm", "mov", "mp4_noaudio"])
def test_video_is_copied_and_scored(media: Media, tmp_path: Path, kind: str) -> None:
    src: Path = getattr(media, kind)
    out = tmp_path / f"out{src.suffix}"
    result = _score(src, out)
    assert result.output == out and out.is_file()
    assert result.backend == "procedural"
    src_info, out_info = probe(src), probe(out)
    assert abs(out_info.duration - src_info.duration) <= src_info.frame_duration + 1e-6
    assert packet_hashes(out) == packet_hashes(src)
    assert out_info.audio is not None and out_info.audio.sample_rate == 48000
    expected = {".mp4": "aac", ".mov": "aac", ".webm": "opus"}.get(src.suffix)
    if src.suffix == ".mkv":
        expected = src_info.audio.codec if src_info.audio else "vorbis"
    assert out_info.audio.codec == expected
    assert not list(tmp_path.glob(".*part*")), "temporary files left behind"


def test_music_is_audible_where_the_input_is_silent(media: Media, tmp_path: Path) -> None:
    out = tmp_path / "scored.mp4"
    _score(media.mp4, out)
    # clip.mp4: silence for 2 s, then speech; the fade-in is over by 1 s.
    assert level_between(media.mp4, 1.2, 1.9) < -80
    assert level_between(out, 1.2, 1.9) > -40


def test_metadata_and_faststart_are_kept(media: Media, tmp_path: Path) -> None:
    out = tmp_path / "meta.mp4"
    _score(media.mp4, out)
    from autoscore.media import ffmpeg as ff

    banner = ff.run(["-i", str(out), "-f", "ffmetadata", "-"], what="read tags").stdout.decode()
    assert "title=Test clip" in banner and "comment=keep me" in banner
    head = out.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and head.find(b"moov") < max(head.find(b"mdat"), 4096)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "m4a", "ogg", "opus"])
def test_audio_only_keeps_its_format(media: Media, tmp_path: Path, fmt: str) -> None:
    src = media.audio[fmt]
    result = _score(src, None if fmt == "wav" else tmp_path / f"out.{fmt}")
    out = result.output
    assert out is not None and out.suffix == f".{fmt}"
    if fmt == "wav":
        assert out == src.with_name("talk.scored.wav")
    info = probe(out)
    assert info.is_audio_only and info.duration == pytest.approx(4.0, abs=0.06)
    assert level_between(out, 1.2, 1.9) > -40
    if fmt == "wav":
        out.unlink()


def test_audio_format_can_be_requested(media: Media, tmp_path: Path) -> None:
    out = tmp_path / "bed.aac"
    autoscore.score(media.audio["mp3"], out, format="aac")
    assert probe(out).audio.codec == "aac"  # type: ignore[union-attr]
    video_to_audio = autoscore.score(media.mp4, tmp_path / "mix.flac")
    assert probe(video_to_audio.output).is_audio_only  # type: ignore[arg-type]


def test_input_is_never_modified(media: Media, tmp_path: Path) -> None:
    from conftest import file_digest

    before = file_digest(media.mov)
    _score(media.mov, tmp_path / "x.mov")
    assert file_digest(media.mov) == before


def test_result_reports_sections_cost_and_timings(media: Media, tmp_path: Path) -> None:
    notes = tmp_path / "n.txt"
    notes.write_text("0:00 calm start\n0:02 speech begins [energy: high]\n")
    result = _score(media.mp4, tmp_path / "n.mp4", notes=notes, preset="vlog")
    # The 2 s note is under vlog's min_section, so the two notes make one section of the 5 s clip.
    assert [(s.start, s.end, s.text) for s in result.sections] == [(0.0, 5.0, "calm start; speech begins")]
    assert result.cost == 0.0
    assert {"probe", "plan", "generate", "assemble", "mix", "total"} <= set(result.timings)
    target = load_preset("vlog").mix.target_lufs
    assert result.mix is not None and result.mix.integrated_lufs == pytest.approx(target, abs=1.0)


def test_music_track_stems_and_report(media: Media, tmp_path: Path) -> None:
    out = tmp_path / "two-tracks.mkv"
    stems = tmp_path / "stems"
    picture = tmp_path / "mix.png"
    result = autoscore.score(media.mkv, out, music_track=True, stems=stems, report=picture)
    from autoscore.media import ffmpeg as ff

    banner = ff.run(["-i", str(out), "-f", "ffmetadata", "-"], what="read").stderr.decode()
    assert banner.count("Audio:") == 2 and "Music (ducked)" in banner
    names = sorted(p.name for p in stems.iterdir())
    assert names == ["mix.wav", "music.wav", "music_ducked.wav", "original.wav"]
    assert picture.stat().st_size > 10_000 and picture.read_bytes()[:4] == b"\x89PNG"
    assert result.stems == stems and result.report == picture


def test_second_run_is_served_from_cache(media: Media, tmp_path: Path) -> None:
    first = autoscore.score(media.vertical, tmp_path / "a.mp4", cache_dir=tmp_path / "cache")
    again = autoscore.score(media.vertical, tmp_path / "b.mp4", cache_dir=tmp_path / "cache")
    # A 3 s clip is one chunk: made once, then found in the cache.
    assert (first.requests, first.cache_hits) == (1, 0)
    assert (again.requests, again.cache_hits) == (0, 1)


def test_embedded_chapters_become_sections_when_no_notes(media: Media, tmp_path: Path) -> None:
    chapters = [(0, 2500, "Quiet dawn [energy: low]"), (2500, 5000, "Racing finale [energy: high]")]
    chaptered = with_chapters(media.mp4, tmp_path / "chaptered.mp4", chapters)
    job = autoscore.plan_job(chaptered, preset=autoscore_preset_with_short_sections())
    assert job.notes_source == "chapters"
    assert [round(s.start, 1) for s in job.sections] == [0.0, 2.5]
    assert "dawn" in job.sections[0].prompt and "finale" in job.sections[1].prompt


def autoscore_preset_with_short_sections() -> object:
    from autoscore.text.presets import load_preset, override

    return override(load_preset(None), {"structure.min_section": 1.0})


def test_output_gets_the_usual_file_mode(media: Media, tmp_path: Path) -> None:
    """Not mkstemp's private 0600: what a plainly created file would get under the umask."""
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    out = _score(media.audio["wav"], tmp_path / "mode.wav").output
    assert out is not None and (out.stat().st_mode & 0o777) == 0o666 & ~umask
