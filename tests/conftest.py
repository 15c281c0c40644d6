"""Shared fixtures: media made by the real ffmpeg, once per session, and a clean environment.

Every clip is a few seconds long and tiny in pixels so the whole suite stays fast on two
cores; nothing is downloaded and nothing needs espeak or a system ffmpeg.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# The emulator fixtures live beside their helpers; importing them here shares them with every module.
from emulator_fixtures import cache_dir, emulator, emulator_server  # noqa: F401

from autoscore.media import ffmpeg as ff
from autoscore.media.ffmpeg import decode_audio

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees a real key, a real cache or a user's presets."""
    for name in ("WAVESPEED_API_KEY", "WAVESPEED_BASE_URL", "AUTOSCORE_PRESETS", "AUTOSCORE_NO_FFPROBE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOSCORE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))


_CACHE: list[Path] = []


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    """One music cache for the whole session: the same request is composed once."""
    if not _CACHE:
        _CACHE.append(factory.mktemp("music-cache"))
    return _CACHE[0]


@pytest.fixture(autouse=True)
def _restore_log_levels() -> Iterator[None]:
    """The CLI sets logger levels when it starts; a CLI test must not silence later tests."""
    names = ("autoscore", "httpx", "httpcore")
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in saved.items():
        logging.getLogger(n).setLevel(level)


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A test that makes autoscore log at ERROR level fails: errors are raised, not logged."""
    yield
    errors = [
        r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("autoscore")
    ]
    assert not errors, [r.getMessage() for r in errors]


def make_media(path: Path, *, seconds: float = 3.0, video: str | None = "160x90", fps: int = 25,
               audio: str | None = "voice", vcodec: str = "libx264", acodec: str | None = None,
               extra: list[str] | None = None) -> Path:
    """Write a test clip with ffmpeg's lavfi sources.

    ``audio``: 'voice' (2 s of silence, then tests/data/voice.flac), 'silence' (digital zero),
    'tone' (a quiet sine) or None (no audio stream).
    """
    args = ["-loglevel", "error", "-y"]
    maps: list[str] = []
    n = 0
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={video}:r={fps}:d={seconds}"]
        maps += ["-map", f"{n}:v"]
        n += 1
    if audio == "voice":
        args += ["-i", str(DATA / "voice.flac"), "-filter_complex",
                 f"[{n}:a]aresample=48000,adelay=2000:all=1,apad,atrim=0:{seconds}[a]"]
        maps += ["-map", "[a]"]
    elif audio == "silence":
        args += ["-f", "lavfi", "-i", f"anullsrc=r=48000:cl=stereo:d={seconds}"]
        maps += ["-map", f"{n}:a"]
    elif audio == "tone":
        args += ["-f", "lavfi", "-i", f"sine=f=330:r=48000:d={seconds},volume=0.2"]
        maps += ["-map", f"{n}:a"]
    args += maps
    if video:
        args += ["-c:v", vcodec, "-pix_fmt", "yuv420p"]
        if vcodec == "libx264":
            args += ["-preset", "ultrafast"]
        if vcodec.startswith("libvpx"):
            args += ["-b:v", "200k", "-deadline", "realtime", "-cpu-used", "8"]
    if audio and acodec:
        args += ["-c:a", acodec]
    args += ["-t", str(seconds), *(extra or []), str(path)]
    ff.run(args, what=f"make test media {path.name}")
    return path


@dataclass(frozen=True)
class Media:
    mp4: Path
    mp4_silent: Path
    mp4_noaudio: Path
    vertical: Path
    mkv: Path
    webm: Path
    mov: Path
    audio: dict[str, Path]


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    d = tmp_path_factory.mktemp("media")
    audio = {
        "wav": make_media(d / "talk.wav", video=None, seconds=4),
        "mp3": make_media(d / "talk.mp3", video=None, seconds=4),
        "flac": make_media(d / "talk.flac", video=None, seconds=4),
        "m4a": make_media(d / "talk.m4a", video=None, seconds=4, acodec="aac"),
        "ogg": make_media(d / "talk.ogg", video=None, seconds=4, acodec="libvorbis"),
        "opus": make_media(d / "talk.opus", video=None, seconds=4, acodec="libopus"),
    }
    return Media(
        mp4=make_media(d / "clip.mp4", seconds=5, acodec="aac",
                       extra=["-metadata", "title=Test clip", "-metadata", "comment=keep me"]),
        mp4_silent=make_media(d / "silent.mp4", audio="silence", acodec="aac"),
        mp4_noaudio=make_media(d / "noaudio.mp4", audio=None),
        vertical=make_media(d / "vertical.mp4", video="90x160", fps=30, acodec="aac"),
        mkv=make_media(d / "clip.mkv", acodec="libvorbis"),
        webm=make_media(d / "clip.webm", vcodec="libvpx-vp9", acodec="libopus"),
        mov=make_media(d / "clip.mov", audio="tone", acodec="aac"),
        audio=audio,
    )


def packet_hashes(path: Path) -> list[str]:
    """Per-packet MD5s of the first video stream, read by stream copy (no decoding)."""
    args = ["-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"]
    proc = ff.run(args, what="hash video packets")
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln and not ln.startswith("#")]
    return [ln.rsplit(",", 1)[-1].strip() for ln in lines]


def with_chapters(src: Path, out: Path, chapters: list[tuple[int, int, str]]) -> Path:
    """A stream copy of ``src`` carrying ``chapters`` as (start ms, end ms, title)."""
    meta = out.with_suffix(".chapters.txt")
    meta.write_text(";FFMETADATA1\n" + "".join(
        f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={a}\nEND={b}\ntitle={title}\n" for a, b, title in chapters
    ))
    ff.run(["-loglevel", "error", "-i", str(src), "-i", str(meta), "-map_metadata", "1",
            "-map_chapters", "1", "-c", "copy", str(out)], what="add chapters")
    return out


def rms(x: np.ndarray) -> float:
    """Root-mean-square level of samples (linear); above 0.01 (-40 dBFS) the tests call it audible."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(rms(x) + 1e-12))


def level_between(path: Path, start: float, end: float) -> float:
    """RMS level in dBFS of ``path``'s audio between two times."""
    a = decode_audio(path, 48000, 2)
    return rms_db(a.samples[int(start * 48000): int(end * 48000)])


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``autoscore`` command in-process: (exit code, stdout, stderr)."""
    from autoscore.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out, err
