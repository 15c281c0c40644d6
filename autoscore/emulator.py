"""A local stand-in for WaveSpeedAI's Stable Audio 3 endpoints, served over real HTTP.

No machine here reaches the real service, yet the remote backend must be tested the way
it will be used: over sockets, with statuses that advance over time and with the faults
a real service shows (rate limits, 5xx, dropped connections, failed tasks, slow or cut
downloads). This server speaks the contract in ``/work/shared/wavespeed-api.md`` on
127.0.0.1 only; its music comes from the procedural composer.

Faults are switched per instance (``Emulator.faults`` or ``POST /_emulator/faults``) and
every request is counted per endpoint (``Emulator.stats`` or ``GET /_emulator/stats``),
so a test can prove, for example, that a submission was sent exactly once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import email.parser
import email.policy
import json
import logging
import math
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .backends.base import FORMATS, ContinuationRequest, GenerationRequest
from .ffmpeg import decode_bytes, encode_bytes
from .models import Audio

__all__ = ["DEFAULT_LATENCY", "Emulator", "Faults", "serve"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_LATENCY = 0.5
MUSIC_MODEL = "stability-ai/stable-audio-3/music"
OUTPAINT_MODEL = "stability-ai/stable-audio-3/audio-outpainting"
MUSIC_PATH = "/api/v3/" + MUSIC_MODEL
OUTPAINT_PATH = "/api/v3/" + OUTPAINT_MODEL
UPLOAD_PATH = "/api/v3/media/upload/binary"
RESULT_PREFIX = "/api/v3/predictions/"
MAX_UPLOAD = 50 * 1024 * 1024
UPLOAD_TYPES = ("mp3", "wav", "ogg", "aac", "flac", "webm", "m4a", "opus")
OUTPUT_RATE = 44100
STAT_NAMES = (
    "requests", "submits", "outpaints", "polls", "downloads", "uploads", "unauthorized", "peak_active",
)


@dataclass
class Faults:
    """Misbehaviour to inject. Counters apply to the next N matching requests, then run out."""

    submit_429: int = 0
    """Answer the next N submissions 429 without creating a task (nothing is charged)."""
    poll_429: int = 0
    poll_500: int = 0
    retry_after: str = "1"
    """The Retry-After header sent with every injected 429 (seconds, an HTTP date, or garbage)."""
    drop_submit: int = 0
    """Create the task, then close the socket without answering: the client cannot know."""
    drop_poll: int = 0
    stall_submit: float = 0.0
    """Seconds every submission waits, after creating its task, before answering."""
    fail_tasks: int = 0
    fail_error: str = "Inference failed: the GPU worker ran out of memory (transient)."
    slow_download: float = 0.0
    """Seconds each download spends trickling its body out."""
    truncate_download: int = 0
    """Send a Content-Length larger than the body, then close."""
    fail_submit_number: int = 0
    """1-based index (over this server's life, see ``stats['submits']``) of a submission to refuse."""
    fail_submit_status: int = 500
    outpaint_extension_only: int = 0
    """Answer the next N outpaintings with only the new seconds, as a stricter provider might."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, name: str) -> bool:
        """Use up one of counter ``name``; True when the fault fires for this request."""
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def update(self, **values: Any) -> None:
        known = {f.name: f.type for f in fields(self) if not f.name.startswith("_")}
        with self._lock:
            for name, value in values.items():
                if name not in known:
                    raise KeyError(name)
                current = getattr(self, name)
                setattr(self, name, type(current)(value))

    def reset(self) -> None:
        self.update(**{f.name: f.default for f in fields(self) if not f.name.startswith("_")})

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class _Task:
    id: str
    model: str
    output_format: str
    created: float
    created_at: str
    ready_at: float
    done: threading.Event = field(default_factory=threading.Event)
    output: bytes | None = None
    error: str = ""
    inference_ms: int = 0
    released: bool = False


class _BadInput(Exception):
    """A 400 answer: the message goes back to the client."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _check_common(body: dict[str, Any]) -> dict[str, Any]:
    """The fields music and outpainting share, with the contract's ranges and defaults."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _BadInput("prompt is required and must be a non-empty string")
    negative = body.get("negative_prompt", "")
    if not isinstance(negative, str):
        raise _BadInput("negative_prompt must be a string")
    steps = body.get("num_inference_steps", 8)
    if not _is_int(steps) or not 1 <= steps <= 100:
        raise _BadInput("num_inference_steps must be an integer from 1 to 100")
    guidance = body.get("guidance_scale", 1)
    if not _is_number(guidance) or not 0 <= guidance <= 25:
        raise _BadInput("guidance_scale must be a number from 0 to 25")
    fmt = body.get("output_format", "mp3")
    if fmt not in FORMATS:
        raise _BadInput(f"output_format must be one of {', '.join(FORMATS)}")
    sync = body.get("enable_sync_mode", False)
    if not isinstance(sync, bool):
        raise _BadInput("enable_sync_mode must be a boolean")
    return {
        "prompt": prompt,
        "negative_prompt": negative,
        "steps": int(steps),
        "guidance": float(guidance),
        "output_format": fmt,
        "sync": sync,
    }


def _seconds(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if not _is_int(value) or not low <= value <= high:
        raise _BadInput(f"{name} must be a whole number of seconds from {low} to {high}")
    return int(value)


class Emulator:
    """The server plus its state; a context manager that serves from a background thread."""

    def __init__(
        self,
        port: int = 0,
        latency: float = DEFAULT_LATENCY,
        fail_rate: float = 0.0,
        seed: int = 0,
        api_key: str | None = None,
        faults: Faults | None = None,
        reuse_renders: bool = False,
    ) -> None:
        """``api_key=None`` accepts any non-empty bearer token; a missing one is still a 401.

        ``reuse_renders`` answers a music request identical to an earlier one with the
        earlier audio instead of composing it again. The real service renders on its own
        GPUs while this one competes with the client for the same cores; a benchmark that
        warms it up once then measures a latency that really is fixed.
        """
        if latency < 0 or not 0.0 <= fail_rate <= 1.0:
            raise ValueError("latency must be >= 0 and fail_rate within 0..1")
        self.latency = latency
        self.fail_rate = fail_rate
        self.api_key = api_key
        self.faults = faults or Faults()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._tasks: dict[str, _Task] = {}
        self._active = 0
        """Tasks created and not yet downloaded (or reported failed): what a client has in flight."""
        self._uploads: dict[str, bytes] = {}
        self.submitted_bodies: list[dict[str, Any]] = []
        """Every accepted submission's JSON, in order: lets tests check what a client sent."""
        self._workers = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="emu-gen")
        self._renders: dict[str, bytes] | None = {} if reuse_renders else None
        self._server = _Server((HOST, port), _Handler)
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Emulator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counting --------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Requests seen per endpoint, and ``peak_active``: most tasks a client had in flight at once.

        ``submits`` counts every submission (music and outpainting); ``outpaints`` only the latter.
        """
        with self._lock:
            counts = dict(self._counts)
        for name in STAT_NAMES:
            counts.setdefault(name, 0)
        return counts

    def count(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def reset(self) -> None:
        """Forget counts and faults (tasks and uploads stay: a client may still be polling)."""
        with self._lock:
            self._counts.clear()
            self.submitted_bodies.clear()
            for task in self._tasks.values():
                task.released = True
            self._active = 0
        self.faults.reset()

    # -- tasks -----------------------------------------------------------------------

    def _new_id(self) -> str:
        with self._lock:
            return uuid.UUID(int=self._rng.getrandbits(128), version=4).hex

    def _decide_failure(self) -> str:
        if self.faults.take("fail_tasks"):
            return self.faults.fail_error
        with self._lock:
            roll = self._rng.random()
        if roll < self.fail_rate:
            return "Inference failed: emulated random failure (transient), please retry."
        return ""

    def create_task(self, model: str, fmt: str, make: Callable[[], Audio], key: str | None = None) -> _Task:
        now = time.monotonic()
        task = _Task(
            id=self._new_id(),
            model=model,
            output_format=fmt,
            created=now,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            ready_at=now + self.latency,
        )
        with self._lock:
            self._tasks[task.id] = task
            self._active += 1
            self._counts["peak_active"] = max(self._counts["peak_active"], self._active)
        failure = self._decide_failure()
        if failure:
            task.error = failure
            task.done.set()
        else:
            self._workers.submit(self._render, task, make, key)
        return task

    def _render(self, task: _Task, make: Callable[[], Audio], key: str | None) -> None:
        started = time.monotonic()
        try:
            reused = self._renders.get(key) if self._renders is not None and key is not None else None
            task.output = reused if reused is not None else encode_bytes(make(), task.output_format)
            if self._renders is not None and key is not None:
                self._renders[key] = task.output
        except Exception as exc:  # whatever breaks, the client sees a failed task, like the real thing
            task.error = f"Inference failed: {exc}"
        task.inference_ms = round((time.monotonic() - started) * 1000)
        task.done.set()

    def release(self, task: _Task) -> None:
        """The client has what it came for; the task stops counting towards ``peak_active``."""
        with self._lock:
            if not task.released:
                task.released = True
                self._active -= 1

    def task(self, task_id: str) -> _Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def status_of(self, task: _Task) -> str:
        now = time.monotonic()
        if now - task.created < self.latency / 4:
            return "created"
        if now < task.ready_at or not task.done.is_set():
            return "processing"
        return "failed" if task.error else "completed"

    def wait_finished(self, task: _Task) -> None:
        """For ``enable_sync_mode``: hold the answer until the task is over."""
        task.done.wait()
        delay = task.ready_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def envelope(self, task: _Task) -> dict[str, Any]:
        status = self.status_of(task)
        outputs = [f"{self.base_url}/_cdn/{task.id}.{task.output_format}"] if status == "completed" else []
        return {
            "code": 200,
            "message": "success",
            "data": {
                "id": task.id,
                "model": task.model,
                "status": status,
                "outputs": outputs,
                "urls": {"get": f"{self.base_url}{RESULT_PREFIX}{task.id}/result"},
                "has_nsfw_contents": [False] * len(outputs),
                "error": task.error if status == "failed" else "",
                "created_at": task.created_at,
                "timings": {"inference": task.inference_ms if status == "completed" else 0},
            },
        }

    def store_upload(self, filename: str, data: bytes) -> str:
        token = self._new_id()
        with self._lock:
            self._uploads[token] = data
        return f"{self.base_url}/_media/{token}/{filename}"

    def upload_from_url(self, url: str) -> bytes | None:
        """The bytes behind a download_url this server handed out (it fetches nothing else)."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base_url or not parts.path.startswith("/_media/"):
            return None
        token = parts.path.split("/")[2]
        with self._lock:
            return self._uploads.get(token)


