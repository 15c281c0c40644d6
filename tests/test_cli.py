"""The real entry point on bad input: one line, the right exit code, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Media, run_cli


def _only_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["missing.mp4"], 1, "does not exist"),
        (["text.mp4"], 1, "not a readable media file"),
        (["empty.mp4"], 1, "is empty"),
    ],
)
def test_bad_inputs(folder: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                    message: str) -> None:
    before = _listing(folder)
    got, _, err = run_cli(["score", str(folder / args[0])], capsys)
    assert got == code
    line = _only_error_line(err)
    assert line.startswith("Error: ") and message in line
    assert _listing(folder) == before


def test_truncated_file(media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.mp4"
    data = media.mp4_noaudio.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    code, _, err = run_cli(["score", str(cut)], capsys)
    assert code == 1 and "corrupt, truncated or misnamed" in _only_error_line(err)
    assert _listing(tmp_path) == {"cut.mp4"}


def test_output_equal_to_input(media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "same.mp4"
    src.write_bytes(media.mp4.read_bytes())
    before = src.read_bytes()
    code, _, err = run_cli(["score", str(src), "-o", str(tmp_path / "." / "same.mp4")], capsys)
    assert code == 2 and "is the input itself" in _only_error_line(err)
    assert src.read_bytes() == before and _listing(tmp_path) == {"same.mp4"}


@pytest.mark.parametrize(
    ("out", "message"),
    [("no/such/folder/out.mp4", "does not exist"), ("/proc/out.mp4", "not writable")],
)
def test_output_folder_problems(media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str,
                                message: str) -> None:
    target = out if out.startswith("/") else str(tmp_path / out)
    code, _, err = run_cli(["score", str(media.mp4), "-o", target], capsys)
    assert code == 2 and message in _only_error_line(err)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "no-such-style"], "Preset 'no-such-style' not found"),
        (["--format", "avi"], "Invalid value for '-f' / '--format'"),
        (["-o", "{tmp}/x.avi"], "Unknown output format 'avi'"),
        (["--loudness", "3"], "'--loudness': 3.0 is not in the range -40<=x<=-5"),
    ],
)
def test_usage_errors_exit_2(media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             extra: list[str], message: str) -> None:
    argv = ["score", str(media.mp4), *[e.replace("{tmp}", str(tmp_path)) for e in extra]]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
    assert not list(media.mp4.parent.glob("clip.scored*"))


def test_no_video_to_video_container(
    media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["score", str(media.audio["mp3"]), "-o", str(tmp_path / "x.mp4")], capsys)
    assert code == 2 and "has no video" in _only_error_line(err)


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--debug", "score", str(tmp_path / "missing.mp4")], capsys)
    assert code == 1 and "Traceback" in err and "does not exist" in err


def test_score_prints_backend_and_writes(
    media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ok.mp4"
    code, stdout, _ = run_cli(["score", str(media.mp4), "-o", str(out)], capsys)
    assert code == 0 and out.is_file()
    assert "Backend: procedural" in stdout and str(out) in stdout


def test_dry_run_and_plan_json(media: Media, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["score", str(media.mp4), "-o", str(tmp_path / "d.mp4"), "--dry-run"], capsys)
    assert code == 0 and "Cost:" in stdout and "1 request" in stdout and not list(tmp_path.iterdir())
    code, stdout, _ = run_cli(["plan", str(media.mp4), "--json"], capsys)
    data = json.loads(stdout)
    assert code == 0 and data["chunks"] and data["chunks"][0]["duration"] == 5


def test_generate_writes_any_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.ogg"
    code, stdout, _ = run_cli(["generate", "calm piano, 80 BPM", "-d", "3", "-o", str(out)], capsys)
    assert code == 0 and out.stat().st_size > 1000 and "Wrote" in stdout
    code, stdout, _ = run_cli(["generate", "noir trip-hop, no drums", "--explain"], capsys)
    assert code == 0 and stdout.strip()


def test_presets_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["presets", "list"], capsys)
    assert code == 0 and "podcast-intro" in stdout and "noir-trip-hop" in stdout
    code, stdout, _ = run_cli(["presets", "show", "podcast-outro"], capsys)
    assert code == 0 and "[mix]" in stdout
