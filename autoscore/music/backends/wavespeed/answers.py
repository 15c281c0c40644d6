"""What WaveSpeed's answers mean: the envelope, and an error answer turned into advice.

Kept apart from the client so that every message a user can read about the service is
in one place, and so that each carries what the failure cost as attributes
(``task_id``, ``status``, ``charged``) rather than in its wording.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from ....errors import AuthError, BackendError, QuotaError, RateLimitError, RemoteTaskError, TransportError

__all__ = [
    "API_KEY_ENV",
    "FAILED",
    "PENDING",
    "Step",
    "TaskRef",
    "envelope_data",
    "message_of",
    "raise_for_answer",
]

API_KEY_ENV = "WAVESPEED_API_KEY"
PENDING = frozenset({"created", "processing"})
FAILED = frozenset({"failed", "cancelled", "timeout", "deleted"})
"""Terminal failures. The provider refunds these automatically (refund policy)."""
_CREDIT_WORDS = ("credit", "balance", "insufficient", "quota", "payment", "billing", "top up")


class Step(enum.Enum):
    """Which exchange an answer belongs to: it decides what an error costs."""

    SUBMIT = "submit the task"
    POLL = "check on the task"
    DOWNLOAD = "download the result"
    UPLOAD = "upload the source audio"


@dataclass
class TaskRef:
    """One request on its way through the service: what to tell the user if it goes wrong."""

    what: str
    deadline: float | None
    task_id: str = ""
    completed: bool = False
    """The provider said the task completed: it is charged, whatever happens next."""


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def path_of(url: str) -> str:
    return urlsplit(url).path


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no complete answer in time"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def message_of(resp: httpx.Response) -> str:
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


def envelope_data(resp: httpx.Response, ref: TaskRef, step: Step) -> dict[str, Any]:
    """``data`` of a 200 envelope; anything else becomes the right exception."""
    if resp.status_code != 200:
        raise_for_answer(resp, ref, step)
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        raise BackendError(
            f"WaveSpeed answered the request to {step.value} with something unexpected "
            f"({resp.text[:120]!r}); check --api-base points at the WaveSpeed API.",
            task_id=ref.task_id, status=resp.status_code,
            charged=None if step is Step.SUBMIT or ref.task_id else False,  # a task made may still be charged
        )
    code = body.get("code", 200)
    if isinstance(code, int) and code != 200:
        raise_for_answer(resp, ref, step, status=code)
    return dict(body["data"])


def raise_for_answer(
    resp: httpx.Response, ref: TaskRef, step: Step, *, status: int | None = None, exhausted: bool = False
) -> NoReturn:
    """Turn an error answer into the exception that tells the user what to do.

    Only an answer to a submission can leave a task behind: the provider does not create
    one for a 4xx, so those cost nothing, while a 5xx may have come after the task was
    made. Answers to polls, uploads and downloads never create tasks.
    """
    code = status if status is not None else resp.status_code
    said = message_of(resp)
    where = f"while trying to {ref.what} ({step.value})"
    if step is Step.DOWNLOAD and code not in (429,) and code < 500:
        # The file host, not the API: the key plays no part, and the task is paid for.
        raise BackendError(
            f"The audio of WaveSpeed task {ref.task_id} could not be fetched from its download URL "
            f"(HTTP {code}: {said}). The task completed and was charged; run again soon, and report "
            "this if it persists.",
            task_id=ref.task_id, status=code, charged=True,
        )
    # Nothing is charged before a task exists. A task being downloaded completed and was
    # charged; one we stop polling may still complete, so nobody knows yet.
    charged: bool | None = True if step is Step.DOWNLOAD else (None if ref.task_id else False)
    if code == 401:
        raise AuthError(
            f"WaveSpeed rejected the API key {where}: {said}. Check {API_KEY_ENV} or --api-key "
            "(a key is created at https://wavespeed.ai/accesskey).",
            task_id=ref.task_id, status=code, charged=charged,
        )
    if code == 402 or (code == 403 and any(w in said.lower() for w in _CREDIT_WORDS)):
        raise QuotaError(
            f"WaveSpeed says the account has no credit left {where}: {said}. Add credit at "
            "https://wavespeed.ai and run again; music already generated is cached.",
            task_id=ref.task_id, status=code, charged=charged,
        )
    if code == 403:
        raise AuthError(
            f"WaveSpeed refused the API key {where}: {said}. The key lacks access to this model "
            "or the account has no credit; check both in the WaveSpeed dashboard.",
            task_id=ref.task_id, status=code, charged=charged,
        )
    if code == 429:
        raise RateLimitError(
            f"WaveSpeed kept rate-limiting requests {where}: {said}. The account's limit was "
            "reached; lower --concurrency, raise --timeout, or try again later.",
            task_id=ref.task_id, status=code, charged=charged,
        )
    if code in (400, 422):
        raise BackendError(
            f"WaveSpeed rejected the request {where}: {said}. The request passed autoscore's own checks, "
            "so the API may have changed; please report this.",
            task_id=ref.task_id, status=code, charged=charged,
        )
    if code == 404 and ref.task_id:
        raise RemoteTaskError(
            f"WaveSpeed no longer knows task {ref.task_id} {where}: {said}. If it completed it was "
            "charged; run again to make the music anew.",
            task_id=ref.task_id, status=code, charged=None,
        )
    if code >= 500 and step is Step.SUBMIT and not exhausted:
        raise TransportError(
            f"WaveSpeed failed with HTTP {code} {where}: {said}. Whether the task was created is "
            "unknown, so it is not resent automatically; check the dashboard and run again.",
            task_id=ref.task_id, status=code, charged=None,
        )
    if code >= 500:
        raise TransportError(
            f"WaveSpeed kept failing with HTTP {code} {where}: {said}. The service may be down; "
            "try again later.",
            task_id=ref.task_id, status=code, charged=charged,
        )
    raise BackendError(
        f"WaveSpeed answered HTTP {code} {where}: {said}.",
        task_id=ref.task_id, status=code, charged=charged,
    )
