"""HTTP plumbing and the route table; the routes themselves live in ``predictions`` and ``media``.

One handler class serves the API, the CDN, the signed upload URLs and the admin endpoints,
because on loopback they share a port; the split into modules follows what each route
stands in for (the prediction API, object storage), not how it is reached.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import media, predictions
from .contract import (
    CDN_PREFIX,
    MEDIA_PREFIX,
    MUSIC_PATH,
    OUTPAINT_PATH,
    PUT_PREFIX,
    RESULT_PREFIX,
    UPLOAD_PATH,
    UPLOADS_PATH,
    BadInput,
)

if TYPE_CHECKING:
    from .server import Emulator

log = logging.getLogger("autoscore.emulator")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WaveSpeedEmulator/1"

    @property
    def emu(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default; the paths hold no keys
        log.debug("emulator: " + format, *args)

    # -- plumbing --------------------------------------------------------------------

    def send_body(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", extra)

    def send_api_error(
        self, status: int, message: str, extra: dict[str, str] | None = None, data: Any = None
    ) -> None:
        self.send_json(status, {"code": status, "message": message, "data": data}, extra)

    def drop(self) -> None:
        """Close the socket without a byte of answer, as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        ok = bool(token) and (self.emu.api_key is None or token == self.emu.api_key)
        if not ok:
            self.emu.count("unauthorized")
            self.send_api_error(401, "Unauthorized: invalid or missing API key")
        return ok

    def json_body(self, raw: bytes | None = None) -> dict[str, Any]:
        try:
            body = json.loads((self.body() if raw is None else raw) or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput("the request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise BadInput("the request body must be a JSON object")
        return body

    def no_route(self, method: str, path: str) -> None:
        self.send_api_error(404, f"no route for {method} {path}")

    # -- routing ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self.emu.count("requests")
        path = urlsplit(self.path).path
        if path.startswith(RESULT_PREFIX):
            task_id = path[len(RESULT_PREFIX):].removesuffix("/result")
            if task_id and "/" not in task_id:
                predictions.poll(self, task_id)
            else:
                self.no_route("GET", path)
        elif path.startswith(CDN_PREFIX):
            media.download(self, path[len(CDN_PREFIX):])
        elif path.startswith(MEDIA_PREFIX):
            media.fetch_upload(self, path)
        elif path == "/_emulator/stats":
            self.send_json(200, self.emu.stats)
        elif path == "/_emulator/faults":
            self.send_json(200, self.emu.faults.as_dict())
        else:
            self.no_route("GET", path)

    def do_POST(self) -> None:
        self.emu.count("requests")
        path = urlsplit(self.path).path
        try:
            if path == MUSIC_PATH:
                predictions.submit_music(self)
            elif path == OUTPAINT_PATH:
                predictions.submit_outpainting(self)
            elif path == UPLOAD_PATH:
                media.upload_multipart(self)
            elif path == UPLOADS_PATH:
                media.upload_ticket(self)
            elif path == "/_emulator/faults":
                self._set_faults()
            elif path == "/_emulator/reset":
                self.body()
                self.emu.reset()
                self.send_json(200, {"ok": True})
            else:
                self.body()
                self.no_route("POST", path)
        except BadInput as exc:
            self.send_api_error(400, f"Bad request: {exc}")

    def do_PUT(self) -> None:
        self.emu.count("requests")
        parts = urlsplit(self.path)
        if parts.path.startswith(PUT_PREFIX):
            media.put_upload(self, parts.path[len(PUT_PREFIX):], parts.query)
        else:
            self.body()
            self.no_route("PUT", parts.path)

    def _set_faults(self) -> None:
        body = self.json_body()
        try:
            self.emu.faults.update(**body)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"unknown or malformed fault: {exc}") from exc
        self.send_json(200, self.emu.faults.as_dict())
