"""Shot cuts and motion of an input's picture: decode small and gray, score, cache.

The picture is decoded once, at about 160 pixels wide, through ``ffmpeg.Reader``; the
frames go to the pure ``picture.detect`` in batches and are dropped. Measured against
PySceneDetect on the same montages (see benchmarks/bench_cuts.py), this road was both
faster (a skipped loop filter makes the decode cheaper than a plain one, and swscale
shrinks the frame before it leaves ffmpeg) and at least as accurate, and it needs no
dependency beyond the ffmpeg autoscore already runs.

The result is cached by the input's content and the detector's settings, so ``plan``
followed by ``score`` (or a rerun of a batch) decodes once: the key hashes the size and
the first and last few MiB, which a re-encode, a trim or a rewrite of the index all
change, and which a copy or a touch do not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..models import MediaInfo, PictureCuts
from ..picture.detect import DetectSettings, FrameScorer, picture_cuts
from . import ffmpeg as ff
from .files import write_atomically

log = logging.getLogger(__name__)

__all__ = ["CACHE_VERSION", "content_key", "find_cuts", "frame_times"]

CACHE_VERSION = 1
"""Part of every key: bump it when what an entry means changes, and old entries simply miss."""
_EDGE_BYTES = 4 << 20
_BATCH_FRAMES = 64
_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.eE+-]+)")
_ERROR = re.compile(r"\[(error|fatal|panic)\]\s*(.*)")


def content_key(path: Path, settings: DetectSettings, fast: bool) -> str:
    """sha256 over the format version, the detector's settings, the size and both ends of the file."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(f"cuts {CACHE_VERSION}|{settings.key()}|fast={fast}|{size}|".encode())
    with path.open("rb") as f:
        h.update(f.read(_EDGE_BYTES))
        if size > _EDGE_BYTES:
            f.seek(max(_EDGE_BYTES, size - _EDGE_BYTES))
            h.update(f.read(_EDGE_BYTES))
    return h.hexdigest()


def frame_times(stderr: str) -> np.ndarray:
    """Each output frame's timestamp (seconds), from ``showinfo``'s lines in frame order."""
    times = [float(m.group(3)) for m in _SHOWINFO.finditer(stderr)]
    return np.asarray(times, np.float64)


def _errors(stderr: str) -> list[str]:
    return [m.group(2).strip() for m in _ERROR.finditer(stderr) if m.group(2).strip()]


def _cache_file(cache_dir: Path | None, key: str) -> Path:
    if cache_dir is None:
        from ..music.cache import default_cache_root

        cache_dir = default_cache_root()
    return Path(cache_dir).expanduser() / "cuts" / f"{key}.json"


def _to_json(cuts: PictureCuts, warning: str | None) -> bytes:
    data = {"version": CACHE_VERSION, "cuts": list(cuts.cuts), "motion": [list(m) for m in cuts.motion],
            "analysed": cuts.analysed, "fps": cuts.fps, "motion_step": cuts.motion_step,
            "detector": cuts.detector, "warning": warning}
    return json.dumps(data).encode()


def _from_json(data: dict[str, Any], detector: str) -> tuple[PictureCuts, str | None] | None:
    if data.get("version") != CACHE_VERSION or data.get("detector") != detector:
        return None
    cuts = PictureCuts(
        cuts=tuple(float(t) for t in data["cuts"]),
        motion=tuple((float(t), float(v)) for t, v in data["motion"]),
        analysed=float(data["analysed"]),
        fps=float(data["fps"]),
        motion_step=float(data["motion_step"]),
        detector=str(data["detector"]),
    )
    warning = data.get("warning")
    return cuts, str(warning) if warning else None


def _read_cache(file: Path, detector: str) -> tuple[PictureCuts, str | None] | None:
    try:
        return _from_json(json.loads(file.read_text()), detector)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("Ignoring a damaged cut cache entry %s (%s); cuts will be detected again.", file, exc)
        return None


