"""The emulator's life: a ThreadingHTTPServer on 127.0.0.1 around the service's state.

Tests share one server per module, so every account setting is also a plain attribute
that can change while it runs, and ``reset_settings`` puts back what the constructor was
given. ``serve`` is what ``autoscore emulator`` runs in the foreground.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from .contract import DEFAULT_LATENCY, HOST
from .faults import Faults
from .handler import Handler
from .state import STAT_NAMES, State

log = logging.getLogger("autoscore.emulator")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timed out, hung up) is normal here, not worth a traceback."""
        log.debug("emulator: connection from %s ended abnormally", client_address, exc_info=True)


class Emulator(State):
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
        *,
        max_running: int | None = None,
        per_minute: int | None = None,
        window: float = 60.0,
        tier: str | None = None,
        sync_timeout: float | None = None,
        sync_timeout_style: str = "gateway",
        ttl: float = 3600.0,
        legacy_upload: bool = True,
        current_upload: bool = True,
        upload_url_lifetime: float = 900.0,
    ) -> None:
        """``api_key=None`` accepts any non-empty bearer token; a missing one is still a 401.

        ``reuse_renders`` answers a music request identical to an earlier one with the
        earlier audio instead of composing it again. The real service renders on its own
        GPUs while this one competes with the client for the same cores; a benchmark that
        warms it up once then measures a latency that really is fixed.

        ``tier`` takes on an account level's limits (``"bronze"``: 2 running, 2 a minute);
        ``max_running`` and ``per_minute`` given as well override its numbers.
        ``sync_timeout`` is how long a sync-mode submission may wait before the gateway
        gives up (``sync_timeout_style``: ``"gateway"`` answers 504, ``"envelope"`` a 200
        whose data says the sync wait timed out); the task runs on either way.
        ``legacy_upload`` / ``current_upload`` switch the two upload routes off (404), to
        emulate a deployment that lacks one.
        """
        super().__init__(seed, faults, reuse_renders)
        self.latency = latency
        self.fail_rate = fail_rate
        self.api_key = api_key
        self._settings: dict[str, Any] = {
            "latency": latency, "fail_rate": fail_rate, "tier": tier,
            "max_running": max_running, "per_minute": per_minute, "window": window,
            "sync_timeout": sync_timeout, "sync_timeout_style": sync_timeout_style, "ttl": ttl,
            "legacy_upload": legacy_upload, "current_upload": current_upload,
            "upload_url_lifetime": upload_url_lifetime,
        }
        self.reset_settings()
        self._server = _Server((HOST, port), Handler)
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    def reset_settings(self) -> None:
        """Put every account setting and switch back to what the constructor was given."""
        given = dict(self._settings)
        self.tier = given.pop("tier")
        for name in ("max_running", "per_minute"):
            if given[name] is None:
                del given[name]  # keep the tier's number
        for name, value in given.items():
            setattr(self, name, value)

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

    @property
    def stats(self) -> dict[str, int]:
        """Requests seen per endpoint, and what the account did with them.

        ``submits`` counts every submission (music and outpainting, refused ones too);
        ``outpaints`` only the latter; ``accepted`` those that created a task;
        ``rate_limited`` those refused 429 by the account's limits (not by the
        ``submit_429`` fault). ``peak_active`` is the most tasks a client had in flight
        (created, not yet downloaded); ``peak_running`` the most running at once by the
        server's clock. ``uploads`` counts calls to either upload route (a switched-off
        one's 404s too, so a client's fallback shows), ``upload_puts`` the PUTs to
        signed URLs; ``sync_timeouts`` the sync-mode waits that ran out; ``evicted`` what
        the ``ttl`` sweep dropped.
        """
        with self._lock:
            counts = dict(self._counts)
        for name in STAT_NAMES:
            counts.setdefault(name, 0)
        return counts


def serve(
    port: int = 8777,
    latency: float = DEFAULT_LATENCY,
    fail_rate: float = 0.0,
    seed: int = 0,
    api_key: str | None = None,
    announce: Callable[[str], None] | None = None,
    *,
    tier: str | None = None,
    max_running: int | None = None,
    per_minute: int | None = None,
    window: float = 60.0,
    sync_timeout: float | None = None,
    ttl: float = 3600.0,
) -> None:
    """Run the emulator in the foreground until Ctrl-C (what ``autoscore emulator`` calls).

    ``api_key=None`` accepts any non-empty key, so ``--api-key`` is only needed to test a
    wrong key. The key itself is never printed.
    """
    say = announce or (lambda text: print(text, file=sys.stderr, flush=True))
    emulator = Emulator(port=port, latency=latency, fail_rate=fail_rate, seed=seed, api_key=api_key,
                        tier=tier, max_running=max_running, per_minute=per_minute, window=window,
                        sync_timeout=sync_timeout, ttl=ttl)
    limits = []
    if emulator.max_running is not None:
        limits.append(f"{emulator.max_running} running")
    if emulator.per_minute is not None:
        limits.append(f"{emulator.per_minute} per {emulator.window:g} s")
    account = f", limits {' and '.join(limits)}" if limits else ""
    sync = f", sync timeout {sync_timeout:g} s" if sync_timeout is not None else ""
    _stop_on_signals()
    with emulator:
        try:
            say(
                f"WaveSpeed emulator listening on {emulator.base_url} "
                f"(latency {latency:g} s, fail rate {fail_rate:g}{account}{sync}). Point autoscore at it "
                f"with --api-base {emulator.base_url}; stats at {emulator.base_url}/_emulator/stats. "
                "Ctrl-C stops it."
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            say("Emulator stopped.")


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the emulator, however it was started.

    A process inherits ignored and blocked signals from whoever started it: a shell's
    background job ignores SIGINT, and a test runner's worker may block it, and Python
    then never turns SIGINT into KeyboardInterrupt. A foreground service says what stops
    it, so it installs both handlers and unblocks both signals itself.
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