def _music(spec: dict[str, Any], duration: int) -> Callable[[], Audio]:
    from .backends.procedural import compose

    request = GenerationRequest(
        prompt=spec["prompt"],
        duration=duration,
        negative_prompt=spec["negative_prompt"],
        steps=spec["steps"],
        guidance=spec["guidance"],
        output_format=spec["output_format"],
    )
    return lambda: compose(request)


def _outpainting(
    spec: dict[str, Any], source: bytes, before: int, after: int, extension_only: bool = False
) -> Callable[[], Audio]:
    def make() -> Audio:
        from .backends.procedural import continue_piece

        audio = decode_bytes(source, OUTPUT_RATE, 2)
        if after > 0:
            audio = continue_piece(
                ContinuationRequest(
                    source=audio,
                    prompt=spec["prompt"],
                    extend_after=after,
                    negative_prompt=spec["negative_prompt"],
                    steps=spec["steps"],
                    guidance=spec["guidance"],
                    output_format=spec["output_format"],
                )
            )
        if before > 0:  # the composer only continues forwards; a quiet lead-in keeps the length honest
            lead = np.zeros((before * audio.rate, audio.channels), np.float32)
            audio = Audio(np.concatenate([lead, audio.samples]), audio.rate)
        if extension_only:
            audio = Audio(audio.samples[-after * audio.rate:], audio.rate)
        return audio

    return make