def find_cuts(
    path: str | Path,
    info: MediaInfo,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    warn: Callable[[str], None] | None = None,
    settings: DetectSettings | None = None,
    fast: bool = True,
) -> PictureCuts:
    """Hard cuts and motion of ``path``'s first video stream (``info`` from ``probe``).

    A picture that stops decoding part way gives the cuts found before that point, with
    one ``warn`` line saying where it stopped; a still image or a single shot gives no
    cut. ``cache_dir`` is the cache root (``cuts/`` is made inside it), by default the
    one the music cache uses.
    """
    p = Path(path)
    say = warn if warn is not None else (lambda message: log.warning("%s", message))
    if info.video is None:
        raise InputError(
            f"{p.name} has no video stream, so it has no shot cuts to find: "
            "score it without cut detection (--cuts off), or give it a picture."
        )
    settings = settings or DetectSettings()
    file = None
    if use_cache:
        file = _cache_file(cache_dir, content_key(p, settings, fast))
        hit = _read_cache(file, settings.key())
        if hit is not None:
            log.debug("cuts of %s from the cache (%s)", p.name, file.name)
            if hit[1]:
                say(hit[1])
            return hit[0]
    cuts, warning = _detect(p, info, settings, fast)
    if warning:
        say(warning)
    if file is not None:
        try:
            write_atomically(file, _to_json(cuts, warning))
        except OSError as exc:
            log.warning("Could not keep the cuts of %s in the cache %s (%s): they will be detected "
                        "again next time.", p.name, file.parent, exc.strerror or exc)
    return cuts


def _detect(p: Path, info: MediaInfo, settings: DetectSettings, fast: bool) -> tuple[PictureCuts, str | None]:
    assert info.video is not None
    width, height = settings.analysis_size(info.video.width or 160, info.video.height or 90)
    frame_bytes = width * height
    scorer = FrameScorer(settings, width, height)
    count = 0
    args = ff.gray_frames_args(p, width, height, fast=fast)
    with ff.Reader(args, what=f"find the cuts of {p.name}") as reader:
        while True:
            data = reader.read(frame_bytes * _BATCH_FRAMES)
            n = len(data) // frame_bytes
            if n:
                scorer.add(np.frombuffer(data, np.uint8, n * frame_bytes).reshape(n, height, width))
                count += n
            if len(data) < frame_bytes * _BATCH_FRAMES:
                break
        done = reader.finish()
    times = frame_times(done.stderr)
    fps = info.video.fps or 0.0
    if len(times) != count:  # showinfo and the pipe disagree: fall back to the nominal rate
        log.debug("cuts: %d frames but %d timestamps in %s; using the frame rate", count, len(times), p.name)
        times = np.arange(count) / (fps or 25.0)
    if count >= 2 and not fps:
        fps = float(1.0 / np.median(np.diff(times))) if np.median(np.diff(times)) > 0 else 25.0
    step = 1.0 / fps if fps else 0.04
    analysed = float(times[-1] + step) if count else 0.0
    analysed = min(analysed, info.duration) if info.duration else analysed
    cuts = picture_cuts(scorer.result(), times, fps=fps, analysed=round(analysed, 6), settings=settings)
    return cuts, _warning(p, info, done, analysed, step)


def _warning(p: Path, info: MediaInfo, done: ff.Finished, analysed: float, step: float) -> str | None:
    """One line when the decode failed or stopped early; None when it went through."""
    errors = _errors(done.stderr)
    damaged = done.returncode != 0 or bool(errors)
    if not damaged:
        return None
    reason = errors[-1] if errors else f"ffmpeg exited with code {done.returncode}"
    reason = reason.replace(str(p), p.name)
    if analysed < info.duration - max(1.0, 2 * step):
        return (f"The picture of {p.name} could not be decoded past {analysed:.1f} s of "
                f"{info.duration:.1f} s ({reason}): only cuts before {analysed:.1f} s are used; "
                "re-export the file to use them all.")
    return (f"Part of the picture of {p.name} is damaged ({reason}): cuts near the damage may be missed; "
            "re-export the file if the music does not follow the picture there.")
