"""Shot-cut detection on videos made here: lavfi shots joined at known frames.

Every montage is H.264 with a fixed GOP of 48 and no scene-cut keyframes, and no cut sits
on a multiple of 48, so a detector that only looked at keyframes would find nothing.
Fades of brightness and camera-like pans are made the same way and must give no cut.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from autoscore.errors import InputError
from autoscore.media import cuts as cuts_module
from autoscore.media import ffmpeg as ff
from autoscore.media.cuts import find_cuts
from autoscore.media.probe import probe
from autoscore.models import MediaInfo, PictureCuts, VideoStream
from autoscore.picture.detect import DetectSettings, FrameScorer, cut_frames, picture_cuts

FPS = 25
SIZE = "320x180"
GOP = ["-g", "48", "-keyint_min", "48", "-sc_threshold", "0"]

SHOTS = [  # (source, frames): each join is a cut; the cut frames are 37, 66, 117, 140, 184, 215
    ("testsrc2=s={s}:r={r}", 37),
    ("smptebars=s={s}:r={r}", 29),
    ("mandelbrot=s={s}:r={r}", 51),
    ("color=c=0x446688:s={s}:r={r},noise=alls=20:allf=t", 23),
    ("cellauto=s={s}:r={r}:rule=110:random_fill_ratio=0.5", 44),
    ("life=s={s}:r={r}:mold=10:ratio=0.3:death_color=#202040:life_color=#e0c080", 31),
    ("gradients=s={s}:r={r}:speed=0.05:seed=3", 40),
]
CUT_FRAMES = list(np.cumsum([f for _, f in SHOTS])[:-1])


def _encode(path: Path, graph: str, *, extra: list[str] | None = None) -> Path:
    ff.run(["-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", *GOP, *(extra or []), str(path)],
           what=f"make {path.name}")
    return path


def _montage(path: Path, shots: list[tuple[str, int]], *, extra: list[str] | None = None) -> Path:
    tail = "setpts=PTS-STARTPTS,format=yuv420p,setsar=1"
    parts = [f"{src.format(s=SIZE, r=FPS)},trim=end_frame={n},{tail}[v{i}]"
             for i, (src, n) in enumerate(shots)]
    joins = "".join(f"[v{i}]" for i in range(len(shots)))
    return _encode(path, ";".join(parts) + f";{joins}concat=n={len(shots)}:v=1:a=0[out]", extra=extra)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cuts")
    w, h = (int(v) for v in SIZE.split("x"))
    still_frame = f"testsrc2=s={SIZE}:r={FPS}:d=0.04,loop=loop=124:size=1:start=0"
    return {
        "montage": _montage(d / "montage.mp4", SHOTS, extra=["-movflags", "+faststart"]),
        "fades": _encode(d / "fades.mp4", (  # to black and back, then a dip of brightness
            f"testsrc2=s={SIZE}:r={FPS}:d=6,split[a][b];[a]trim=0:2,fade=t=out:st=1:d=1[x];"
            "[b]trim=2:6,setpts=PTS-STARTPTS,fade=t=in:st=0:d=1,"
            "eq=brightness='if(between(t,2,3.5),-0.6*sin((t-2)/1.5*PI),0)':eval=frame[y];"
            "[x][y]concat=n=2:v=1:a=0[out]")),
        "pan": _encode(d / "pan.mp4", (
            f"testsrc2=s={w * 3}x{h}:r={FPS}:d=5,crop={w}:{h}:x='min(t*{w // 2},{w * 2})':y=0[out]")),
        "mandel_pan": _encode(d / "mandel_pan.mp4", (
            f"mandelbrot=s={w * 2}x{h}:r={FPS}:end_pts=100,trim=duration=4,"
            f"crop={w}:{h}:x='t*{w // 4}':y=0[out]")),
        "still": _encode(d / "still.mp4", f"{still_frame}[out]"),
        "moving": _encode(d / "moving.mp4", f"testsrc2=s={SIZE}:r={FPS}:d=5[out]"),
    }


def _times(cut_frames: list[int], offset: float = 0.0) -> list[float]:
    return [offset + f / FPS for f in cut_frames]


def _assert_cuts(found: tuple[float, ...], expected: list[float]) -> None:
    assert len(found) == len(expected), (found, expected)
    for got, want in zip(found, expected, strict=True):
        assert abs(got - want) <= 1 / FPS + 1e-6, (found, expected)


def test_every_cut_between_keyframes_is_found_to_the_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    assert all(f % 48 for f in CUT_FRAMES)
    path = clips["montage"]
    result = find_cuts(path, probe(path), cache_dir=tmp_path)
    _assert_cuts(result.cuts, _times(CUT_FRAMES))
    assert result.cuts == pytest.approx(_times(CUT_FRAMES), abs=1e-3)  # in fact exactly on the frame
    assert result.analysed == pytest.approx(sum(n for _, n in SHOTS) / FPS, abs=0.05)
    assert result.fps == pytest.approx(FPS)
    assert result.detector == DetectSettings().key()


def test_cut_times_are_the_frames_own_timestamps_when_the_picture_starts_late(
        clips: dict[str, Path], tmp_path: Path) -> None:
    """Video starting 0.6 s after the audio: cuts are on the file's timeline, not frame/fps."""
    late = tmp_path / "late.mp4"
    ff.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
            "-itsoffset", "0.6", "-i", str(clips["montage"]), "-map", "1:v", "-map", "0:a",
            "-c:v", "copy", "-c:a", "aac", "-t", "12", str(late)], what="delay the picture")
    result = find_cuts(late, probe(late), use_cache=False)
    _assert_cuts(result.cuts, _times(CUT_FRAMES, 0.6))


