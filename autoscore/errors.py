"""Every failure autoscore reports to a user is one of these.

The library raises; the CLI prints ``Error: <message>`` and exits with ``exit_code``.
Each message names the problem *and* what to do about it, because the person reading it
is usually running a batch over hundreds of files and has one line to go on.

    AutoscoreError                      exit 1 (runtime) unless noted
    ├── UsageError                      exit 2: the call itself is wrong
    │   ├── OptionError                 an option is out of range or unknown
    │   ├── PresetError                 a preset is missing, broken or invalid
    │   ├── NotesError                  a notes file does not parse
    │   ├── OutputPathError             output equals input, or cannot be written
    │   └── CostLimitError              the plan costs more than --max-cost allows
    ├── InputError                      the input media is missing, corrupt or empty
    ├── FFmpegError                     ffmpeg failed on something we asked of it
    ├── BackendError                    a music generator failed
    │   ├── AuthError                   401/403: the key is wrong or lacks rights
    │   ├── QuotaError                  402: no credit left
    │   ├── RateLimitError              429 that outlived the retries
    │   ├── RemoteTaskError             the provider ran the task and it failed
    │   └── TransportError              network trouble that outlived the retries
    ├── CacheError                      the cache folder cannot be used
    ├── ClusterError                    the Dask cluster cannot be reached or cannot run autoscore
    └── Stopped                         the process is shutting down (a Dask worker being closed)

Messages must never contain an API key; ``redact`` is applied wherever text from the
outside world (HTTP bodies, ffmpeg stderr) is folded into a message.
"""

from __future__ import annotations

import re
import threading

__all__ = [
    "AuthError",
    "AutoscoreError",
    "BackendError",
    "CacheError",
    "ClusterError",
    "CostLimitError",
    "FFmpegError",
    "InputError",
    "NotesError",
    "OptionError",
    "OutputPathError",
    "PresetError",
    "QuotaError",
    "RateLimitError",
    "RemoteTaskError",
    "Stopped",
    "TransportError",
    "UsageError",
    "redact",
]


class AutoscoreError(Exception):
    """Root of the tree; ``str(err)`` is a complete sentence fit for a user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(AutoscoreError):
    exit_code = 2


class OptionError(UsageError):
    pass


class PresetError(UsageError):
    pass


class NotesError(UsageError):
    pass


class OutputPathError(UsageError):
    pass


class CostLimitError(UsageError):
    pass


class InputError(AutoscoreError):
    pass


class FFmpegError(AutoscoreError):
    pass


class ClusterError(AutoscoreError):
    pass


class Stopped(AutoscoreError):
    pass


class BackendError(AutoscoreError):
    """A generator failed. What it cost is on the exception, so callers need not parse text.

    ``task_id`` is the provider's task, when one was created; ``status`` the HTTP status or
    the task's terminal status that ended it; ``charged`` is True when the provider kept
    the money, False when nothing was charged (never created, or refunded), and None when
    nobody can know yet (a submission whose answer was lost, a task still running).
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str = "",
        status: int | str | None = None,
        charged: bool | None = False,
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status
        self.charged = charged


class AuthError(BackendError):
    pass


class QuotaError(BackendError):
    pass


class RateLimitError(BackendError):
    pass


class RemoteTaskError(BackendError):
    pass


class TransportError(BackendError):
    pass


class CacheError(AutoscoreError):
    pass


_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"']+")


def register_secret(secret: str | None) -> None:
    """Remember a value that must never appear in any message we produce."""
    if secret and len(secret) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def redact(text: str) -> str:
    """Strip registered secrets and bearer tokens from text bound for a user or a log."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)