_REFUSALS = {
    402: "Insufficient credits: top up your balance to continue (emulated)",
    403: "Forbidden: this API key has no access to the model (emulated)",
    500: "Internal server error (emulated)",
    503: "Service temporarily unavailable (emulated)",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out, hung up) is normal here, not worth a traceback."""
        log.debug("emulator: connection from %s ended abnormally", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WaveSpeedEmulator/1"

    @property
    def emu(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default; the paths hold no keys
        log.debug("emulator: " + format, *args)

    # -- plumbing --------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"code": status, "message": message, "data": None}, extra)

    def _drop(self) -> None:
        """Close the socket without a byte of answer, as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        ok = bool(token) and (self.emu.api_key is None or token == self.emu.api_key)
        if not ok:
            self.emu.count("unauthorized")
            self._error(401, "Unauthorized: invalid or missing API key")
        return ok

    def _json_body(self, raw: bytes | None = None) -> dict[str, Any]:
        try:
            body = json.loads((self._body() if raw is None else raw) or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadInput("the request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise _BadInput("the request body must be a JSON object")
        return body

    # -- routing ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self.emu.count("requests")
        path = urlsplit(self.path).path
        if path.startswith(RESULT_PREFIX) and path.endswith("/result"):
            self._poll(path[len(RESULT_PREFIX) : -len("/result")])
        elif path.startswith("/_cdn/"):
            self._download(path[len("/_cdn/") :])
        elif path.startswith("/_media/"):
            data = self.emu.upload_from_url(self.emu.base_url + path)
            if data is None:
                self._error(404, "no such file")
            else:
                self._send(200, data, "application/octet-stream")
        elif path == "/_emulator/stats":
            self._json(200, self.emu.stats)
        elif path == "/_emulator/faults":
            self._json(200, self.emu.faults.as_dict())
        else:
            self._error(404, f"no route for GET {path}")

    def do_POST(self) -> None:
        self.emu.count("requests")
        path = urlsplit(self.path).path
        try:
            if path == MUSIC_PATH:
                self._submit_music()
            elif path == OUTPAINT_PATH:
                self._submit_outpainting()
            elif path == UPLOAD_PATH:
                self._upload()
            elif path == "/_emulator/faults":
                self._set_faults()
            elif path == "/_emulator/reset":
                self._body()
                self.emu.reset()
                self._json(200, {"ok": True})
            else:
                self._body()
                self._error(404, f"no route for POST {path}")
        except _BadInput as exc:
            self._error(400, f"Bad request: {exc}")

    # -- endpoints -------------------------------------------------------------------

    def _refuse_submit(self, number: int) -> bool:
        """Faults that answer submission number ``number`` before any task exists."""
        faults = self.emu.faults
        if faults.fail_submit_number and number == faults.fail_submit_number:
            status = faults.fail_submit_status
            self._error(status, _REFUSALS.get(status, "Request refused (emulated)"))
            return True
        if faults.take("submit_429"):
            self._error(429, "Too many requests (emulated)", {"Retry-After": faults.retry_after})
            return True
        return False

    def _answer_submit(self, task: _Task, sync: bool) -> None:
        if self.emu.faults.stall_submit > 0:
            time.sleep(self.emu.faults.stall_submit)
        if self.emu.faults.take("drop_submit"):
            self._drop()
            return
        if sync:
            self.emu.wait_finished(task)
        self._json(200, self.emu.envelope(task))

    def _submit_music(self) -> None:
        raw = self._body()
        number = self.emu.count("submits")
        if not self._authorized() or self._refuse_submit(number):
            return
        body = self._json_body(raw)
        spec = _check_common(body)
        duration = _seconds(body, "duration", 30, 1, 120)
        self.emu.submitted_bodies.append(body)
        task = self.emu.create_task(MUSIC_MODEL, spec["output_format"], _music(spec, duration),
                                    key=json.dumps(body, sort_keys=True))
        self._answer_submit(task, spec["sync"])

    def _submit_outpainting(self) -> None:
        raw = self._body()
        number = self.emu.count("submits")
        self.emu.count("outpaints")
        if not self._authorized() or self._refuse_submit(number):
            return
        body = self._json_body(raw)
        spec = _check_common(body)
        audio_url = body.get("audio")
        if not isinstance(audio_url, str) or not audio_url:
            raise _BadInput("audio is required: the URL of the source audio")
        before = _seconds(body, "extend_seconds_before", 0, 0, 380)
        after = _seconds(body, "extend_seconds_after", 5, 0, 380)
        source = self.emu.upload_from_url(audio_url)
        if source is None:
            raise _BadInput("audio could not be fetched from the given URL")
        self.emu.submitted_bodies.append(body)
        make = _outpainting(spec, source, before, after, self.emu.faults.take("outpaint_extension_only"))
        task = self.emu.create_task(OUTPAINT_MODEL, spec["output_format"], make)
        self._answer_submit(task, spec["sync"])

    def _poll(self, task_id: str) -> None:
        self.emu.count("polls")
        if not self._authorized():
            return
        faults = self.emu.faults
        if faults.take("drop_poll"):
            self._drop()
            return
        if faults.take("poll_429"):
            self._error(429, "Too many requests (emulated)", {"Retry-After": faults.retry_after})
            return
        if faults.take("poll_500"):
            self._error(500, "Internal server error (emulated)")
            return
        task = self.emu.task(task_id)
        if task is None:
            self._error(404, f"prediction {task_id} not found")
            return
        answer = self.emu.envelope(task)
        if answer["data"]["status"] == "failed":
            self.emu.release(task)
        self._json(200, answer)

    def _download(self, name: str) -> None:
        self.emu.count("downloads")
        task = self.emu.task(name.rsplit(".", 1)[0])
        if task is None or self.emu.status_of(task) != "completed" or task.output is None:
            self._error(404, "no such file")
            return
        data = task.output
        faults = self.emu.faults
        if faults.take("truncate_download"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) + 4096))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._drop()
            return
        if faults.slow_download > 0:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            pieces = 10
            step = math.ceil(len(data) / pieces)
            for i in range(0, len(data), step):
                time.sleep(faults.slow_download / pieces)
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
            return
        self._send(200, data, "application/octet-stream")
        self.emu.release(task)

    def _upload(self) -> None:
        self.emu.count("uploads")
        raw = self._body()
        if not self._authorized():
            return
        if len(raw) > MAX_UPLOAD:
            self._error(413, "file too large: uploads are limited to 50 MB")
            return
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise _BadInput("upload must be multipart/form-data with a 'file' field")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + raw
        )
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") != "file":
                continue
            filename = part.get_filename() or "upload.bin"
            data = part.get_payload(decode=True)
            if not isinstance(data, bytes) or not data:
                raise _BadInput("the 'file' field is empty")
            ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            if ext not in UPLOAD_TYPES:
                allowed = ", ".join(UPLOAD_TYPES)
                raise _BadInput(f"unsupported file type {ext!r}: audio uploads take {allowed}")
            url = self.emu.store_upload(filename, data)
            self._json(
                200,
                {
                    "code": 200,
                    "message": "success",
                    "data": {"type": "audio", "download_url": url, "filename": filename, "size": len(data)},
                },
            )
            return
        raise _BadInput("upload must carry a 'file' field")

    def _set_faults(self) -> None:
        body = self._json_body()
        try:
            self.emu.faults.update(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise _BadInput(f"unknown or malformed fault: {exc}") from exc
        self._json(200, self.emu.faults.as_dict())


def serve(
    port: int = 8777,
    latency: float = DEFAULT_LATENCY,
    fail_rate: float = 0.0,
    seed: int = 0,
    api_key: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the emulator in the foreground until Ctrl-C (what ``autoscore emulator`` calls).

    ``api_key=None`` accepts any non-empty key, so ``--api-key`` is only needed to test a
    wrong key. The key itself is never printed.
    """
    say = announce or (lambda text: print(text, file=sys.stderr, flush=True))
    emulator = Emulator(port=port, latency=latency, fail_rate=fail_rate, seed=seed, api_key=api_key)
    with emulator:
        say(
            f"WaveSpeed emulator listening on {emulator.base_url} "
            f"(latency {latency:g} s, fail rate {fail_rate:g}). Point autoscore at it with "
            f"--api-base {emulator.base_url}; stats at {emulator.base_url}/_emulator/stats. Ctrl-C stops it."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            say("Emulator stopped.")