@pytest.mark.parametrize("name", ["fades", "pan", "mandel_pan", "still", "moving"])
def test_fades_pans_stills_and_single_shots_give_no_cut(clips: dict[str, Path], name: str) -> None:
    result = find_cuts(clips[name], probe(clips[name]), use_cache=False)
    assert result.cuts == ()
    assert result.analysed > 3.5


def test_a_still_image_file_gives_no_cut_and_no_error(tmp_path: Path) -> None:
    png = tmp_path / "still.png"
    ff.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={SIZE}", "-frames:v", "1",
            str(png)], what="make a picture")
    # probe turns a picture away (it has no length to score); cut detection still copes
    info = MediaInfo(png, 0.04, "png_pipe", VideoStream(0, "png", 320, 180, None), None)
    warnings: list[str] = []
    result = find_cuts(png, info, use_cache=False, warn=warnings.append)
    assert result.cuts == () and result.motion == () and warnings == []


def test_motion_is_higher_for_a_moving_shot_than_a_still_one(clips: dict[str, Path]) -> None:
    moving = find_cuts(clips["moving"], probe(clips["moving"]), use_cache=False)
    still = find_cuts(clips["still"], probe(clips["still"]), use_cache=False)
    assert still.motion_between(0, 5) < 0.002
    assert moving.motion_between(0, 5) > 10 * max(still.motion_between(0, 5), 0.001)
    assert [t for t, _ in moving.motion][:3] == [0.0, 0.5, 1.0]
    assert all(0.0 <= v <= 1.0 for _, v in moving.motion)


def test_a_truncated_file_warns_and_keeps_the_cuts_before_the_damage(
        clips: dict[str, Path], tmp_path: Path) -> None:
    data = clips["montage"].read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) * 6 // 10])
    info = probe(broken)
    warnings: list[str] = []
    result = find_cuts(broken, info, use_cache=False, warn=warnings.append)
    assert len(warnings) == 1 and "broken.mp4" in warnings[0] and "re-export" in warnings[0]
    assert result.analysed < info.duration - 1
    kept = [t for t in _times(CUT_FRAMES) if t < result.analysed - 0.2]
    assert kept, "the damage should come after some cuts"
    _assert_cuts(tuple(t for t in result.cuts if t < result.analysed - 0.2), kept)


