"""Stable Audio 3 Music on WaveSpeedAI, over httpx.

The contract is in ``/work/shared/wavespeed-api.md``. Every job is submit, poll until a
terminal status, download ``data.outputs[0]``, decode and check the length. The rules
that matter, because each submission costs money:

* A submission POST is never resent when its outcome is unknown (read timeout, dropped
  connection after the request went out): the task may exist and be charged. It is resent
  only when the server cannot have made a task: a 429 (after honouring Retry-After) or a
  failure to connect at all.
* Polls, downloads and uploads are safe to repeat (uploads are free), so they are retried
  on 429, 500/502/503/504, timeouts and connection errors, with capped exponential backoff
  and jitter; a Retry-After (seconds or an HTTP date) wins over the schedule, capped.
* The API key goes only to the API's own base URL: the result URL is built from the base
  rather than taken from the answer, and downloads (a CDN) are fetched without it.

The backoff schedule and the clock are injectable (``RetryPolicy``, ``Clock``) so tests
run against the emulator in milliseconds without monkeypatching.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

import httpx
import numpy as np

from ..errors import (
    AuthError,
    AutoscoreError,
    BackendError,
    OptionError,
    QuotaError,
    RateLimitError,
    RemoteTaskError,
    TransportError,
    register_secret,
)
from ..ffmpeg import decode_bytes, encode_bytes
from ..models import Audio
from .base import Backend, ContinuationRequest, GenerationRequest

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "Clock",
    "RetryPolicy",
    "Timeouts",
    "WaveSpeedBackend",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

API_KEY_ENV = "WAVESPEED_API_KEY"
BASE_URL_ENV = "WAVESPEED_BASE_URL"
DEFAULT_BASE_URL = "https://api.wavespeed.ai"
MUSIC_PATH = "/api/v3/stability-ai/stable-audio-3/music"
OUTPAINT_PATH = "/api/v3/stability-ai/stable-audio-3/audio-outpainting"
UPLOAD_PATH = "/api/v3/media/upload/binary"
RESULT_PATH = "/api/v3/predictions/{id}/result"
OUTPUT_RATE = 44100
"""The model's native rate; downloads are decoded at it so nothing is resampled twice."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PENDING = frozenset({"created", "processing"})
FAILED = frozenset({"failed", "cancelled", "timeout", "deleted"})
_CREDIT_WORDS = ("credit", "balance", "insufficient", "quota", "payment", "billing", "top up")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite: garbage
        return None
    return max(0.0, seconds)


DEFAULT_CONCURRENCY = 8
"""Requests in flight at once unless --concurrency says otherwise."""


