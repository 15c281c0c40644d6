"""Podcast beds and [silence]: music only where the plan says, each stretch a piece of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, rms_db

import autoscore
from autoscore.media import ffmpeg as ff
from autoscore.media.ffmpeg import decode_audio
from autoscore.models import Section
from autoscore.music.plan import make_plan, music_spans, span_chunks
from autoscore.text.presets import Preset


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s: 3 s of room tone, the voice from 3 s to ~7.9 s, room tone to the end."""
    out = tmp_path_factory.mktemp("episode") / "episode.m4a"
    ff.run(["-loglevel", "error", "-i", str(DATA / "voice.flac"), "-f", "lavfi", "-i",
            "anoisesrc=color=brown:amplitude=0.002:d=12:r=48000", "-filter_complex",
            "[0:a]aresample=48000,adelay=3000:all=1,apad[v];[v][1:a]amix=inputs=2:normalize=0:duration=shortest,"
            "atrim=0:12[a]", "-map", "[a]", "-c:a", "aac", str(out)], what="make episode")
    return out


def _level(stem: np.ndarray, a: float, b: float) -> float:
    return rms_db(stem[int(a * 48000): int(b * 48000)])


def test_intro_bed_plays_alone_then_ducks_then_leaves_silence(episode: Path, tmp_path: Path) -> None:
    from autoscore.text.presets import load_preset, override

    preset = override(load_preset("podcast-intro"), {"structure.intro": 9.0})
    stems = tmp_path / "stems"
    result = autoscore.score(episode, tmp_path / "ep.m4a", preset=preset, stems=stems)
    assert result.plan.spans == ((0.0, 9.0),)
    music = decode_audio(stems / "music_ducked.wav", 48000, 2).samples
    alone, under_voice = _level(music, 1.2, 2.7), _level(music, 3.4, 4.8)
    assert alone > -40
    assert alone - under_voice == pytest.approx(preset.mix.duck_depth_db, abs=3.0)
    assert _level(music, 9.2, 12.0) < -90  # past the bed: silence


def test_bed_command_lays_intro_and_outro(episode: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from autoscore.cli import main

    stems = tmp_path / "s"
    with pytest.raises(SystemExit) as exc:
        main(["bed", str(episode), "--intro", "5", "--outro", "3", "-o", str(tmp_path / "bed.mp3"),
              "--stems", str(stems)])
    assert exc.value.code in (0, None)
    music = decode_audio(stems / "music_ducked.wav", 48000, 2).samples
    assert _level(music, 1.2, 2.7) > -40  # intro bed, before the voice
    assert _level(music, 5.3, 8.7) < -90  # between the beds: nothing
    assert _level(music, 9.3, 11.0) > -40  # outro bed
    assert abs(music[-1]).max() < 0.01  # it ends with the episode, faded
    assert "Backend: procedural" in capsys.readouterr().out


def _section(i: int, a: float, b: float, silent: bool = False) -> Section:
    mods = (("silence", ""),) if silent else ()
    return Section(i, a, b, f"part {i}", f"prompt {i}", "", "build", 0.5, mods)


def test_silence_splits_the_plan_into_spans() -> None:
    sections = [_section(0, 0, 100), _section(1, 100, 130, silent=True), _section(2, 130, 400)]
    assert music_spans(400, sections) == ((0.0, 100.0), (130.0, 400.0))
    plan = make_plan(400, sections, Preset(), backend_name="wavespeed", price_per_request=0.0217,
                     outpaint_price=0.0446)
    groups = span_chunks(plan)
    assert [len(chunks) for _, chunks in groups] == [1, 3]
    for (start, end), chunks in groups:
        assert chunks[0].start == start and chunks[-1].end >= end - 1e-6
        assert chunks[0].is_first and chunks[-1].is_last
        assert [c.is_first for c in chunks].count(True) == 1 and [c.is_last for c in chunks].count(True) == 1
    assert [c.index for c in plan.chunks] == list(range(4))
    assert len({c.seed for c in plan.chunks}) == 4
    assert plan.cost_crossfade == pytest.approx(4 * 0.0217)


def test_all_silence_plans_nothing() -> None:
    plan = make_plan(60, [_section(0, 0, 60, silent=True)], Preset(), backend_name="procedural",
                     price_per_request=0, outpaint_price=0)
    assert plan.chunks == () and plan.spans == ()
