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

Two jobs that need the same entry at the same time must not both pay for it: the first
claims the key and the others wait (``claims``).

The cache may live on shared storage for a cluster: ``root`` is a folder or an fsspec URL
(``s3://bucket/prefix``, ``memory://``). A URL's entries are written under a temporary
name and moved into place too, so an object store shows only whole entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from ..errors import CacheError, OptionError
from ..media.files import unwritable_reason, write_atomically
from ..media.remote import filesystem, is_url
from ..models import Audio
from .backends.base import ContinuationRequest, GenerationRequest
from .claims import (
    Claim,
    ClaimBoard,
    FileClaims,
    FileTaskNotes,
    ProcessClaims,
    TaskNotes,
    note_bytes,
    task_of,
)

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
    """Decoded audio on disk or shared storage, addressed by ``key_for``; ``enabled=False``
    makes every read a miss.

    ``root`` is a folder (``file://`` URLs included) or an fsspec URL. ``claims`` makes
    the board that decides who makes a missing entry, given the cache's task notes: by
    default claim files beside a local cache, and a table in this process for a URL
    (object stores cannot create a file exclusively); a cluster passes its own. Task
    notes are always the cache's own (``<key>.task`` beside the entry), so they outlive
    whoever claimed.
    """

    def __init__(self, root: str | Path | None = None, enabled: bool = True,
                 claims: Callable[[TaskNotes], ClaimBoard] | None = None) -> None:
        self.url: str | None = None
        self._fs: Any = None
        if root is not None and is_url(root):
            self.url = str(root).rstrip("/")
            self.root = Path(self.url.split("://", 1)[1])  # for messages; never opened
        else:
            text = str(root) if root is not None else None
            if text is not None and text.startswith("file://"):
                text = text[len("file://"):]
            self.root = Path(text).expanduser() if text is not None else default_cache_root()
        self.enabled = enabled
        if enabled:
            self._check_usable()
        self.notes: TaskNotes = _UrlTaskNotes(self) if self.url else FileTaskNotes(self.path_for)
        if claims is not None:
            self.claims = claims(self.notes)
        elif self.url:
            self.claims = ProcessClaims(self.url, self.notes)
        else:
            self.claims = FileClaims(self.path_for, self.notes)

    @classmethod
    def for_job(cls, root: str | Path | None, enabled: bool) -> AudioCache:
        """The cache a job uses: the user's folder or URL, with the claims of wherever the job
        runs (a cluster's locks on a cluster worker, see ``shared``)."""
        from .shared import current_sharing

        return cls(root or None, enabled, current_sharing().claims)

    @property
    def where(self) -> str:
        return self.url or str(self.root)

    def _check_usable(self) -> None:
        """Fail before any money is spent rather than after, when the results could not be kept."""
        if self.url is not None:
            self._check_url()
            return
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

    def _check_url(self) -> None:
        """Open the filesystem and write a probe: a missing driver or a read-only bucket is
        found here, before any request is paid for."""
        assert self.url is not None
        try:
            fs, path = filesystem(self.url)
        except OptionError as exc:  # no fsspec, or no driver for the protocol
            raise CacheError(f"--cache-dir: {str(exc).rstrip('.')}, or give a local folder.") from None
        self._fs, self._base = fs, path.rstrip("/")
        probe = f"{self._base}/.probe-{os.getpid()}-{time.monotonic_ns()}"
        try:
            fs.makedirs(self._base, exist_ok=True)
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        except Exception as exc:  # fsspec drivers raise their own kinds
            raise CacheError(
                f"The cache at {self.url} is not writable ({_first_line(exc)}): check its permissions "
                "and credentials, choose another --cache-dir, or run with --no-cache."
            ) from None

    @staticmethod
    def key_for(backend_name: str, model: str, request: GenerationRequest | ContinuationRequest) -> str:
        kind, values = _request_fields(request)
        doc = {"v": _FORMAT_VERSION, "backend": backend_name, "model": model, "kind": kind, "request": values}
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path_for(self, key: str) -> Path:
        """The entry's path on disk (for a URL cache, its path inside the bucket)."""
        if not _KEY.fullmatch(key):
            raise CacheError(f"{key!r} is not a cache key (expected 64 lowercase hex digits).")
        return self.root / "audio" / key[:2] / f"{key}.f32"

    def _url_path(self, key: str) -> str:
        self.path_for(key)  # checks the key
        return f"{self._base}/audio/{key[:2]}/{key}.f32"

    def get(self, key: str) -> Audio | None:
        if not self.enabled:
            return None
        name = self.path_for(key).name
        try:
            blob = self._read(key)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("Cache entry %s cannot be read (%s); generating again.", name, exc)
            return None
        audio = _parse_entry(blob)
        if audio is None:
            log.warning("Cache entry %s is damaged; deleting it and generating again.", name)
            self._delete(key)
        return audio

    def _read(self, key: str) -> bytes:
        if self.url is None:
            return self.path_for(key).read_bytes()
        try:
            return bytes(self._fs.cat_file(self._url_path(key)))
        except FileNotFoundError:
            raise
        except Exception as exc:  # a driver's own error: unreadable, not missing
            raise OSError(_first_line(exc)) from None

    def _delete(self, key: str) -> None:
        with contextlib.suppress(Exception):
            if self.url is None:
                self.path_for(key).unlink()
            else:
                self._fs.rm_file(self._url_path(key))

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
        head = _MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
        try:
            if self.url is None:
                self._write(path, head, data)
            else:
                self._write_url(self._url_path(key), head + data)
        except OSError as exc:
            raise CacheError(
                f"Could not store generated audio in the cache at {self.where} ({exc.strerror or exc}): "
                "free some space or choose another place with --cache-dir."
            ) from exc

    @staticmethod
    def _write(path: Path, head: bytes, data: bytes) -> None:
        """Write an entry whole or not at all (a test overrides this to fill the disk)."""
        write_atomically(path, head, data)

    def _write_url(self, path: str, blob: bytes) -> None:
        """A temporary name, then a move: readers of the bucket see a whole entry or none."""
        part = f"{path}.{os.getpid()}-{time.monotonic_ns()}.part"
        try:
            self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self._fs.pipe_file(part, blob)
            self._fs.mv(part, path)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._fs.rm_file(part)
            raise OSError(_first_line(exc)) from None

    def __contains__(self, key: str) -> bool:
        if not self.enabled:
            return False
        if self.url is None:
            return self.path_for(key).is_file()
        try:
            return bool(self._fs.isfile(self._url_path(key)))
        except Exception:
            return False

    def claim(self, key: str) -> Claim | None:
        """The right to make entry ``key``, or None while another live job holds it.

        With the cache off there is nothing to share, and every caller gets a claim.
        """
        if not self.enabled:
            return Claim()
        return self.claims.claim(key)


class _UrlTaskNotes:
    """``<key>.task`` objects beside a URL cache's entries."""

    def __init__(self, cache: AudioCache) -> None:
        self.cache = cache

    def _path(self, key: str) -> str:
        return self.cache._url_path(key).removesuffix(".f32") + ".task"

    def read(self, key: str) -> str | None:
        try:
            return task_of(bytes(self.cache._fs.cat_file(self._path(key))))
        except FileNotFoundError:
            return None

    def write(self, key: str, task_id: str) -> None:
        self.cache._write_url(self._path(key), note_bytes(task_id))

    def drop(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.cache._fs.rm_file(self._path(key))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