@dataclass(frozen=True)
class RetryPolicy:
    """How repeatable requests are retried. ``attempts`` counts tries, so 6 means 5 retries."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 20.0
    retry_after_cap: float = 60.0
    """A server asking for more than this is probably wrong; waiting an hour helps nobody."""
    jitter: float = 0.25
    """Fraction of each delay that is random, so parallel chunks do not retry in lockstep."""

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number ``retry`` (1-based). Jitter only shortens, so ``cap`` holds."""
        raw = min(self.cap, self.base * 2 ** (retry - 1))
        return raw * (1.0 - self.jitter * rng.random())

    def delay(self, retry: int, retry_after: str | None, now: float, rng: random.Random) -> float:
        hinted = parse_retry_after(retry_after, now)
        if hinted is not None:
            return min(hinted, self.retry_after_cap)
        return self.backoff(retry, rng)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. Each of submit/poll/download/upload bounds one whole request, not one read
    (a body trickling in would never trip httpx's per-read timeout); ``job`` bounds one
    whole generation from submit to decoded audio, None for no bound."""

    connect: float = 10.0
    submit: float = 60.0
    poll: float = 30.0
    download: float = 120.0
    upload: float = 120.0
    job: float | None = 900.0


class Clock:
    """Time as the client sees it; tests pass one that records sleeps instead of waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class _Job:
    """One paid task in progress: what the user should hear about if it goes wrong."""

    what: str
    deadline: float | None
    task_id: str = ""


class WaveSpeedBackend(Backend):
    """Submit, poll, download, verify. Safe to run many jobs at once up to ``max_concurrency``."""

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
        poll_interval: float = 0.5,
        poll_interval_max: float = 1.0,
        sync_mode: bool = False,
        length_tolerance: float = 0.35,
        seed: int | None = None,
    ) -> None:
        key = api_key or os.environ.get(API_KEY_ENV, "")
        if not key.strip():
            raise AuthError(
                f"No WaveSpeed API key: set {API_KEY_ENV} or pass --api-key "
                "(or use --backend procedural to make music offline)."
            )
        register_secret(key)
        self._key = key.strip()
        self.base_url = _check_base_url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        if max_concurrency is not None and max_concurrency < 1:
            raise OptionError(f"Concurrency {max_concurrency} is out of range: use 1 or more.")
        # Eight covers a 15-minute job in one round of latency; 429s are honoured if the
        # account allows fewer.
        self.max_concurrency = max_concurrency or DEFAULT_CONCURRENCY
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.clock = clock or Clock()
        self.poll_interval = poll_interval
        self.poll_interval_max = max(poll_interval, poll_interval_max)
        self.sync_mode = sync_mode
        self.length_tolerance = length_tolerance
        """Seconds (plus 1 % of the length) the decoded audio may differ before it counts as broken."""
        self._rng = random.Random(seed)
        self.music_requests = 0
        self.outpaint_requests = 0
        """Submissions the provider accepted (each one is charged)."""
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # the default would be harmless, but say so explicitly: no key here
        return f"WaveSpeedBackend(base_url={self.base_url!r}, max_concurrency={self.max_concurrency})"

    @property
    def cost(self) -> float:
        """Dollars charged so far by this instance (accepted submissions times their price)."""
        return self.music_requests * self.price_per_request + self.outpaint_requests * self.outpaint_price

    # -- public API ------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Audio:
        request.validate()
        payload: dict[str, Any] = {
            "prompt": request.prompt,
            "duration": request.duration,
            "num_inference_steps": request.steps,
            "guidance_scale": float(request.guidance),
            "output_format": request.output_format,
        }
        if request.negative_prompt:
            payload["negative_prompt"] = request.negative_prompt
        job = self._job(f"generate {request.duration} s of music")
        async with self._slot():
            data = await self._submit(MUSIC_PATH, payload, job)
            self.music_requests += 1
            return await self._finish(data, job, request.output_format, float(request.duration))

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        request.validate()
        job = self._job(f"extend {request.source.duration:.1f} s of music by {request.extend_after} s")
        async with self._slot():
            source_url = await self._upload(request.source, job)
            payload: dict[str, Any] = {
                "audio": source_url,
                "prompt": request.prompt,
                "extend_seconds_before": 0,
                "extend_seconds_after": request.extend_after,
                "num_inference_steps": request.steps,
                "guidance_scale": float(request.guidance),
                "output_format": request.output_format,
            }
            if request.negative_prompt:
                payload["negative_prompt"] = request.negative_prompt
            data = await self._submit(OUTPAINT_PATH, payload, job)
            self.outpaint_requests += 1
            expected = request.source.duration + request.extend_after
            # The endpoint answers with the whole extended clip; a provider that sends back
            # only the new seconds is accepted too, and the source is put in front again.
            audio = await self._finish(data, job, request.output_format, (expected, request.extend_after))
            if abs(audio.duration - request.extend_after) < abs(audio.duration - expected):
                source = _at_rate(request.source, audio.rate)
                audio = Audio(np.concatenate([source, audio.samples]), audio.rate)
            return audio

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client, self._sem, self._loop = None, None, None

    # -- per-loop resources ----------------------------------------------------------

    def _bind_loop(self) -> None:
        """Client and semaphore belong to one event loop; ``generate_sync`` makes a new one each call."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(self.max_concurrency)
            limits = httpx.Limits(max_connections=self.max_concurrency * 2, max_keepalive_connections=8)
            self._client = httpx.AsyncClient(limits=limits, follow_redirects=False)

    def _slot(self) -> asyncio.Semaphore:
        self._bind_loop()
        assert self._sem is not None
        return self._sem

    def _http(self) -> httpx.AsyncClient:
        self._bind_loop()
        assert self._client is not None
        return self._client

    def _job(self, what: str) -> _Job:
        limit = self.timeouts.job
        return _Job(what, None if limit is None else self.clock.monotonic() + limit)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    # -- the three steps -------------------------------------------------------------

    async def _submit(self, path: str, payload: dict[str, Any], job: _Job) -> dict[str, Any]:
        body = dict(payload, enable_sync_mode=True) if self.sync_mode else payload
        read = self.timeouts.submit + ((self.timeouts.job or 0.0) if self.sync_mode else 0.0)
        resp = await self._request(
            "POST", self.base_url + path, job, read_timeout=read, repeatable=False, json=body,
            headers=self._auth(),
        )
        data = _envelope_data(resp, job, "submit the task")
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise BackendError(f"WaveSpeed accepted the request to {job.what} but returned no task id.")
        job.task_id = task_id
        log.debug("wavespeed: task %s submitted (%s)", task_id, data.get("status"))
        return data

    async def _finish(
        self, data: dict[str, Any], job: _Job, fmt: str, seconds: float | tuple[float, ...]
    ) -> Audio:
        data = await self._wait(data, job)
        outputs = data.get("outputs")
        if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], str):
            raise BackendError(f"WaveSpeed task {job.task_id} completed without an output URL.")
        return await self._download(outputs[0], job, fmt, seconds)

    async def _wait(self, data: dict[str, Any], job: _Job) -> dict[str, Any]:
        interval = self.poll_interval
        url = self.base_url + RESULT_PATH.format(id=job.task_id)
        while True:
            status = str(data.get("status", ""))
            if status == "completed":
                return data
            if status in FAILED:
                reason = str(data.get("error") or "no reason given")
                raise RemoteTaskError(
                    f"WaveSpeed task {job.task_id} ended {status} while trying to {job.what}: {reason}. "
                    "It was charged; run again to retry (audio already made is cached)."
                )
            if status not in PENDING:
                log.debug("wavespeed: task %s has unknown status %r; still polling", job.task_id, status)
            self._check_deadline(job)
            await self.clock.sleep(interval)
            interval = min(self.poll_interval_max, interval * 1.5)
            resp = await self._request(
                "GET", url, job, read_timeout=self.timeouts.poll, repeatable=True, headers=self._auth()
            )
            data = _envelope_data(resp, job, "check on the task")

    async def _download(self, url: str, job: _Job, fmt: str, seconds: float | tuple[float, ...]) -> Audio:
        """Fetch and decode; a body that is cut short or not the expected audio is fetched again."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise BackendError(f"WaveSpeed task {job.task_id} returned an output that is not a URL: {url!r}.")
        problem = ""
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                await self._pause(attempt - 1, None, job, f"download ({problem})")
            resp = await self._request(
                "GET", url, job, read_timeout=self.timeouts.download, repeatable=True, follow_redirects=True
            )
            if resp.status_code != 200:
                _raise_for_answer(resp, job, "download the result")
            expected_size = resp.headers.get("Content-Length")
            if expected_size and expected_size.isdigit() and int(expected_size) != len(resp.content):
                problem = f"got {len(resp.content)} of {expected_size} bytes"
                continue
            try:
                audio = await asyncio.to_thread(decode_bytes, resp.content, OUTPUT_RATE, 2, suffix="." + fmt)
            except AutoscoreError as exc:
                problem = f"not decodable as {fmt}: {exc}"
                continue
            lengths = seconds if isinstance(seconds, tuple) else (seconds,)
            for length in lengths:
                fitted = self._fit(audio, length)
                if fitted is not None:
                    log.debug("wavespeed: task %s done, %.2f s of audio", job.task_id, audio.duration)
                    return fitted
            wanted = " or ".join(f"{length:.2f} s" for length in lengths)
            problem = f"{audio.duration:.2f} s of audio instead of {wanted}"
        raise BackendError(
            f"WaveSpeed task {job.task_id} produced a file that is not usable ({problem}) after "
            f"{self.retry.attempts} downloads; run again later (the task was charged)."
        )

    def _fit(self, audio: Audio, seconds: float) -> Audio | None:
        """Exactly ``seconds`` long (codec padding trimmed, a short tail padded), or None if far off."""
        target = round(seconds * audio.rate)
        tolerance = round((self.length_tolerance + 0.01 * seconds) * audio.rate)
        if audio.frames == 0 or abs(audio.frames - target) > tolerance:
            return None
        if audio.frames >= target:
            return Audio(audio.samples[:target], audio.rate)
        pad = np.zeros((target - audio.frames, audio.channels), np.float32)
        return Audio(np.concatenate([audio.samples, pad]), audio.rate)

    async def _upload(self, source: Audio, job: _Job) -> str:
        """Send the source as FLAC (lossless, half of WAV) and return the URL the provider gave it."""
        data = await asyncio.to_thread(encode_bytes, source, "flac")
        files = {"file": ("source.flac", data, "audio/flac")}
        resp = await self._request(
            "POST", self.base_url + UPLOAD_PATH, job, read_timeout=self.timeouts.upload, repeatable=True,
            files=files, headers=self._auth(),
        )
        body = _envelope_data(resp, job, "upload the source audio")
        url = body.get("download_url")
        if not isinstance(url, str) or not url:
            raise BackendError("WaveSpeed accepted the upload of the source audio but returned no URL.")
        return url

    # -- one HTTP exchange with the retry policy -------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        job: _Job,
        *,
        read_timeout: float,
        repeatable: bool,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send until an answer that is not worth retrying arrives.

        ``repeatable=False`` (a paid submission) still retries a 429 and a failure to
        connect, since the server cannot have made a task then; anything after the request
        left (timeout, hang-up, 5xx) is reported instead, because a resend could pay twice.
        """
        retry = 0
        while True:
            self._check_deadline(job)
            timeout = httpx.Timeout(
                self._bounded(read_timeout, job), connect=self.timeouts.connect, pool=self.timeouts.connect
            )
            answer: httpx.Response | None = None
            try:
                # httpx's read timeout is per read; a body that trickles in needs a total bound too.
                async with asyncio.timeout(self._bounded(read_timeout, job)):
                    resp = await self._http().request(method, url, timeout=timeout, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem = f"could not connect to {_host(url)} ({_describe(exc)})"
            except (httpx.TransportError, TimeoutError) as exc:
                if not repeatable:
                    self._unknown_outcome(job, exc)
                problem = f"{_describe(exc)} from {_host(url)}"
            else:
                log.debug("wavespeed: %s %s -> %d", method, _path(url), resp.status_code)
                if resp.status_code not in RETRY_STATUSES or (resp.status_code != 429 and not repeatable):
                    return resp
                answer = resp
                problem = f"HTTP {resp.status_code}: {_message(resp)}"
            retry += 1
            if retry >= self.retry.attempts:
                if answer is not None:
                    _raise_for_answer(answer, job, f"{method} {_path(url)}", exhausted=True)
                raise TransportError(
                    f"Could not reach WaveSpeed to {job.what} after {self.retry.attempts} tries ({problem}); "
                    "check the network connection or --api-base and run again."
                )
            hint = answer.headers.get("Retry-After") if answer is not None else None
            await self._pause(retry, hint, job, problem)

    async def _pause(self, retry: int, hint: str | None, job: _Job, problem: str) -> None:
        delay = self.retry.delay(retry, hint, self.clock.time(), self._rng)
        if job.deadline is not None and self.clock.monotonic() + delay > job.deadline:
            self._timed_out(job)
        log.debug("wavespeed: retry %d for %s in %.2f s (%s)", retry, job.what, delay, problem)
        await self.clock.sleep(delay)

    def _bounded(self, read_timeout: float, job: _Job) -> float:
        if job.deadline is None:
            return read_timeout
        return max(0.001, min(read_timeout, job.deadline - self.clock.monotonic()))

    def _check_deadline(self, job: _Job) -> None:
        if job.deadline is not None and self.clock.monotonic() >= job.deadline:
            self._timed_out(job)

    def _timed_out(self, job: _Job) -> NoReturn:
        task = f" (task {job.task_id} may still finish and is charged)" if job.task_id else ""
        raise TransportError(
            f"Gave up trying to {job.what} after {self.timeouts.job:g} s{task}; "
            "the service may be overloaded: try again later."
        )

    def _unknown_outcome(self, job: _Job, exc: BaseException) -> NoReturn:
        raise TransportError(
            f"The request to {job.what} was sent but no answer came back ({_describe(exc)}). "
            "WaveSpeed may have created and charged the task, so autoscore does not resend it "
            "automatically; check your WaveSpeed dashboard, then run again (finished chunks are cached)."
        ) from exc


# -- helpers -------------------------------------------------------------------------


def _check_base_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError(f"The API base {url!r} is not an http(s) URL, e.g. {DEFAULT_BASE_URL}.")
    return url.strip().rstrip("/")


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _path(url: str) -> str:
    return urlsplit(url).path


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no complete answer in time"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _message(resp: httpx.Response) -> str:
    """The provider's own words for an error answer, short enough for one line."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("message"):
        text = str(body["message"])
    else:
        text = resp.text.strip() or resp.reason_phrase
    return " ".join(text.split())[:300]


