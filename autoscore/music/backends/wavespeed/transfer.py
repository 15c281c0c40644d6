"""Moving bytes: the source audio up for an outpainting, the finished audio down.

Both are free to repeat, so both retry; neither may lose what was paid for.

* Upload uses the platform's current two-step route (ask for a signed URL, then PUT the
  bytes there with exactly the headers it names and no API key), and falls back to the
  older multipart route only when the current one answers 404 or 405.
* Download streams to a file with a timeout on each read rather than on the whole body
  (a two-minute FLAC on a slow line is fine as long as it keeps coming), resumes a
  dropped transfer with ``Range`` when the server allows it, and checks the length it
  was promised.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from ....errors import BackendError, TransportError
from .answers import Step, TaskRef, describe, envelope_data, message_of, raise_for_answer

__all__ = ["UPLOADS_PATH", "UPLOAD_BINARY_PATH", "download_to", "upload_source"]

UPLOADS_PATH = "/api/v3/media/uploads"
UPLOAD_BINARY_PATH = "/api/v3/media/upload/binary"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class Sender(Protocol):
    """The parts of the client a transfer needs (the client itself satisfies it)."""

    base_url: str

    async def request(
        self, method: str, url: str, ref: TaskRef, step: Step, *, read_timeout: float,
        exact_headers: bool = False, **kwargs: Any
    ) -> httpx.Response: ...

    def http(self) -> httpx.AsyncClient: ...

    def read_timeout(self, seconds: float, ref: TaskRef) -> float: ...

    def api_headers(self) -> dict[str, str]: ...

    async def pause(self, retry: int, hint: str | None, ref: TaskRef, problem: str) -> None: ...

    @property
    def attempts(self) -> int: ...

    @property
    def upload_timeout(self) -> float: ...

    @property
    def download_timeout(self) -> float: ...

    @property
    def connect_timeout(self) -> float: ...


async def upload_source(sender: Sender, data: bytes, ref: TaskRef, *, filename: str = "source.flac",
                        content_type: str = "audio/flac") -> str:
    """Upload ``data`` and return the URL later requests use."""
    ticket = {"filename": filename, "size": len(data), "content_type": content_type}
    for attempt in (1, 2):
        resp = await sender.request(
            "POST", sender.base_url + UPLOADS_PATH, ref, Step.UPLOAD, read_timeout=sender.upload_timeout,
            json=ticket, headers=sender.api_headers(),
        )
        if resp.status_code in (404, 405):
            return await _upload_multipart(sender, data, ref, filename, content_type)
        body = envelope_data(resp, ref, Step.UPLOAD)
        url, method, headers, download_url = _instruction(body)
        # Exactly the signed headers: no key, and none of the client's own defaults.
        put = await sender.request(
            method, url, ref, Step.UPLOAD, read_timeout=sender.upload_timeout, content=data, headers=headers,
            exact_headers=True,
        )
        if 200 <= put.status_code < 300:
            return download_url
        if put.status_code == 403 and attempt == 1:
            continue  # a signed URL can expire between the ticket and the PUT: ask for a fresh one
        raise BackendError(
            f"The storage behind WaveSpeed refused the upload of the source audio while trying to "
            f"{ref.what} (HTTP {put.status_code}: {message_of(put)}). Nothing was charged; run again, "
            "or use --join crossfade, which needs no upload.",
            status=put.status_code, charged=False,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _instruction(body: dict[str, Any]) -> tuple[str, str, dict[str, str], str]:
    upload = body.get("upload")
    download_url = body.get("download_url")
    if not isinstance(upload, dict) or not isinstance(download_url, str) or not download_url:
        raise BackendError("WaveSpeed accepted the upload of the source audio but returned no upload "
                           "instruction or no URL; please report this.", charged=False)
    method, url, headers = upload.get("method"), upload.get("url"), upload.get("headers") or {}
    if (not isinstance(method, str) or method.upper() != "PUT" or not isinstance(url, str)
            or not url.startswith(("http://", "https://")) or not isinstance(headers, dict)):
        raise BackendError(f"WaveSpeed sent an upload instruction autoscore cannot follow ({method!r} "
                           "to a non-URL); please report this.", charged=False)
    return url, "PUT", {str(k): str(v) for k, v in headers.items()}, download_url


async def _upload_multipart(
    sender: Sender, data: bytes, ref: TaskRef, filename: str, content_type: str
) -> str:
    resp = await sender.request(
        "POST", sender.base_url + UPLOAD_BINARY_PATH, ref, Step.UPLOAD, read_timeout=sender.upload_timeout,
        files={"file": (filename, data, content_type)}, headers=sender.api_headers(),
    )
    url = envelope_data(resp, ref, Step.UPLOAD).get("download_url")
    if not isinstance(url, str) or not url:
        raise BackendError("WaveSpeed accepted the upload of the source audio but returned no URL.",
                           charged=False)
    return url


@dataclass
class _Progress:
    have: int = 0
    """Bytes on disk that a resumed request continues from."""
    resumable: bool = False
    """The server said it takes ``Range`` (Accept-Ranges, or an earlier 206)."""
    problem: str = ""


async def download_to(sender: Sender, url: str, ref: TaskRef, folder: Path, suffix: str) -> Path:
    """Stream ``url`` into a new file in ``folder``; resume with Range after a drop."""
    path = folder / f"{ref.task_id or 'download'}-{uuid.uuid4().hex[:8]}{suffix}"
    progress = _Progress()
    failures = 0
    # A try that moved the download on does not count against the tries, up to a bound.
    for tries in range(1, 4 * sender.attempts + 1):
        if tries > 1:
            await sender.pause(max(failures, 1), None, ref, f"download ({progress.problem})")
        if not progress.resumable:
            progress.have = 0
        before = progress.have
        try:
            if await _fetch(sender, url, ref, path, progress):
                return path
        except (httpx.TransportError, TimeoutError) as exc:
            progress.problem = describe(exc)
        if not (progress.resumable and progress.have > before):
            failures += 1
        if failures >= sender.attempts:
            break
    with contextlib.suppress(OSError):
        path.unlink()
    raise TransportError(
        f"Could not download the audio of WaveSpeed task {ref.task_id} after {sender.attempts} tries "
        f"({progress.problem}). The task completed and was charged; run again soon to fetch it again "
        "(the provider keeps results for a while).",
        task_id=ref.task_id, charged=True,
    )


async def _fetch(sender: Sender, url: str, ref: TaskRef, path: Path, progress: _Progress) -> bool:
    """One GET, appending to what is on disk when resuming; True when the file is whole."""
    # Identity encoding: a byte range must count the file's bytes, not a compressed stream's.
    headers = {"Accept-Encoding": "identity"}
    if progress.have:
        headers["Range"] = f"bytes={progress.have}-"
    timeout = httpx.Timeout(sender.download_timeout, connect=sender.connect_timeout,
                            pool=sender.connect_timeout)
    # Per-read timeouts, so a long body that keeps coming is fine; the job's deadline still holds.
    async with asyncio.timeout(sender.read_timeout(float("inf"), ref) if ref.deadline else None):
        async with sender.http().stream("GET", url, headers=headers, timeout=timeout,
                                        follow_redirects=True) as resp:
            if resp.status_code in RETRY_STATUSES or resp.status_code == 416:
                await resp.aread()
                progress.problem = f"HTTP {resp.status_code}: {message_of(resp)}"
                progress.resumable = progress.resumable and resp.status_code != 416
                return False
            if resp.status_code not in (200, 206):
                await resp.aread()
                raise_for_answer(resp, ref, Step.DOWNLOAD)
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            progress.resumable = resp.headers.get("Accept-Ranges", "").lower() == "bytes" and not encoded
            total: int | None = None
            if resp.status_code == 206 and not encoded:
                match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != progress.have:
                    progress.problem, progress.resumable = "the server resumed at the wrong place", False
                    return False
                progress.resumable = True
                total = int(match.group(3)) if match.group(3) != "*" else int(match.group(2)) + 1
            else:  # the whole file again, whatever we asked for
                progress.have = 0
                length = resp.headers.get("Content-Length", "")
                # A compressed body's length is not the file's: then only decoding can judge it.
                total = int(length) if length.isdigit() and not encoded else None
            with path.open("ab" if progress.have else "wb") as out:
                async for piece in (resp.aiter_bytes() if encoded else resp.aiter_raw()):
                    out.write(piece)
                    progress.have += len(piece)
    if total is not None and progress.have != total:
        progress.problem = f"got {progress.have} of {total} bytes"
        return False
    if progress.have == 0:
        progress.problem = "the file was empty"
        return False
    return True
