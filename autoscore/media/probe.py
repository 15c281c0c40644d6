"""Learn an input's length and streams before anything is spent on it.

Two roads to one ``MediaInfo``: ffmpeg-python's ``probe`` (JSON from ffprobe) when an
ffprobe binary exists, else ffmpeg's own banner (``ffmpeg -i FILE``), which needs nothing
but the ffmpeg that imageio-ffmpeg ships. Both are parsed by pure functions so each can
be tested on text captured from the real tools.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import AudioStream, Chapter, MediaInfo, VideoStream
from . import ffmpeg as ff

log = logging.getLogger(__name__)

__all__ = ["media_info_from_banner", "media_info_from_ffprobe", "probe"]

_LAYOUT_CHANNELS = {
    "mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4, "quad(side)": 4,
    "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6, "5.1(side)": 6, "6.0": 6, "6.1": 7,
    "7.0": 7, "7.1": 8, "7.1(wide)": 8, "downmix": 2,
}


def probe(path: str | Path) -> MediaInfo:
    """Probe ``path``; raise ``InputError`` with advice for anything we cannot score."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Input {p} does not exist: check the path.")
    if p.is_dir():
        raise InputError(f"Input {p} is a folder: name a media file (or use 'autoscore batch').")
    if p.stat().st_size == 0:
        raise InputError(f"Input {p} is empty (0 bytes): re-export or re-copy the file.")
    ffprobe = ff.ffprobe_exe()
    info = _probe_with_ffprobe(p, ffprobe) if ffprobe else _probe_with_ffmpeg(p)
    if info.video is None and info.audio is None:
        raise InputError(f"Input {p} has no audio or video stream: nothing to score.")
    if not info.duration or info.duration <= 0:
        raise InputError(f"Input {p} has zero length: nothing to score.")
    return info


def _probe_with_ffprobe(p: Path, exe: str) -> MediaInfo:
    import ffmpeg  # ffmpeg-python

    try:
        data = ffmpeg.probe(str(p), cmd=exe, show_chapters=None)
    except ffmpeg.Error as exc:
        err = (exc.stderr or b"").decode("utf-8", "replace")
        raise InputError(_unreadable(p, err)) from exc
    return media_info_from_ffprobe(p, data)


def _probe_with_ffmpeg(p: Path) -> MediaInfo:
    cmd = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)]
    log.debug("probe: %s", cmd)
    proc = subprocess.run(cmd, capture_output=True, check=False)
    banner = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in banner:
        raise InputError(_unreadable(p, banner))
    return media_info_from_banner(p, banner)


def _unreadable(p: Path, err: str) -> str:
    lines = [ln.strip() for ln in err.strip().splitlines() if ln.strip()]
    reason = lines[-1] if lines else "unknown format"
    reason = reason.replace(str(p), p.name)
    return f"Input {p} is not a readable media file ({reason}): is it corrupt, truncated or misnamed?"


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _rate(text: str | None) -> float | None:
    """'30000/1001' -> 29.97; '0/0' or nonsense -> None."""
    if not text:
        return None
    if "/" in text:
        num, _, den = text.partition("/")
        n, d = _num(num), _num(den)
        return n / d if d and n else None
    r = _num(text)
    return r or None


def media_info_from_ffprobe(p: Path, data: dict[str, Any]) -> MediaInfo:
    """``MediaInfo`` from ffprobe's JSON (``-show_format -show_streams -show_chapters``)."""
    fmt = data.get("format", {})
    video: VideoStream | None = None
    audio: AudioStream | None = None
    extra = 0
    durations: list[float] = []
    for s in data.get("streams", []):
        kind = s.get("codec_type")
        if kind == "video" and not s.get("disposition", {}).get("attached_pic") and video is None:
            video = VideoStream(
                index=int(s["index"]),
                codec=s.get("codec_name", "unknown"),
                width=int(s.get("width", 0)),
                height=int(s.get("height", 0)),
                fps=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")),
            )
        elif kind == "audio" and audio is None:
            audio = AudioStream(
                index=int(s["index"]),
                codec=s.get("codec_name", "unknown"),
                sample_rate=int(_num(s.get("sample_rate"), 0)),
                channels=int(s.get("channels", 0)),
            )
        elif kind in ("video", "audio", "subtitle", "data", "attachment"):
            extra += 1
        if s.get("duration"):
            durations.append(_num(s["duration"]))
    duration = _num(fmt.get("duration")) or max(durations, default=0.0)
    chapters = tuple(
        Chapter(
            start=_num(c.get("start_time")),
            end=_num(c.get("end_time")),
            title=str(c.get("tags", {}).get("title", "")).strip(),
        )
        for c in data.get("chapters", [])
    )
    tags = [fmt.get("tags", {}), *(s.get("tags", {}) for s in data.get("streams", []))]
    stamps = [str(t.get("timecode", "")) for t in tags]
    timecode = next((t for t in stamps if _TIMECODE_VALUE.fullmatch(t)), None)
    return MediaInfo(p, duration, str(fmt.get("format_name", "")), video, audio, chapters, extra, timecode)


