"""Misbehaviour a real service shows, switched on per emulator and used up request by request.

Counters fire for the next N matching requests and then run out, so a test states exactly
how many failures it expects the client to live through; the same switches are reachable
over HTTP (``POST /_emulator/faults``) for a server in another process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any


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
    upload_put_403: int = 0
    """Answer the next N PUTs to a signed upload URL 403 "Request has expired", as storage does
    when a client waited too long between the ticket and the upload."""
    no_range: int = 0
    """The next N downloads that ask for a byte range get the whole file with a 200, as a CDN
    without range support would answer."""
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
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
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
