"""The pydub helpers, and `autoscore generate` on the same path as `score`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from autoscore.integrations.pydub import generate_segment, score_segment
from autoscore.media.probe import probe


def test_generate_segment_is_the_asked_length_of_music() -> None:
    segment = generate_segment("warm lo-fi piano, 80 BPM", 3, backend="procedural", use_cache=False)
    assert (segment.frame_rate, segment.channels) == (48000, 2)
    assert len(segment) == pytest.approx(3000, abs=2)  # milliseconds
    assert segment.rms > 100  # music, not silence (16-bit RMS)


def test_score_segment_returns_the_episode_with_music_under_it(tmp_path: Path) -> None:
    from pydub import AudioSegment

    episode = AudioSegment.silent(duration=4000, frame_rate=48000).set_channels(2)
    scored = score_segment(episode, backend="procedural", use_cache=False)
    assert len(scored) == pytest.approx(4000, abs=25)
    assert scored.rms > 100 and episode.rms == 0  # the input is unchanged, the output has music


def test_generate_writes_tags_through_ffmpeg_and_can_fall_back(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bed.flac"
    code, stdout, err = run_cli(["generate", "calm strings, 70 BPM", "-d", "3", "-o", str(out),
                                 "--backend", "wavespeed", "--api-key", "wsk-unreachable-0000",
                                 "--api-base", "http://127.0.0.1:9", "--fallback", "procedural",
                                 "--timeout", "4"], capsys)
    assert code == 0, err
    assert "Backend: procedural" in stdout and "procedural composer instead" in err
    info = probe(out)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    from autoscore.media.ffmpeg import run

    tags = run(["-i", str(out), "-f", "ffmetadata", "-"], what="read tags").stdout.decode()
    assert "title=calm strings, 70 BPM" in tags and "artist=autoscore" in tags
    assert "procedural backend, seed 0" in tags