def _envelope_data(resp: httpx.Response, job: _Job, step: str) -> dict[str, Any]:
    if resp.status_code != 200:
        _raise_for_answer(resp, job, step)
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        raise BackendError(
            f"WaveSpeed answered the request to {step} with something unexpected "
            f"({resp.text[:120]!r}); check --api-base points at the WaveSpeed API."
        )
    code = body.get("code", 200)
    if isinstance(code, int) and code != 200:
        _raise_for_answer(resp, job, step, status=code)
    return dict(body["data"])


def _raise_for_answer(
    resp: httpx.Response, job: _Job, step: str, *, status: int | None = None, exhausted: bool = False
) -> NoReturn:
    """Turn an error answer into the exception that tells the user what to do."""
    code = status if status is not None else resp.status_code
    said = _message(resp)
    where = f"while trying to {job.what} ({step})"
    if code == 401:
        raise AuthError(
            f"WaveSpeed rejected the API key {where}: {said}. Check {API_KEY_ENV} or --api-key "
            "(a key is created at https://wavespeed.ai/accesskey)."
        )
    if code == 402 or (code == 403 and any(w in said.lower() for w in _CREDIT_WORDS)):
        raise QuotaError(
            f"WaveSpeed says the account has no credit left {where}: {said}. Add credit at "
            "https://wavespeed.ai and run again; music already generated is cached."
        )
    if code == 403:
        raise AuthError(
            f"WaveSpeed refused the API key {where}: {said}. The key lacks access to this model "
            "or the account has no credit; check both in the WaveSpeed dashboard."
        )
    if code == 429:
        raise RateLimitError(
            f"WaveSpeed is rate-limiting requests {where}: {said}. Lower --concurrency or try again later."
        )
    if code in (400, 422):
        raise BackendError(
            f"WaveSpeed rejected the request {where}: {said}. The request passed autoscore's own checks, "
            "so the API may have changed; please report this."
        )
    if code == 404 and job.task_id:
        raise RemoteTaskError(f"WaveSpeed no longer knows task {job.task_id} {where}: {said}.")
    if code >= 500:
        if not exhausted and step == "submit the task":
            raise TransportError(
                f"WaveSpeed failed with HTTP {code} {where}: {said}. Whether the task was created is "
                "unknown, so it is not resent automatically; check the dashboard and run again."
            )
        raise TransportError(
            f"WaveSpeed kept failing with HTTP {code} {where}: {said}. The service may be down; "
            "try again later."
        )
    raise BackendError(f"WaveSpeed answered HTTP {code} {where}: {said}.")


def _at_rate(audio: Audio, rate: int) -> np.ndarray:
    """``audio``'s samples at ``rate``, stereo, for joining to a download."""
    samples = audio.samples if audio.channels == 2 else np.repeat(audio.samples[:, :1], 2, axis=1)
    if audio.rate == rate:
        return samples
    from ..resample import resample

    return resample(samples, audio.rate, rate)