_INPUT = re.compile(r"^Input #0, (?P<fmt>[^,]+(?:,[^ ]+?)*), from")
_DURATION = re.compile(r"^\s*Duration: (?P<dur>\d+:\d+:\d+(?:\.\d+)?|N/A)")
_STREAM = re.compile(
    r"^\s*Stream #0:(?P<idx>\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: "
    r"(?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<rest>.*)$"
)
_CHAPTER = re.compile(r"^\s*Chapter #0:\d+: start (?P<start>-?[\d.]+), end (?P<end>-?[\d.]+)")
_TITLE = re.compile(r"^\s*title\s*: (?P<title>.*)$")
_TIMECODE_VALUE = re.compile(r"\d{2}:\d{2}:\d{2}[:;.]\d{2}")
_TIMECODE = re.compile(r"^\s*timecode\s*: (?P<tc>\d{2}:\d{2}:\d{2}[:;.]\d{2})\s*$")
_FPS = re.compile(r"(?P<fps>[\d.]+)(?P<k>k?) fps")
_TBR = re.compile(r"(?P<fps>[\d.]+)(?P<k>k?) tbr")
_SIZE = re.compile(r"(?<![\dx])(?P<w>\d{2,5})x(?P<h>\d{2,5})(?![\dx])")
_HZ = re.compile(r"(?P<hz>\d+) Hz")
_CHANNELS = re.compile(r" Hz, (?P<layout>[^,]+)")


def _hms(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _codec(rest: str) -> str:
    return rest.split(",")[0].split(" ")[0].strip()


def _channels(rest: str) -> int:
    m = _CHANNELS.search(rest)
    if not m:
        return 0
    layout = m.group("layout").strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    n = re.match(r"(\d+) channels", layout)
    return int(n.group(1)) if n else 2


def _fps(rest: str) -> float | None:
    for pattern in (_FPS, _TBR):
        m = pattern.search(rest)
        if m:
            value = float(m.group("fps")) * (1000 if m.group("k") else 1)
            if value > 0:
                return value
    return None


def media_info_from_banner(p: Path, banner: str) -> MediaInfo:
    """``MediaInfo`` from the text ``ffmpeg -i FILE`` prints, for machines without ffprobe."""
    fmt = ""
    duration = 0.0
    video: VideoStream | None = None
    audio: AudioStream | None = None
    extra = 0
    chapters: list[Chapter] = []
    in_chapter = False
    timecode: str | None = None
    for line in banner.splitlines():
        if line.startswith("Output #") or line.startswith("Stream mapping"):
            break
        if m := _INPUT.match(line):
            fmt = m.group("fmt")
        elif m := _DURATION.match(line):
            duration = 0.0 if m.group("dur") == "N/A" else _hms(m.group("dur"))
        elif m := _CHAPTER.match(line):
            chapters.append(Chapter(float(m.group("start")), float(m.group("end")), ""))
            in_chapter = True
        elif in_chapter and (m := _TITLE.match(line)) and chapters and not chapters[-1].title:
            last = chapters[-1]
            chapters[-1] = Chapter(last.start, last.end, m.group("title").strip())
        elif (m := _TIMECODE.match(line)) and timecode is None:
            timecode = m.group("tc")
        elif m := _STREAM.match(line):
            in_chapter = False
            idx, kind, rest = int(m.group("idx")), m.group("kind"), m.group("rest")
            if kind == "Video" and "(attached pic)" not in rest and video is None:
                size = _SIZE.search(rest)
                video = VideoStream(
                    index=idx,
                    codec=_codec(rest),
                    width=int(size.group("w")) if size else 0,
                    height=int(size.group("h")) if size else 0,
                    fps=_fps(rest),
                )
            elif kind == "Audio" and audio is None:
                hz = _HZ.search(rest)
                audio = AudioStream(idx, _codec(rest), int(hz.group("hz")) if hz else 0, _channels(rest))
            else:
                extra += 1
    return MediaInfo(p, duration, fmt, video, audio, tuple(chapters), extra, timecode)
