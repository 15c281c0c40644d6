"""A content-addressed store of generated audio, so the same music is never paid for twice.

Every remote request costs money and the same job is often run again (a tweak to the
mix, a crash half way, a batch restarted). The key is a hash over everything that could
change the music - every request field, the backend and its model, and for a
continuation the source samples themselves - so a hit is exactly the audio the
generator would have returned.

Entries are stored decoded (one file: a magic line, a JSON header line with rate,
frames, channels and the sha256 of the samples, then raw little-endian float32), so a
hit costs no ffmpeg run. A file is written under a temporary name in the same folder
and renamed into place, so readers see either nothing or a whole entry; an entry that
is damaged anyway (disk trouble, a user's editor) fails its checksum, is deleted and
counts as a miss.

Two jobs that need the same entry at the same time (a batch of near-identical clips,
two terminals) must not both pay for it. Whoever misses first *claims* the key with a
claim file beside the entry, created exclusively; the others wait for the entry. A
claim records its process and machine, so one left by a process that died is taken
over rather than waited on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from ..errors import CacheError
from ..media.files import unwritable_reason, write_atomically
from ..models import Audio
from .backends.base import ContinuationRequest, GenerationRequest

__all__ = ["CACHE_ENV", "AudioCache", "Claim", "audio_digest", "default_cache_root"]

log = logging.getLogger(__name__)

CACHE_ENV = "AUTOSCORE_CACHE_DIR"
_MAGIC = b"AUTOSCORE-AUDIO 1\n"
_KEY = re.compile(r"[0-9a-f]{64}")
_FORMAT_VERSION = 1
"""Part of every key: bump it when what a key means changes, and old entries simply miss."""


def default_cache_root() -> Path:
    """``AUTOSCORE_CACHE_DIR`` when set, else the platform's per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("autoscore"))


def audio_digest(audio: Audio) -> str:
    """sha256 over rate, shape and samples: identifies a continuation's source exactly."""
    h = hashlib.sha256()
    h.update(f"{audio.rate}:{audio.frames}:{audio.channels}:".encode())
    h.update(np.ascontiguousarray(audio.samples, dtype="<f4").tobytes())
    return h.hexdigest()


def _request_fields(request: GenerationRequest | ContinuationRequest) -> tuple[str, dict[str, Any]]:
    if isinstance(request, ContinuationRequest):
        values = {f.name: getattr(request, f.name) for f in fields(request) if f.name != "source"}
        values["source"] = audio_digest(request.source)
        values["cues"] = [asdict(c) for c in request.cues]
        kind = "outpaint"
    else:
        values = dict(request.key_fields())
        kind = "generate"
    # 1 and 1.0 are the same guidance; JSON would spell them differently.
    values["guidance"] = float(values["guidance"])
    return kind, values


