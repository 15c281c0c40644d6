"""The WaveSpeed backend: Stable Audio 3 Music over WaveSpeedAI's REST API.

``client`` speaks the protocol (admit, submit, poll), ``session`` sends one exchange with
its timeouts and retries, ``transfer`` moves the bytes (signed uploads, resumable
downloads), ``collect`` checks what a task made, and ``answers`` turns the service's
answers into errors that say what they cost; the retry engine is ``backends.retry``. The contract is
``docs/wavespeed-api.md``.
"""

from __future__ import annotations

from ..retry import AccountGate, Clock, RetryPolicy, Throttle, account_gate, parse_retry_after
from .answers import API_KEY_ENV
from .client import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    Timeouts,
    WaveSpeedBackend,
    default_job_timeout,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "AccountGate",
    "Clock",
    "RetryPolicy",
    "Throttle",
    "Timeouts",
    "WaveSpeedBackend",
    "account_gate",
    "default_job_timeout",
    "parse_retry_after",
]
