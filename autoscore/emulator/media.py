"""The storage side: CDN downloads with byte ranges, both upload routes, and the signed PUT.

A real CDN answers ``Range`` requests, so a client can resume a download cut short
instead of fetching it all again; a real presigned URL refuses anything that differs from
what was signed. Both behaviours are here so the client meets them before production does.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import math
import mimetypes
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from .contract import (
    MAX_UPLOAD,
    MEDIA_PREFIX,
    PUT_PREFIX,
    UPLOAD_PATH,
    UPLOADS_PATH,
    BadInput,
    is_int,
    upload_extension,
)
from .uploads import PutRefused

if TYPE_CHECKING:
    from .handler import Handler
    from .server import Emulator

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_UNSATISFIABLE = (-1, -1)
_FALLBACK_TYPES = {"opus": "audio/ogg", "m4a": "audio/mp4", "aac": "audio/aac", "flac": "audio/flac"}


def byte_range(header: str, total: int) -> tuple[int, int] | None:
    """The inclusive (first, last) bytes a single-range header asks for.

    None means the header is to be ignored (several ranges, other units, nonsense: the RFC
    lets a server answer those with the whole body); ``(-1, -1)`` means no byte of it exists.
    """
    match = _RANGE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0 or total == 0:
            return _UNSATISFIABLE
        return max(0, total - int(last)), total - 1
    start = int(first)
    end = total - 1 if last == "" else int(last)
    if start >= total:
        return _UNSATISFIABLE
    if end < start:
        return None
    return start, min(end, total - 1)


def _send_bytes(h: Handler, data: bytes) -> bool:
    """Answer with ``data`` or the byte range asked for, through the download faults.

    True when the answer ended at the file's last byte, i.e. the client now has it all.
    """
    faults = h.emu.faults
    total = len(data)
    header = h.headers.get("Range")
    span = None
    if header is not None and not faults.take("no_range"):
        span = byte_range(header, total)
        if span == _UNSATISFIABLE:
            h.send_api_error(416, "Range not satisfiable", {"Content-Range": f"bytes */{total}"})
            return False
    first, last = span or (0, total - 1)
    body = data[first:last + 1]
    status = 206 if span else 200
    headers = {"Accept-Ranges": "bytes"}
    if span:
        headers["Content-Range"] = f"bytes {first}-{last}/{total}"
    if faults.take("truncate_download"):
        # A whole-file answer claims more than the file; a range claims its own size. Both stop halfway.
        declared = len(body) + 4096 if status == 200 else len(body)
        _head(h, status, declared, headers)
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.drop()
        return False
    _head(h, status, len(body), headers)
    if faults.slow_download > 0:
        pieces = 10
        step = max(1, math.ceil(len(body) / pieces))
        for i in range(0, len(body), step):
            time.sleep(faults.slow_download / pieces)
            h.wfile.write(body[i:i + step])
            h.wfile.flush()
    else:
        h.wfile.write(body)
    return last == total - 1


def _head(h: Handler, status: int, length: int, headers: dict[str, str]) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "application/octet-stream")
    h.send_header("Content-Length", str(length))
    for name, value in headers.items():
        h.send_header(name, value)
    h.end_headers()


def download(h: Handler, name: str) -> None:
    emu = h.emu
    emu.count("downloads")
    task = emu.task(name.rsplit(".", 1)[0])
    if task is None or emu.status_of(task) != "completed" or task.output is None:
        h.send_api_error(404, "no such file")
        return
    if _send_bytes(h, task.output):
        emu.release(task)


def _token(path: str) -> str:
    return path[len(MEDIA_PREFIX):].split("/", 1)[0]


def upload_from_url(emu: Emulator, url: str) -> bytes | None:
    """The bytes behind a download_url this server handed out (it fetches nothing else)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != emu.base_url or not parts.path.startswith(MEDIA_PREFIX):
        return None
    return emu.media.get(_token(parts.path))


def fetch_upload(h: Handler, path: str) -> None:
    """A download_url: 404 until its bytes have arrived (a ticket alone stores nothing)."""
    data = h.emu.media.get(_token(path))
    if data is None:
        h.send_api_error(404, "no such file")
    else:
        _send_bytes(h, data)


def _media_url(emu: Emulator, token: str, filename: str) -> str:
    return f"{emu.base_url}{MEDIA_PREFIX}{token}/{quote(filename, safe='')}"