class AudioCache:
    """Decoded audio on disk, addressed by ``key_for``; ``enabled=False`` makes every read a miss."""

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.enabled = enabled
        if enabled:
            self._check_usable()

    def _check_usable(self) -> None:
        """Fail before any money is spent rather than after, when the results could not be kept."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"The cache folder {self.root} cannot be created ({exc.strerror or exc}): "
                f"point {CACHE_ENV} or --cache-dir at a writable folder, or run with --no-cache."
            ) from exc
        if unwritable_reason(self.root) is not None:
            raise CacheError(
                f"The cache folder {self.root} is not writable: point {CACHE_ENV} or --cache-dir "
                "at a writable folder, or run with --no-cache."
            )

    @staticmethod
    def key_for(backend_name: str, model: str, request: GenerationRequest | ContinuationRequest) -> str:
        kind, values = _request_fields(request)
        doc = {"v": _FORMAT_VERSION, "backend": backend_name, "model": model, "kind": kind, "request": values}
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path_for(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise CacheError(f"{key!r} is not a cache key (expected 64 lowercase hex digits).")
        return self.root / "audio" / key[:2] / f"{key}.f32"

    def get(self, key: str) -> Audio | None:
        if not self.enabled:
            return None
        path = self.path_for(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("Cache entry %s cannot be read (%s); generating again.", path.name, exc)
            return None
        audio = _parse_entry(blob)
        if audio is None:
            log.warning("Cache entry %s is damaged; deleting it and generating again.", path.name)
            with contextlib.suppress(OSError):
                path.unlink()
        return audio

    def put(self, key: str, audio: Audio) -> None:
        if not self.enabled:
            return
        path = self.path_for(key)
        data = np.ascontiguousarray(audio.samples, dtype="<f4").tobytes()
        header = {
            "rate": audio.rate,
            "frames": audio.frames,
            "channels": audio.channels,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        try:
            self._write(path, _MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n", data)
        except OSError as exc:
            raise CacheError(
                f"Could not store generated audio in the cache at {self.root} ({exc.strerror or exc}): "
                "free some disk space or choose another folder with --cache-dir."
            ) from exc

    @staticmethod
    def _write(path: Path, head: bytes, data: bytes) -> None:
        """Write an entry whole or not at all (a test overrides this to fill the disk)."""
        write_atomically(path, head, data)

    def __contains__(self, key: str) -> bool:
        return self.enabled and self.path_for(key).is_file()

    def claim(self, key: str) -> Claim | None:
        """The right to make entry ``key``, or None while another live job holds it.

        With the cache off there is nothing to share, and every caller gets a claim.
        """
        if not self.enabled:
            return Claim(None)
        path = self.path_for(key).with_suffix(".claim")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return Claim(None)  # put() will say what is wrong with the folder
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _take_over_if_stale(path):
                    return None
                continue
            except OSError:
                return Claim(None)
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": platform.node(), "time": time.time()}, f)
            return Claim(path)
        return None


CLAIM_STALE_AFTER = 120.0
"""Seconds without a heartbeat after which a claim is abandoned, wherever its holder ran.
Holders touch their claim every ``CLAIM_HEARTBEAT`` seconds while they work."""
CLAIM_HEARTBEAT = 30.0


class Claim:
    """A held claim on a cache key; ``release`` lets waiting jobs look again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def touch(self) -> None:
        """The heartbeat: this claim's holder is still at work."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


def _take_over_if_stale(path: Path) -> bool:
    """Remove ``path`` if its holder is gone; True when the caller may try to claim again.

    Two jobs may both find a claim stale. Each renames it to a name of its own first (only
    one rename can succeed) and checks that what it moved is what it judged; a fresh claim
    moved by mistake is put back.
    """
    try:
        judged = path.read_bytes()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not _is_stale(path, judged):
        return False
    aside = path.with_name(f"{path.name}.{os.getpid()}-{time.monotonic_ns()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # someone else removed it: try again
    except OSError:
        return False
    try:
        if aside.read_bytes() != judged:
            with contextlib.suppress(OSError):
                os.link(aside, path)  # put the live claim back (fails if another took its place)
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()
    return True


def _is_stale(path: Path, text: bytes) -> bool:
    """True when the claim's holder is gone: a dead process here, or no heartbeat for a while."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return True
    if age > CLAIM_STALE_AFTER:
        return True
    try:
        info = json.loads(text)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return False  # being written this instant, or garbage that will age out
    return host == platform.node() and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse_entry(blob: bytes) -> Audio | None:
    """The stored audio, or None for anything short, garbled or not matching its checksum."""
    if not blob.startswith(_MAGIC):
        return None
    end = blob.find(b"\n", len(_MAGIC))
    if end < 0:
        return None
    try:
        header = json.loads(blob[len(_MAGIC) : end])
        rate, frames, channels = int(header["rate"]), int(header["frames"]), int(header["channels"])
        digest = str(header["sha256"])
    except (ValueError, KeyError, TypeError):
        return None
    data = blob[end + 1 :]
    if rate <= 0 or channels <= 0 or frames < 0 or len(data) != frames * channels * 4:
        return None
    if hashlib.sha256(data).hexdigest() != digest:
        return None
    samples = np.frombuffer(data, dtype="<f4").reshape(frames, channels).astype(np.float32)
    return Audio(samples, rate)
