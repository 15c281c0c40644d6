"""Probing: one MediaInfo whether ffprobe or the ffmpeg banner found it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Media, make_media, with_chapters

from autoscore.errors import InputError
from autoscore.media.probe import media_info_from_banner, media_info_from_ffprobe, probe


def test_video_with_audio(media: Media) -> None:
    info = probe(media.mp4)
    assert info.duration == pytest.approx(5.0, abs=0.05)
    assert info.video is not None and (info.video.width, info.video.height) == (160, 90)
    assert info.video.fps == pytest.approx(25)
    assert info.audio is not None and info.audio.codec == "aac" and info.audio.sample_rate == 48000


def test_vertical_no_audio_and_audio_only(media: Media) -> None:
    v = probe(media.vertical)
    assert v.video is not None and (v.video.width, v.video.height) == (90, 160) and v.video.fps == 30
    n = probe(media.mp4_noaudio)
    assert n.audio is None and n.video is not None and (n.video.width, n.video.height) == (160, 90)
    for fmt, path in media.audio.items():
        a = probe(path)
        assert a.is_audio_only, fmt
        assert a.audio is not None and a.duration == pytest.approx(4.0, abs=0.1), fmt


def test_webm_and_mkv(media: Media) -> None:
    w = probe(media.webm)
    assert w.video is not None and w.video.codec == "vp9"
    assert w.audio is not None and w.audio.codec == "opus"
    k = probe(media.mkv)
    assert k.audio is not None and k.audio.codec == "vorbis"


def test_chapters_are_read(tmp_path: Path, media: Media) -> None:
    chapters = [(0, 2000, "Calm intro"), (2000, 5000, "Big finish")]
    out = with_chapters(media.mp4, tmp_path / "chaptered.mp4", chapters)
    info = probe(out)
    assert [c.title for c in info.chapters] == ["Calm intro", "Big finish"]
    assert info.chapters[1].start == pytest.approx(2.0)


def test_cover_art_is_not_video(tmp_path: Path) -> None:
    png = make_media(
        tmp_path / "cover.png", seconds=0.04, audio=None, vcodec="png", extra=["-frames:v", "1"]
    )
    mp3 = tmp_path / "with-cover.mp3"
    from autoscore.media import ffmpeg as ff

    voice = Path(__file__).parent / "data" / "voice.flac"
    ff.run(["-loglevel", "error", "-i", str(voice), "-i", str(png), "-map", "0:a", "-map", "1:v",
            "-c:v", "png", "-disposition:v", "attached_pic", str(mp3)], what="mp3 with cover")
    info = probe(mp3)
    assert info.is_audio_only and info.extra_streams == 1  # the picture is seen, but not as video
    assert info.audio is not None and (info.audio.index, info.audio.codec) == (0, "mp3")
    assert info.duration == pytest.approx(probe(voice).duration, abs=0.1)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"this is not a video\n" * 20, "not a readable media file"),
    ],
)
def test_bad_inputs(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=expected):
        probe(path)


def test_truncated_mp4_is_refused(tmp_path: Path, media: Media) -> None:
    cut = tmp_path / "cut.mp4"
    data = media.mp4_noaudio.read_bytes()  # moov at the end: cutting loses the index
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt, truncated or misnamed"):
        probe(cut)


VIDEO_LINE = (
    "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), "
    "1920x1080 [SAR 1:1 DAR 16:9], 272 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)"
)
BANNER = f"""\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:01:02.50, start: 0.000000, bitrate: 353 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 30.000000
      Metadata:
        title           : Part one
{VIDEO_LINE}
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, 5.1, fltp, 69 kb/s (default)
  Stream #0:2[0x3](eng): Subtitle: mov_text (tx3g / 0x67337874), 0 kb/s
"""

FFPROBE = {
    "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "62.500000"},
    "streams": [
        {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
         "avg_frame_rate": "30000/1001", "disposition": {"attached_pic": 0}},
        {"index": 1, "codec_type": "audio", "codec_name": "aac", "sample_rate": "44100", "channels": 6},
        {"index": 2, "codec_type": "subtitle", "codec_name": "mov_text"},
    ],
    "chapters": [{"start_time": "0.000000", "end_time": "30.000000", "tags": {"title": "Part one"}}],
}


def test_both_roads_give_the_same_media_info() -> None:
    a = media_info_from_banner(Path("x.mp4"), BANNER)
    b = media_info_from_ffprobe(Path("x.mp4"), FFPROBE)
    assert a.duration == b.duration == 62.5
    assert a.audio == b.audio and a.audio is not None and a.audio.channels == 6
    assert a.video is not None and b.video is not None
    assert (a.video.width, a.video.height, a.video.codec) == (b.video.width, b.video.height, b.video.codec)
    assert a.video.fps == pytest.approx(b.video.fps or 0, abs=0.01)
    assert a.chapters == b.chapters
    assert a.extra_streams == b.extra_streams == 1