def _upload_request(h: Handler, enabled: bool, path: str) -> bytes | None:
    """The body of an upload call, or None once answered (route switched off, or no key)."""
    h.emu.count("uploads")
    raw = h.body()
    if not enabled:
        h.no_route("POST", path)
        return None
    if not h.authorized():
        return None
    return raw


def upload_multipart(h: Handler) -> None:
    """The older route: the file travels inside the API call, as multipart form field ``file``."""
    emu = h.emu
    raw = _upload_request(h, emu.legacy_upload, UPLOAD_PATH)
    if raw is None:
        return
    if len(raw) > MAX_UPLOAD:
        h.send_api_error(413, "file too large: uploads are limited to 50 MB")
        return
    ctype = h.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise BadInput("upload must be multipart/form-data with a 'file' field")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + raw
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") != "file":
            continue
        filename = part.get_filename() or "upload.bin"
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            raise BadInput("the 'file' field is empty")
        upload_extension(filename)
        now = time.monotonic()
        emu.sweep(now)
        token = emu.new_id()
        emu.media.store(token, filename, data, now)
        info = {"type": "audio", "download_url": _media_url(emu, token, filename), "filename": filename,
                "size": len(data)}
        h.send_json(200, {"code": 200, "message": "success", "data": info})
        return
    raise BadInput("upload must carry a 'file' field")


def upload_ticket(h: Handler) -> None:
    """The current route: a JSON description in, a signed PUT URL and the future download_url out."""
    emu = h.emu
    raw = _upload_request(h, emu.current_upload, UPLOADS_PATH)
    if raw is None:
        return
    body = h.json_body(raw)
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip() or "/" in filename or "\\" in filename:
        raise BadInput("filename is required: the file's name without folders, e.g. 'take.flac'")
    ext = upload_extension(filename)
    size: Any = body.get("size")
    if not is_int(size) or size < 1:
        raise BadInput("size is required: the file's length in bytes, a whole number above 0")
    if size > MAX_UPLOAD:
        h.send_api_error(413, "file too large: uploads are limited to 50 MB")
        return
    content_type = body.get("content_type")
    if content_type is None:
        guessed = mimetypes.guess_type(filename)[0]
        content_type = guessed or _FALLBACK_TYPES.get(ext, "application/octet-stream")
    elif not isinstance(content_type, str) or not content_type.strip():
        raise BadInput("content_type must be a MIME type such as 'audio/flac'")
    emu.sweep()
    token = emu.new_id()
    expires = int(time.time() + emu.upload_url_lifetime)
    query = emu.media.issue(token, filename, int(size), content_type, expires)
    instruction = {"method": "PUT", "url": f"{emu.base_url}{PUT_PREFIX}{token}?{query}",
                   "headers": {"Content-Type": content_type}}
    data = {"download_url": _media_url(emu, token, filename), "upload": instruction}
    h.send_json(200, {"code": 200, "message": "success", "data": data})


def _storage_error(h: Handler, status: int, code: str, message: str) -> None:
    """Object storage answers in XML, not in the API's JSON envelope."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>").encode()
    h.send_body(status, body, "application/xml")


def put_upload(h: Handler, token: str, query: str) -> None:
    """The signed URL: no API key here, only the signature and what it covers."""
    emu = h.emu
    emu.count("upload_puts")
    length = h.headers.get("Content-Length")
    if length is None or not length.isdigit():
        h.close_connection = True
        _storage_error(h, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        return
    if int(length) > MAX_UPLOAD:
        h.close_connection = True
        _storage_error(h, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        return
    data = h.rfile.read(int(length)) if int(length) else b""
    if "Authorization" in h.headers:
        _storage_error(h, 403, "InvalidArgument", "Only one auth mechanism allowed: the URL is already "
                                                  "signed, send no Authorization header.")
        return
    if emu.faults.take("upload_put_403"):
        _storage_error(h, 403, "AccessDenied", "Request has expired")
        return
    params = parse_qs(query)
    try:
        emu.media.accept_put(
            unquote(token), params.get("expires", [""])[0], params.get("signature", [""])[0],
            h.headers.get("Content-Type", ""), data, time.monotonic(), time.time(),
        )
    except PutRefused as refused:
        _storage_error(h, refused.status, refused.code, refused.message)
        return
    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    h.send_body(200, b"", "text/plain", {"ETag": f'"{etag}"'})
