"""``autoscore batch`` through the real entry point: good files finish, a bad one is reported, reruns skip."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import make_media

from autoscore.batch import expand_inputs, is_finished, output_for, run_batch
from autoscore.cli import main
from autoscore.errors import OptionError
from autoscore.media.probe import probe

GOOD = [f"clip{i}" for i in range(5)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five tiny 2.5 s clips, one corrupt 'video', and notes beside clip1."""
    d = tmp_path_factory.mktemp("batch-in")
    for name in GOOD:
        make_media(d / f"{name}.mp4", seconds=2.5, video="64x36", fps=10, acodec="aac")
    (d / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    (d / "clip1.notes.txt").write_text("0:00 quiet morning\n0:01 the storm arrives [energy: high]\n")
    (d / "readme.txt").write_text("not media: a folder argument skips it")
    return d


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_batch_finishes_the_good_files_reports_the_bad_and_reruns_skip(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = _run(["batch", str(folder), "--out", str(out_dir), "--jobs", "2", "--json"], capsys)
    assert code == 1
    assert "bad.mp4" in err and "1 of 6" in err
    report = json.loads(out)
    assert (report["ok"], report["skipped"], report["failed"]) == (5, 0, 1)
    by_name = {Path(f["input"]).name: f for f in report["files"]}
    assert set(by_name) == {f"{n}.mp4" for n in GOOD} | {"bad.mp4"}
    assert "not a readable media file" in by_name["bad.mp4"]["message"]
    assert by_name["bad.mp4"]["output"] is None
    assert by_name["clip1.mp4"]["notes"].endswith("clip1.notes.txt")
    assert by_name["clip0.mp4"]["notes"] == "cuts"  # no notes: the sections come from the picture
    for name in GOOD:
        written = out_dir / f"{name}.scored.mp4"
        assert by_name[f"{name}.mp4"]["output"] == str(written)
        info = probe(written)
        assert info.video is not None and info.audio is not None
        assert info.duration == pytest.approx(2.5, abs=0.15)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{n}.scored.mp4" for n in GOOD)

    # The rerun skips the five finished files, tries the bad one again, and still fails.
    code, out, err = _run(["batch", str(folder / "*.mp4"), "--out", str(out_dir)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert sum(line.startswith("skipped") for line in lines) == 5
    assert any(line.startswith("failed") and "bad.mp4" in line for line in lines)
    assert lines[-1].startswith("0 scored, 5 skipped, 1 failed")

    # An input edited since its output was written is scored again; only that one.
    future = time.time() + 60
    os.utime(folder / "clip3.mp4", (future, future))
    code, out, _ = _run(["batch", str(folder / "clip3.mp4"), str(folder / "clip4.mp4"),
                         "--out", str(out_dir), "--json"], capsys)
    assert code == 0
    statuses = {Path(f["input"]).name: f["status"] for f in json.loads(out)["files"]}
    assert statuses == {"clip3.mp4": "ok", "clip4.mp4": "skipped"}


def test_folders_globs_and_missing_inputs_are_expanded(tmp_path: Path) -> None:
    for name in ("a.mp4", "a.scored.mp4", "a.notes.txt", "b.wav", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    files, missing = expand_inputs([tmp_path, str(tmp_path / "*.wav"), tmp_path / "a.mp4",
                                    tmp_path / "nope.mp4", str(tmp_path / "*.mkv")])
    assert [p.name for p in files] == ["a.mp4", "b.wav"]
    assert [(m.input.name, m.status) for m in missing] == [("nope.mp4", "failed"), ("*.mkv", "failed")]
    assert "does not exist" in missing[0].message and "No media files match" in missing[1].message


def test_outputs_are_named_per_input_and_never_collide(tmp_path: Path) -> None:
    assert output_for(Path("x/talk.wav"), None) == Path("x/talk.scored.wav")
    assert output_for(Path("x/talk.wav"), Path("o"), "mp3") == Path("o/talk.scored.mp3")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "clip.mp4").write_bytes(b"")
    with pytest.raises(OptionError, match="both be written"):
        run_batch([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(OptionError, match="--jobs"):
        run_batch([tmp_path / "a"], tmp_path / "out", jobs=0)


def test_newer_notes_make_a_finished_output_stale(tmp_path: Path) -> None:
    src, out, notes = tmp_path / "v.mp4", tmp_path / "v.scored.mp4", tmp_path / "v.notes.txt"
    src.write_bytes(b"")
    assert not is_finished(src, out)
    out.write_bytes(b"")
    os.utime(src, (1_000, 1_000))
    assert is_finished(src, out)
    notes.write_text("0:00 calm")
    os.utime(out, (2_000, 2_000))
    assert not is_finished(src, out)


def test_a_batch_that_cannot_start_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "clip.mp4").write_bytes(b"")
    code, _, err = _run(["batch", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")],
                        capsys)
    assert code == 2 and err.startswith("Error:") and "both be written" in err