def test_the_cache_makes_the_second_call_decode_nothing(clips: dict[str, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    real = ff.Reader

    class Counting(real):  # type: ignore[misc,valid-type]
        def __init__(self, args: list[str], *, what: str) -> None:
            started.append(list(args))
            super().__init__(args, what=what)

    monkeypatch.setattr(cuts_module.ff, "Reader", Counting)
    path = clips["montage"]
    info = probe(path)
    first = find_cuts(path, info, cache_dir=tmp_path)
    entries = list((tmp_path / "cuts").glob("*.json"))
    assert len(started) == 1 and len(entries) == 1
    copy = tmp_path / "copy.mp4"  # same content, other name and time: still a hit
    copy.write_bytes(path.read_bytes())
    second = find_cuts(copy, probe(copy), cache_dir=tmp_path)
    assert len(started) == 1 and second == first
    find_cuts(path, info, cache_dir=tmp_path, use_cache=False)
    assert len(started) == 2
    find_cuts(path, info, cache_dir=tmp_path, settings=DetectSettings(min_shot=0.5))
    assert len(started) == 3, "other settings are another key"


def test_the_decode_is_small_gray_video_only_and_every_frame(clips: dict[str, Path]) -> None:
    args = ff.gray_frames_args(clips["montage"], 160, 88)
    assert "-skip_frame" not in args and "nokey" not in " ".join(args)
    assert {"-an", "-sn", "-dn"} <= set(args)
    assert "scale=160:88:flags=area,format=gray,showinfo" in args


def test_an_input_without_picture_is_an_input_error(tmp_path: Path) -> None:
    wav = tmp_path / "talk.wav"
    ff.run(["-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", str(wav)], what="make audio")
    with pytest.raises(InputError, match="no video stream"):
        find_cuts(wav, probe(wav), use_cache=False)


# --- the pure decision -------------------------------------------------------------------


def test_thousands_of_strobe_cuts_stay_bounded_by_the_minimum_shot() -> None:
    rng = np.random.default_rng(1)
    n = 30 * 600  # ten minutes at 30 fps, a cut every two or three frames
    content = np.where(rng.random(n) < 0.4, 2.0, 0.01)
    times = np.arange(n) / 30
    start = time.perf_counter()
    found = cut_frames(content, times, DetectSettings())
    assert time.perf_counter() - start < 1.0
    assert 0 < len(found) <= 600 / 0.3
    assert min(np.diff(times[found])) >= 0.3 - 1e-9


def test_a_cut_stands_out_of_its_neighbours_and_a_steady_pan_does_not() -> None:
    times = np.arange(100) / 25
    pan = np.full(100, 0.6)
    assert cut_frames(pan, times, DetectSettings()) == []
    cut = np.full(100, 0.05)
    cut[40] = 1.5
    assert cut_frames(cut, times, DetectSettings()) == [40]
    weak = np.full(100, 0.0)
    weak[40] = 0.2  # stands out, but below the absolute floor: noise, not a cut
    assert cut_frames(weak, times, DetectSettings()) == []


def test_scores_see_cuts_but_not_brightness() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (90, 160)).astype(np.float64)
    b = rng.integers(0, 256, (90, 160)).astype(np.float64)
    frames = [a * k for k in np.linspace(1.0, 0.02, 30)] + [b] * 5
    scorer = FrameScorer(DetectSettings(), 160, 90)
    scorer.add(np.stack(frames[:17]).astype(np.uint8))  # batches join seamlessly
    scorer.add(np.stack(frames[17:]).astype(np.uint8))
    stats = scorer.result()
    assert stats.frames == 35 and stats.content[0] == 0
    assert stats.content[1:30].max() < 0.3 < 1.0 < stats.content[30]
    result = picture_cuts(stats, np.arange(35) / 25 + 1.0, fps=25, analysed=2.4, settings=DetectSettings())
    assert isinstance(result, PictureCuts) and result.cuts == (pytest.approx(2.2),)
