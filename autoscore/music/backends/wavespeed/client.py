"""Stable Audio 3 Music on WaveSpeedAI, over httpx.

The contract is in ``docs/wavespeed-api.md``. Every request is: wait for room under the
account's limits, submit, poll until a terminal status, download ``data.outputs[0]``,
decode and check the length. The rules that matter, because each task costs money:

* A submission is resent only when the server cannot have made a task: a 429, or a
  connection that never opened. An answer lost after the request went out (read
  timeout, dropped connection, 5xx) is reported, never resent: the task may exist.
* A 429 on submit never fails a job while its deadline allows: the shared
  ``AccountGate`` (``retry.py``) lowers the in-flight limit, waits as the server asks and
  queues the rest. Polls are paced (first after about a second, then growing, with a
  ceiling on polls per second for the whole job).
* Only completed tasks are counted as spent. The provider refunds tasks that end
  ``failed``, ``cancelled``, ``timeout`` or ``deleted``.
* The API key goes only to the API's own base URL: the result URL is built from the base
  rather than taken from the answer, and downloads and signed uploads go without it.

httpx is the seam: pass ``transport=`` (``httpx.MockTransport`` in tests) or a whole
``http_client=``; the clock, retry policy and gate are injectable the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import numpy as np

from ....errors import (
    AuthError,
    BackendError,
    OptionError,
    RemoteTaskError,
    TransportError,
    register_secret,
)
from ....media.ffmpeg import encode_bytes
from ....models import Audio
from ...claims import announce_task
from ..base import Backend, ContinuationRequest, GenerationRequest
from ..retry import AccountGate, AccountLease, Clock, PollPacer, RetryPolicy, Throttle, Ticket, account_gate
from .answers import (
    API_KEY_ENV,
    FAILED,
    PENDING,
    Step,
    TaskRef,
    envelope_data,
)
from .collect import at_rate, collect
from .payload import fields_of
from .session import NotSent, Session, Timeouts
from .transfer import upload_source

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "Timeouts",
    "WaveSpeedBackend",
    "check_base_url",
    "default_job_timeout",
]

log = logging.getLogger(__name__)

BASE_URL_ENV = "WAVESPEED_BASE_URL"
DEFAULT_BASE_URL = "https://api.wavespeed.ai"
MUSIC_PATH = "/api/v3/stability-ai/stable-audio-3/music"
OUTPAINT_PATH = "/api/v3/stability-ai/stable-audio-3/audio-outpainting"
RESULT_PATH = "/api/v3/predictions/{id}/result"

MIN_TASK_SECONDS = 30.0
"""A task is not started with less of the job's time left than this (or a quarter of it)."""

DEFAULT_CONCURRENCY = 8
"""Requests in flight at once unless --concurrency says otherwise; a smaller account
limit is learnt from its 429s."""


def default_job_timeout(requests: int) -> float:
    """Seconds a whole job may take: five minutes, plus three per request.

    Three minutes a request covers a new account's limits (about two tasks a minute,
    two at once) with room for the provider's own queue.
    """
    return 300.0 + 180.0 * max(1, requests)


class _Slot:
    """A held gate ticket (and cluster lease), returned exactly once however the task ends."""

    def __init__(self, gate: AccountGate, ticket: Ticket, lease: AccountLease | None) -> None:
        self.gate, self.ticket, self.lease, self.open = gate, ticket, lease, True

    def release(self, *, succeeded: bool) -> None:
        if self.open:
            self.open = False
            self.gate.release(self.ticket, succeeded=succeeded)
            if self.lease is not None:
                self.lease.release(succeeded=succeeded)

    def refused(self, wait: float, now: float) -> None:
        """A 429: no task was made, and the gate learns from it."""
        if self.open:
            self.open = False
            self.gate.refused(self.ticket, wait, now)
            if self.lease is not None:
                self.lease.refused()


