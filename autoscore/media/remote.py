"""Inputs and outputs behind fsspec URLs (``s3://``, ``gs://``, ``memory://``…), staged locally.

ffmpeg reads and writes local files, and a batch on a cluster may have no shared folder,
only a bucket. So a remote input is downloaded into the job's scratch folder (with its
notes, when the store has a notes file beside it), scored there like any local file,
and the output is uploaded under a temporary name and then moved into place: whoever
lists the bucket sees a whole output or none. ``file://`` URLs are plain paths and never
come here. The ``dask`` extra brings fsspec; a protocol's own driver (s3fs, gcsfs) is
the user's to install, and its absence is a usage error before any work.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError, OptionError, OutputPathError
from .files import owner_tag

__all__ = ["RemoteFile", "as_location", "first_line", "is_url", "unreadable"]


def is_url(location: str | Path) -> bool:
    """``s3://…``, ``memory://…``: a location for fsspec rather than a local path."""
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


@dataclass(frozen=True)
class RemoteFile:
    """A file (or folder) behind an fsspec URL, with the parts of a path a batch uses."""

    url: str

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def suffixes(self) -> list[str]:
        return PurePosixPath(self.name).suffixes

    def sibling(self, name: str) -> RemoteFile:
        return RemoteFile(f"{self.url.rstrip('/').rsplit('/', 1)[0]}/{name}")

    def child(self, name: str) -> RemoteFile:
        return RemoteFile(f"{self.url.rstrip('/')}/{name}")

    def with_suffix(self, suffix: str) -> RemoteFile:
        return self.sibling(self.stem + suffix)

    def _fs(self) -> tuple[Any, str]:
        return filesystem(self.url)

    @property
    def identity(self) -> str:
        """The same for every spelling of one file (``memory://d/a`` and ``memory:///d/a``)."""
        fs, path = self._fs()
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        return f"{protocol}::{path}"

    def exists(self) -> bool:
        fs, path = self._fs()
        return bool(fs.exists(path))

    def is_file(self) -> bool:
        fs, path = self._fs()
        return bool(fs.isfile(path))

    def is_dir(self) -> bool:
        fs, path = self._fs()
        return bool(fs.isdir(path))

    def modified(self) -> float | None:
        """Seconds since the epoch, or None where the store does not say."""
        fs, path = self._fs()
        try:
            return float(fs.modified(path).timestamp())
        except (NotImplementedError, AttributeError, OSError, ValueError):
            return None


def as_location(location: str | Path) -> Path | RemoteFile:
    """A path for local names and ``file://`` URLs, a ``RemoteFile`` for other URLs."""
    text = str(location)
    if is_url(text):
        filesystem(text)  # a missing driver is said now
        return RemoteFile(text)
    return Path(text.removeprefix("file://")) if text.startswith("file://") else Path(location)


def filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise OptionError(f"{url} is a URL, which needs fsspec: pip install 'autoscore[dask]'.") from None
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as exc:
        raise OptionError(
            f"{url} cannot be opened ({first_line(exc)}): install the package "
            "fsspec names for that protocol (s3fs for s3://, gcsfs for gs://)."
        ) from None


def first_line(exc: BaseException) -> str:
    """A driver's error as one line of a message: its first line, or its kind when it says nothing."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def expand(url: str, wanted: Any) -> list[RemoteFile]:
    """A remote file, a folder's files that ``wanted(name)`` accepts, or a glob's; [] for nothing.

    Listings come back as the store's own paths; each becomes a URL again with the part of
    ``url`` before its path (the protocol, and a host where the protocol has one), and a
    named file is spelt the same way, so one file named twice is scored once.
    """
    fs, path = filesystem(url)
    text = url.rstrip("/")
    stem = path.rstrip("/")
    prefix = text[: len(text) - len(stem.lstrip("/"))] if text.endswith(stem.lstrip("/")) else ""
    if not prefix:
        prefix = url.split("://", 1)[0] + "://"

    def located(found: str) -> RemoteFile:
        if "://" in found:
            return RemoteFile(found)
        return RemoteFile(prefix + found.lstrip("/") if prefix.endswith("/") else prefix + found)

    if fs.isdir(path):
        return [located(p) for p in sorted(fs.ls(path, detail=False)) if fs.isfile(p) and wanted(p)]
    if fs.isfile(path):
        return [located(path)]
    if any(c in path for c in "*?["):
        return [located(p) for p in sorted(fs.glob(path)) if fs.isfile(p) and wanted(p)]
    return []


def make_folder(folder: RemoteFile) -> None:
    fs, path = folder._fs()
    try:
        fs.makedirs(path, exist_ok=True)
    except Exception as exc:  # drivers raise their own kinds
        raise OutputPathError(f"Cannot create the output folder {folder.url} ({first_line(exc)}): "
                              "choose another.") from None


def fetch(remote: RemoteFile, folder: Path) -> Path:
    """Download ``remote`` into ``folder`` under its own name."""
    fs, path = remote._fs()
    local = folder / remote.name
    try:
        fs.get_file(path, str(local))
    except FileNotFoundError:
        raise InputError(f"Input {remote.url} does not exist: check the URL.") from None
    except Exception as exc:
        raise InputError(f"Input {remote.url} cannot be read ({first_line(exc)}): check the URL and "
                         "its credentials.") from None
    return local


def publish(local: Path, remote: RemoteFile) -> None:
    """Upload ``local`` to ``remote`` whole or not at all: a temporary name, then a move."""
    fs, path = remote._fs()
    part = f"{path.rsplit('/', 1)[0]}/.{remote.stem}.{owner_tag()}{time.monotonic_ns()}.part{remote.suffix}"
    try:
        fs.put_file(str(local), part)
        fs.mv(part, path)
    except BaseException as exc:  # a Ctrl-C too: nothing sweeps a bucket for orphans later
        with contextlib.suppress(Exception):
            fs.rm_file(part)
        if not isinstance(exc, Exception):
            raise
        raise OutputPathError(f"Could not write {remote.url} ({first_line(exc)}): check the URL and "
                              "its credentials.") from None


def finished(input: RemoteFile | Path, output: RemoteFile, notes: RemoteFile | Path | None) -> bool:
    """``output`` exists and is no older than the input and its notes (when the store says).

    A store that cannot be asked answers False: the file is then scored, and what is wrong
    with the store is said by the download or upload, for that file alone.
    """
    try:
        return _finished(input, output, notes)
    except Exception:
        return False


def _finished(input: RemoteFile | Path, output: RemoteFile, notes: RemoteFile | Path | None) -> bool:
    if not output.exists():
        return False
    done = output.modified()
    if done is None:
        return True
    for source in (input, notes):
        if source is None:
            continue
        when = source.modified() if isinstance(source, RemoteFile) else _mtime(source)
        if when is not None and when > done:
            return False
    return True


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def unreadable(remote: RemoteFile) -> str | None:
    """Why ``remote`` cannot be read from here (what to do included), or None."""
    try:
        fs, path = filesystem(remote.url)
        info = fs.info(path)
    except FileNotFoundError:
        return "it does not exist; check the URL."
    except Exception as exc:  # a missing driver, credentials, the network
        return f"{first_line(exc).rstrip('.')}; check the URL and this machine's drivers and credentials."
    return None if info.get("type") != "directory" else "it is a folder, not a file."
