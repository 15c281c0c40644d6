"""One HTTP exchange with WaveSpeed, with its timeouts, retries and deadline.

The part of the client that every step shares (submit, poll, upload, download): the
httpx client for the running event loop, the headers that carry the key (to the API and
nowhere else), a request that is safe to repeat sent until an answer worth keeping, and
the job's deadline with the message that says what a timeout cost. ``WaveSpeedBackend``
builds its steps on it; ``transfer`` and ``collect`` see it as their ``Sender``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from .... import __version__
from ....errors import TransportError
from ..retry import Clock, RetryPolicy
from .answers import Step, TaskRef, describe, host_of, message_of, path_of, raise_for_answer
from .transfer import RETRY_STATUSES

__all__ = ["NotSent", "Session", "Timeouts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``submit``, ``poll`` and ``upload`` bound one exchange; ``download`` bounds
    each read of a streamed body, not the whole of it. ``job`` bounds one request from
    submission to decoded audio when no job was started with ``start_job`` (None for no
    bound)."""

    connect: float = 10.0
    submit: float = 60.0
    poll: float = 30.0
    download: float = 60.0
    upload: float = 120.0
    job: float | None = 900.0


class NotSent(Exception):
    """The request never left: safe to send again, even a submission."""


class Session:
    """Shared state and plumbing of one client; ``WaveSpeedBackend`` sets every attribute."""

    _key: str
    base_url: str
    max_concurrency: int
    retry: RetryPolicy
    timeouts: Timeouts
    clock: Clock
    _rng: random.Random
    _transport: httpx.AsyncBaseTransport | None
    _given_client: httpx.AsyncClient | None
    _client: httpx.AsyncClient | None
    _loop: asyncio.AbstractEventLoop | None
    _scratch: tempfile.TemporaryDirectory[str] | None
    _job_timeout: float | None

    def http(self) -> httpx.AsyncClient:
        """The client for this event loop; each job runs in a loop of its own (``asyncio.run``)."""
        if self._given_client is not None:
            return self._given_client
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._client is None:
            self._loop = loop
            limits = httpx.Limits(max_connections=self.max_concurrency * 2 + 4, max_keepalive_connections=8)
            self._client = httpx.AsyncClient(limits=limits, follow_redirects=False, transport=self._transport)
        return self._client

    def api_headers(self) -> dict[str, str]:
        """What every call to the API itself carries; never sent to a CDN or a signed URL."""
        return {
            "Authorization": f"Bearer {self._key}",
            "X-Client-Name": "autoscore",
            "X-Client-Version": __version__,
        }

    @property
    def attempts(self) -> int:
        return self.retry.attempts

    @property
    def upload_timeout(self) -> float:
        return self.timeouts.upload

    @property
    def download_timeout(self) -> float:
        return self.timeouts.download

    @property
    def connect_timeout(self) -> float:
        return self.timeouts.connect

    def read_timeout(self, seconds: float, ref: TaskRef) -> float:
        """``seconds``, or less when the deadline is nearer."""
        if ref.deadline is None:
            return seconds
        return max(0.001, min(seconds, ref.deadline - self.clock.monotonic()))

    async def pause(self, retry: int, hint: str | None, ref: TaskRef, problem: str) -> None:
        delay = self.retry.delay(retry, hint, self.clock.time(), self._rng)
        if ref.deadline is not None and self.clock.monotonic() + delay > ref.deadline:
            self._timed_out(ref)
        log.debug("wavespeed: retry %d for %s in %.2f s (%s)", retry, ref.what, delay, problem)
        await self.clock.sleep(delay)

    async def request(
        self, method: str, url: str, ref: TaskRef, step: Step, *, read_timeout: float,
        exact_headers: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A request that is safe to repeat (poll, upload), sent until an answer not worth retrying.

        A poll of a task that exists keeps trying until the job's deadline rather than for a
        number of tries: giving up would abandon a task that is still charged.
        """
        retry = 0
        tries = None if step is Step.POLL and ref.deadline is not None else self.retry.attempts
        while True:
            answer: httpx.Response | None = None
            try:
                answer = await self._exchange(method, url, ref, read_timeout, exact_headers=exact_headers,
                                              **kwargs)
            except NotSent as exc:
                problem = str(exc)
            except (httpx.TransportError, TimeoutError) as exc:
                problem = f"{describe(exc)} from {host_of(url)}"
            else:
                if answer.status_code not in RETRY_STATUSES:
                    return answer
                problem = f"HTTP {answer.status_code}: {message_of(answer)}"
            retry += 1
            if tries is not None and retry >= tries:
                if answer is not None:
                    raise_for_answer(answer, ref, step, exhausted=True)
                raise TransportError(
                    f"Could not reach WaveSpeed to {ref.what} after {self.retry.attempts} tries ({problem}); "
                    "check the network connection or --api-base and run again.",
                    task_id=ref.task_id, charged=None if ref.task_id else False,
                )
            await self.pause(retry, answer.headers.get("Retry-After") if answer is not None else None,
                             ref, problem)

    def _limit_text(self) -> str:
        limit = self._job_timeout if self._job_timeout is not None else self.timeouts.job
        return f"{limit:g} s" if limit is not None else "as long as it needs"

    async def _exchange(self, method: str, url: str, ref: TaskRef, read_timeout: float, *,
                        bounded: bool = True, exact_headers: bool = False, **kwargs: Any) -> httpx.Response:
        """Send once. A connection that never opened is ``NotSent``; anything later is the
        caller's to judge (an httpx error or ``TimeoutError``).

        ``bounded`` cuts the timeout to the job's deadline. ``exact_headers`` sends only the
        given headers (and Host and Content-Length), for a signed URL that names its headers.
        """
        if bounded:
            self._check_deadline(ref)
        bound = self.read_timeout(read_timeout, ref) if bounded else read_timeout
        timeout = httpx.Timeout(bound, connect=self.timeouts.connect, pool=self.timeouts.connect)
        client = self.http()
        try:
            # httpx's read timeout is per read; a body that trickles in needs a total bound too.
            async with asyncio.timeout(bound + (0.0 if bounded else self.timeouts.connect)):
                if exact_headers:
                    req = client.build_request(method, url, timeout=timeout, **kwargs)
                    given = {k.lower() for k in kwargs.get("headers") or {}}
                    for name in ("accept", "accept-encoding", "connection", "user-agent"):
                        if name not in given and name in req.headers:
                            del req.headers[name]
                    resp = await client.send(req)
                else:
                    resp = await client.request(method, url, timeout=timeout, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NotSent(f"could not connect to {host_of(url)} ({describe(exc)})") from exc
        log.debug("wavespeed: %s %s -> %d", method, path_of(url), resp.status_code)
        return resp

    def _check_deadline(self, ref: TaskRef) -> None:
        if ref.deadline is not None and self.clock.monotonic() >= ref.deadline:
            self._timed_out(ref)

    def _timed_out(self, ref: TaskRef) -> NoReturn:
        if ref.completed:
            task = f" (task {ref.task_id} completed and was charged; its audio could not be fetched in time)"
            charged: bool | None = True
        elif ref.task_id:
            task, charged = f" (task {ref.task_id} may still finish and be charged)", None
        else:
            task, charged = "", False
        raise TransportError(
            f"Gave up trying to {ref.what} after {self._limit_text()}{task}; the service may be "
            "overloaded: try again later, or allow more time with --timeout.",
            task_id=ref.task_id, charged=charged,
        )

    def _unknown_outcome(self, ref: TaskRef, exc: BaseException) -> NoReturn:
        raise TransportError(
            f"The request to {ref.what} was sent but no answer came back ({describe(exc)}). "
            "WaveSpeed may have created and charged the task, so autoscore does not resend it "
            "automatically; check your WaveSpeed dashboard, then run again (finished chunks are cached).",
            charged=None,
        ) from exc