class WaveSpeedBackend(Session, Backend):
    """Submit, poll, download, verify; many requests at once, within the account's limits."""

    name: ClassVar[str] = "wavespeed"
    model: ClassVar[str] = "stability-ai/stable-audio-3/music"
    price_per_request: ClassVar[float] = 0.0217
    outpaint_price: ClassVar[float] = 0.0446

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        max_concurrency: int | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        clock: Clock | None = None,
        gate: AccountGate | None = None,
        share_account: bool = False,
        account_lease: AccountLease | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        poll_interval: float = 1.0,
        poll_interval_max: float = 3.0,
        polls_per_second: int = 8,
        sync_mode: bool = False,
        length_tolerance: float = 0.35,
        seed: int | None = None,
    ) -> None:
        # The key is normalised once; this exact string is sent and redacted.
        key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")).strip()
        if not key:
            raise AuthError(
                f"No WaveSpeed API key: set {API_KEY_ENV} or pass --api-key "
                "(or use --backend procedural to make music offline)."
            )
        register_secret(key)
        self._key = key
        self.base_url = check_base_url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        if max_concurrency is not None and max_concurrency < 1:
            raise OptionError(f"Concurrency {max_concurrency} is out of range: use 1 or more.")
        self.max_concurrency = max_concurrency or DEFAULT_CONCURRENCY
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.clock = clock or Clock()
        if gate is None:
            gate = (account_gate(self.base_url, key, self.max_concurrency) if share_account
                    else AccountGate(self.max_concurrency))
        self.gate = gate
        self.account_lease = account_lease
        """A place under a limit that other processes share too (a cluster's semaphore), held
        from submission to the task's end, after the gate's own ticket."""
        self._transport = transport
        self._given_client = http_client
        self.poll_interval = poll_interval
        """Seconds from submission to the first poll. The next comes half that later, and
        each interval after grows by a fifth up to ``poll_interval_max``: a task that takes
        two seconds is seen done about 0.1 s late, one that takes a minute costs some 25 polls."""
        self.poll_interval_max = max(poll_interval, poll_interval_max)
        self.pacer = PollPacer(polls_per_second)
        self.sync_mode = sync_mode
        self.length_tolerance = length_tolerance
        """Seconds (plus 1 % of the length) the decoded audio may differ before it counts as broken."""
        self._rng = random.Random(seed)
        self.music_requests = 0
        self.outpaint_requests = 0
        """Tasks that completed: the ones the provider charges for."""
        self.refunded = 0
        """Tasks that ended failed, cancelled, timeout or deleted: refunded by the provider."""
        self.unsettled = 0
        """Tasks created whose end we did not see: they may still complete and be charged."""
        self._job_deadline: float | None = None
        self._job_timeout: float | None = None
        self._warned_cap = False
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:  # no key here, ever
        return f"WaveSpeedBackend(base_url={self.base_url!r}, max_concurrency={self.max_concurrency})"

    @property
    def cost(self) -> float:
        """Dollars charged so far by this instance: completed tasks times their price."""
        return self.music_requests * self.price_per_request + self.outpaint_requests * self.outpaint_price

    @property
    def spent(self) -> float:
        return self.cost

    def start_job(self, requests: int, timeout: float | None = None) -> None:
        self._job_timeout = timeout if timeout is not None else default_job_timeout(requests)
        self._job_deadline = self.clock.monotonic() + self._job_timeout

    # -- public API ------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Audio:
        request.validate()
        payload = {"duration": request.duration, **fields_of(request, opens=request.opens)}
        ref = self._ref(f"generate {request.duration} s of music")
        data = await self._run_task(MUSIC_PATH, payload, ref)
        self.music_requests += 1
        return await collect(self, data, ref, request.output_format, (float(request.duration),))

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        request.validate()
        ref = self._ref(f"extend {request.source.duration:.1f} s of music by {request.extend_after} s")
        encoded = await asyncio.to_thread(encode_bytes, request.source, "flac")
        source_url = await upload_source(self, encoded, ref)
        payload = {"audio": source_url, "extend_seconds_before": 0,
                   "extend_seconds_after": request.extend_after, **fields_of(request, opens=False)}
        data = await self._run_task(OUTPAINT_PATH, payload, ref)
        self.outpaint_requests += 1
        return await self._extended(data, ref, request)

    async def _extended(self, data: dict[str, Any], ref: TaskRef, request: ContinuationRequest) -> Audio:
        expected = request.source.duration + request.extend_after
        # The endpoint answers with the whole extended clip; a provider that sends back
        # only the new seconds is accepted too, and the source is put in front again.
        audio = await collect(self, data, ref, request.output_format, (expected, float(request.extend_after)))
        if abs(audio.duration - request.extend_after) < abs(audio.duration - expected):
            source = at_rate(request.source, audio.rate)
            audio = Audio(np.concatenate([source, audio.samples]), audio.rate)
        return audio

    async def resume(self, task_id: str, request: GenerationRequest | ContinuationRequest) -> Audio | None:
        """Poll a task an earlier job submitted and download its audio, as if just submitted.

        None when the task ended failed, cancelled, timeout or deleted (refunded), the
        provider answers 404 for it, or its audio cannot be had (no output, a download that
        is refused or unusable): asking again is then the only way to get the chunk.
        """
        request.validate()
        what = "collect " + (f"{request.duration} s of music" if isinstance(request, GenerationRequest)
                             else f"a {request.extend_after} s extension")
        ref = self._ref(f"{what} (task {task_id}, left by an earlier job)")
        ref.task_id = task_id
        slot = await self._admit(ref)  # a running task takes a place under the account's limit
        try:
            data = await self._wait({"id": task_id, "status": "created"}, ref, slot)
        except RemoteTaskError:
            return None
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise
        finally:
            slot.release(succeeded=False)
        if isinstance(request, GenerationRequest):  # completed: charged, whether or not it downloads
            self.music_requests += 1
        else:
            self.outpaint_requests += 1
        try:
            if isinstance(request, GenerationRequest):
                audio = await collect(self, data, ref, request.output_format, (float(request.duration),))
            else:
                audio = await self._extended(data, ref, request)
        except TransportError:
            raise  # the network, not the task: the note stays for a later try
        except BackendError as exc:
            # Completed, but its audio is gone or unusable: collecting it again would fail the
            # same way, so the chunk is asked for anew (and, sadly, paid for again).
            self.warn(f"{exc} Asking for that chunk again.")
            return None
        return audio

    async def aclose(self) -> None:
        try:
            if self._client is not None and self._client is not self._given_client:
                await self._client.aclose()
        finally:  # also when cancelled half way: the download folder must not outlive the job
            self._client, self._loop = None, None
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None

    # -- one task: admit, submit, wait ---------------------------------------------------

    def _ref(self, what: str) -> TaskRef:
        if self._job_deadline is not None:
            return TaskRef(what, self._job_deadline)
        limit = self.timeouts.job
        return TaskRef(what, None if limit is None else self.clock.monotonic() + limit)

    def _notify(self, throttle: Throttle) -> None:
        if self.on_throttle is not None:
            self.on_throttle(throttle)

    async def _admit(self, ref: TaskRef) -> _Slot:
        try:
            ticket = await self.gate.acquire(self.clock, deadline=ref.deadline, on_wait=self._notify)
        except TimeoutError:
            raise BackendError(
                f"Ran out of time waiting for room under the WaveSpeed account's limits to {ref.what} "
                f"(the job may take {self._limit_text()}). Nothing was charged for it; raise --timeout, "
                "or run again later (finished chunks are cached).",
                status=429, charged=False,
            ) from None
        lease = self.account_lease
        if lease is not None:
            remaining = None if ref.deadline is None else ref.deadline - self.clock.monotonic()
            try:
                leased = await lease.acquire(remaining)
            except BaseException:
                self.gate.release(ticket, succeeded=False)
                raise
            if not leased:
                self.gate.release(ticket, succeeded=False)
                raise BackendError(
                    f"Ran out of time waiting for a place under the account's limit, shared by the whole "
                    f"cluster, to {ref.what}. Nothing was charged for it; raise --timeout or --concurrency "
                    "if the account allows more, or run again (finished chunks are cached).",
                    status=429, charged=False,
                )
        return _Slot(self.gate, ticket, lease)

    async def _run_task(self, path: str, payload: dict[str, Any], ref: TaskRef) -> dict[str, Any]:
        """Submit (resending only what cannot have made a task) and wait for a terminal status."""
        body = dict(payload, enable_sync_mode=True) if self.sync_mode else payload
        refusals = connect_failures = 0
        while True:
            slot = await self._admit(ref)
            try:
                self._check_time_to_start(ref)
                # A paid request gets its whole timeout even near the deadline: cutting it
                # short would turn an answer on its way into a task of unknown fate.
                resp = await self._submit(path, body, ref)
            except NotSent as exc:
                slot.release(succeeded=False)
                connect_failures += 1
                if connect_failures >= self.retry.attempts:
                    raise TransportError(
                        f"Could not reach WaveSpeed to {ref.what} after {self.retry.attempts} tries ({exc}); "
                        "check the network connection or --api-base and run again.", charged=False,
                    ) from exc
                await self.pause(connect_failures, None, ref, str(exc))
                continue
            except (httpx.TransportError, TimeoutError) as exc:
                slot.release(succeeded=False)
                self.unsettled += 1
                self._unknown_outcome(ref, exc)
            except BaseException:
                slot.release(succeeded=False)
                raise
            if resp.status_code == 429 or _envelope_code(resp) == 429:
                refusals += 1
                wait, capped = self._refusal_wait(resp, refusals)
                slot.refused(wait, self.clock.monotonic())
                if capped:
                    self._say_capped(resp)
                continue
            try:
                try:
                    data = envelope_data(resp, ref, Step.SUBMIT)
                    task_id = data.get("id")
                    if not isinstance(task_id, str) or not task_id:
                        raise BackendError(f"WaveSpeed accepted the request to {ref.what} but returned no "
                                           "task id.", charged=None)
                except BackendError as exc:
                    self.unsettled += exc.charged is None
                    raise
                ref.task_id = task_id
                announce_task(task_id)  # paid from here on: whoever claimed the chunk keeps the id
                log.debug("wavespeed: task %s submitted (%s)", task_id, data.get("status"))
                return await self._wait(data, ref, slot)
            finally:
                slot.release(succeeded=False)

    async def _submit(self, path: str, body: dict[str, Any], ref: TaskRef) -> httpx.Response:
        """The submission POST, carried to its end even when the job is cancelled meanwhile (a
        process shutting down): the answer may be a task that is paid for, and its id is
        announced, so that the claim notes it, before the cancellation goes on."""
        exchange = asyncio.ensure_future(self._exchange(
            "POST", self.base_url + path, ref, self._submit_timeout(), bounded=False, json=body,
            headers=self.api_headers()))
        try:
            return await asyncio.shield(exchange)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                resp = await exchange
                task_id = resp.json().get("data", {}).get("id") if resp.status_code == 200 else None
                if isinstance(task_id, str) and task_id:
                    announce_task(task_id)
            raise

    def _submit_timeout(self) -> float:
        if not self.sync_mode:
            return self.timeouts.submit
        return self.timeouts.submit + (self._job_timeout or self.timeouts.job or 0.0)

    def _check_time_to_start(self, ref: TaskRef) -> None:
        """No new task when the job could not wait for it: it would be abandoned and still charged."""
        if ref.deadline is None:
            return
        limit = self._job_timeout if self._job_timeout is not None else self.timeouts.job or 0.0
        needed = min(MIN_TASK_SECONDS, 0.25 * limit)
        if ref.deadline - self.clock.monotonic() < needed:
            raise TransportError(
                f"Too little of the job's time is left to {ref.what} (under {needed:g} s of "
                f"{self._limit_text()}); nothing was sent or charged for it. Allow more with --timeout, "
                "or run again (finished chunks are cached).", charged=False,
            )

    def _refusal_wait(self, resp: httpx.Response, refusals: int) -> tuple[float, bool]:
        """How long a 429 holds submissions: its Retry-After (capped), else backoff; never
        less than the backoff's base, so ``Retry-After: 0`` cannot make a busy loop."""
        wait, capped = self.retry.hinted(resp.headers.get("Retry-After"), self.clock.time())
        if wait is None:
            wait = self.retry.backoff(refusals, self._rng)
        return max(wait, self.retry.base), capped

    def _say_capped(self, resp: httpx.Response) -> None:
        if not self._warned_cap:
            self._warned_cap = True
            asked = " ".join(resp.headers.get("Retry-After", "").split())[:40]
            self.warn(f"WaveSpeed asked autoscore to wait {asked} s before sending more; autoscore waits "
                      f"{self.retry.retry_after_cap:g} s at most between tries.")

    async def _wait(self, data: dict[str, Any], ref: TaskRef, slot: _Slot) -> dict[str, Any]:
        """Poll at growing intervals until the task ends; its slot under the limit ends with it."""
        url = self.base_url + RESULT_PATH.format(id=ref.task_id)
        interval = self.poll_interval
        first = True
        while True:
            status = str(data.get("status", ""))
            if status == "completed":
                slot.release(succeeded=True)
                ref.completed = True
                return data
            if status in FAILED:
                slot.release(succeeded=False)
                self.refunded += 1
                reason = str(data.get("error") or "no reason given")
                raise RemoteTaskError(
                    f"WaveSpeed task {ref.task_id} ended {status} while trying to {ref.what}: {reason}. "
                    "The provider refunds such tasks, so it was not charged; run again to retry "
                    "(audio already made is cached).",
                    task_id=ref.task_id, status=status, charged=False,
                )
            if status not in PENDING:
                log.debug("wavespeed: task %s has unknown status %r; still polling", ref.task_id, status)
            if ref.deadline is not None and self.clock.monotonic() + interval > ref.deadline:
                self.unsettled += 1
                self._timed_out(ref)
            await self.clock.sleep(interval)
            interval = min(self.poll_interval_max, interval * (0.5 if first else 1.2))
            first = False
            await self.pacer.turn(self.clock)
            try:
                resp = await self.request("GET", url, ref, Step.POLL, read_timeout=self.timeouts.poll,
                                          headers=self.api_headers())
                data = envelope_data(resp, ref, Step.POLL)
            except BackendError:
                self.unsettled += 1
                raise

    def scratch_dir(self) -> Path:
        """Where downloads land until decoded; removed by ``aclose``."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="autoscore-dl-")
        return Path(self._scratch.name)

def _envelope_code(resp: httpx.Response) -> object:
    """The ``code`` inside a 200 answer's JSON (some gateways say 429 there), or None."""
    if resp.status_code != 200:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def check_base_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError(f"The API base {url!r} is not an http(s) URL, e.g. {DEFAULT_BASE_URL}.")
    return url.strip().rstrip("/")
