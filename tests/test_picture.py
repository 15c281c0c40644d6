"""Issue 18 end to end: videos made with ffmpeg, their cuts found, the music made to follow them.

The montages are H.264 with a fixed GOP (cuts fall between keyframes). Sections, energies,
joins and the tempo are read from ``autoscore plan --json``; whether the cuts land on beats
is measured on the rendered music with librosa's beat tracker, not read from the plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
from conftest import make_media, run_cli

from autoscore.media import ffmpeg as ff
from autoscore.pipeline import score

FPS = 25
SIZE = "160x90"
SOURCES = (  # seeded, so that every run makes the same pictures
    "testsrc2", "smptebars", "mandelbrot", "color=c=0x446688,noise=alls=25:allf=t:all_seed=5", "rgbtestsrc",
    "life=mold=10:ratio=0.3:seed=9:death_color=#202040:life_color=#e0c080", "gradients=speed=0.05:seed=3",
    "color=c=0xc08040,noise=alls=25:allf=t:all_seed=7",
)


def montage(path: Path, frames: list[int]) -> Path:
    """Shots of ``frames`` frames each, from sources in turn; every join is a hard cut."""
    parts = []
    for i, n in enumerate(frames):
        name, _, opts = SOURCES[i % len(SOURCES)].partition("=")
        head, _, rest = opts.partition(",")
        src = f"{name}=s={SIZE}:r={FPS}" + (f":{head}" if head else "") + (f",{rest}" if rest else "")
        parts.append(f"{src},trim=end_frame={n},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[v{i}]")
    joins = "".join(f"[v{i}]" for i in range(len(frames)))
    graph = ";".join(parts) + f";{joins}concat=n={len(frames)}:v=1:a=0[out]"
    ff.run(["-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
            "-preset", "ultrafast", "-g", "48", "-keyint_min", "48", "-sc_threshold", "0", str(path)],
           what=f"make {path.name}")
    return path


def cut_times(frames: list[int]) -> list[float]:
    return [float(t) / FPS for t in np.cumsum(frames)[:-1]]


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """12 s held, a montage of 1.2 s shots to 27.6 s, then 14.4 s held: 42 s in all."""
    frames = [300, *[30] * 13, 360]
    return montage(tmp_path_factory.mktemp("paced") / "paced.mp4", frames), cut_times(frames)


def plan_json(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code, out, err = run_cli(["plan", str(path), "--json", *args], capsys)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_sections_start_on_cuts_and_a_montage_scores_higher_than_held_shots(
    paced: tuple[Path, list[float]], capsys: pytest.CaptureFixture[str],
) -> None:
    path, cuts = paced
    data = plan_json(path, capsys)
    assert data["cuts"] == pytest.approx(cuts, abs=1 / FPS)
    sections = data["sections"]
    assert {s["source"] for s in sections} == {"cuts"}
    assert all(min(abs(s["start"] - c) for c in cuts) <= 1 / FPS for s in sections[1:])
    by_time = {s["start"]: s["energy"] for s in sections}
    montage_energy = max(e for t, e in by_time.items() if 11 < t < 20)
    held = [e for t, e in by_time.items() if t < 1 or t > 27]
    assert montage_energy > max(held) + 0.15, sections
    assert data["bpm"] and data["beat_phase"] is not None and data["cuts_on_beat"] is not None


def test_cuts_on_a_common_bar_land_on_beats_of_the_rendered_music(tmp_path: Path) -> None:
    """Shots of 2.4 s (four beats at 100 BPM, within 8 % of the preset's 96): the fitted tempo
    and downbeat put the cuts on beats. The beats are found by librosa in the music stem."""
    frames = [45, *[60] * 11, 75]
    cuts = cut_times(frames)
    video = montage(tmp_path / "bars.mp4", frames)
    score(video, tmp_path / "scored.mp4", backend="procedural", use_cache=False, stems=tmp_path / "stems")
    y, sr = soundfile.read(tmp_path / "stems" / "music.wav", dtype="float32", always_2d=True)
    mono = librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=22050)
    _, beats = librosa.beat.beat_track(y=mono, sr=22050, units="time")
    near = [min(abs(beats - c)) <= 0.070 for c in cuts]
    assert sum(near) >= 0.8 * len(cuts), f"cuts {np.round(cuts, 2)}; beats {np.round(beats, 2)}"


def test_notes_win_and_with_cuts_on_snap_onto_the_cuts(
    paced: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = paced
    notes = tmp_path / "n.txt"
    notes.write_text("0:00 quiet open\n0:11.8 the montage [energy: high]\n0:28 calm again\n")
    auto = plan_json(path, capsys, "--notes", str(notes))
    assert auto["cuts"] == [] and {s["source"] for s in auto["sections"]} == {"notes"}
    assert [s["start"] for s in auto["sections"]] == [0, 11.8, 28]
    on = plan_json(path, capsys, "--notes", str(notes), "--cuts", "on")
    starts = [s["start"] for s in on["sections"]]
    assert starts[1] == pytest.approx(12.0, abs=1 / FPS) and starts[2] == pytest.approx(27.6, abs=1 / FPS)


def test_cuts_off_decodes_nothing_and_a_single_shot_is_one_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    clip = make_media(tmp_path / "one.mp4", seconds=6)
    off = plan_json(clip, capsys, "--cuts", "off")
    assert off["cuts"] == [] and off["beat_phase"] is None
    single = plan_json(clip, capsys)
    assert single["cuts"] == [] and len(single["sections"]) == 1
    assert single["sections"][0]["source"] == "cuts"


def test_cuts_on_an_audio_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    episode = make_media(tmp_path / "episode.wav", seconds=3, video=None)
    code, _, err = run_cli(["plan", str(episode), "--cuts", "on"], capsys)
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "audio only" in err and "--cuts" in err
    code, _, err = run_cli(["plan", str(episode)], capsys)  # auto: nothing to follow, no error
    assert code == 0, err


def test_notes_out_writes_sections_that_read_back_the_same(
    paced: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = paced
    written = tmp_path / "derived.notes.txt"
    first = plan_json(path, capsys, "--notes-out", str(written))
    again = plan_json(path, capsys, "--notes", str(written))
    assert [(s["start"], s["energy"]) for s in again["sections"]] == [
        (pytest.approx(s["start"], abs=0.01), s["energy"]) for s in first["sections"]]


def test_joins_of_a_five_minute_clip_land_on_cuts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Five minutes need three requests or more; every join the plan makes sits on a cut."""
    frames = [170 + 13 * (k % 5) for k in range(36)]  # shots of 6.8 to 8.9 s
    frames.append(300 * FPS - sum(frames))
    video = montage(tmp_path / "five.mp4", frames)
    data = plan_json(video, capsys)
    assert len(data["cuts"]) >= 0.95 * (len(frames) - 1)
    assert len(data["joins"]) >= 2 and all(j["on_cut"] for j in data["joins"]), data["joins"]
    assert all(c["duration"] <= 120 for c in data["chunks"])
