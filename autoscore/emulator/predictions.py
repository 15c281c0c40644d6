"""The prediction API: submissions, their account limits, sync mode, and polls.

A submission is checked in the order a gateway would: key, injected refusals, input, then
the account's limits, and only then is a task created (and, on the real service, charged).
So a 400 or a 429 leaves nothing behind, and ``Retry-After`` on a limit's 429 is computed
from the tasks the server itself is running, not a fixed guess.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from .contract import (
    MUSIC_MODEL,
    OUTPAINT_MODEL,
    RESULT_PREFIX,
    BadInput,
    check_common,
    music,
    outpainting,
    seconds,
)
from .media import upload_from_url
from .state import Refusal, Task

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..models import Audio
    from .handler import Handler
    from .server import Emulator

_REFUSALS = {
    402: "Insufficient credits: top up your balance to continue (emulated)",
    403: "Forbidden: this API key has no access to the model (emulated)",
    500: "Internal server error (emulated)",
    503: "Service temporarily unavailable (emulated)",
}
GATEWAY_TIMEOUT = b"upstream request timeout"
"""What the gateway in front of the API says when it stops waiting: not the API's JSON."""
SYNC_TIMEOUT_CODE = 5004


def envelope(emu: Emulator, task: Task, status: str | None = None) -> dict[str, Any]:
    status = status or emu.status_of(task)
    outputs = [f"{emu.base_url}/_cdn/{task.id}.{task.output_format}"] if status == "completed" else []
    return {
        "code": 200,
        "message": "success",
        "data": {
            "id": task.id,
            "model": task.model,
            "status": status,
            "outputs": outputs,
            "urls": {"get": f"{emu.base_url}{RESULT_PREFIX}{task.id}/result"},
            "has_nsfw_contents": [False] * len(outputs),
            "error": task.error if status == "failed" else "",
            "created_at": task.created_at,
            "timings": {"inference": task.inference_ms if status == "completed" else 0},
        },
    }


def _refuse_submit(h: Handler, number: int) -> bool:
    """Faults that answer submission number ``number`` before any task exists."""
    faults = h.emu.faults
    if faults.fail_submit_number and number == faults.fail_submit_number:
        status = faults.fail_submit_status
        h.send_api_error(status, _REFUSALS.get(status, "Request refused (emulated)"))
        return True
    if faults.take("submit_429"):
        h.send_api_error(429, "Too many requests (emulated)", {"Retry-After": faults.retry_after})
        return True
    return False


def _start(
    h: Handler, model: str, spec: dict[str, Any], make: Callable[[], Audio], body: dict[str, Any],
    key: str | None = None,
) -> None:
    """Create the task if the account allows it, then answer as the contract says."""
    emu = h.emu
    task = emu.create_task(model, spec["output_format"], make, body, key)
    if isinstance(task, Refusal):
        data = {"limits": list(task.limits), "retry_after": task.retry_after}
        h.send_api_error(429, task.message, {"Retry-After": str(task.retry_after)}, data)
        return
    if emu.faults.stall_submit > 0:
        time.sleep(emu.faults.stall_submit)
    if emu.faults.take("drop_submit"):
        h.drop()
        return
    if spec["sync"] and not emu.wait_finished(task, emu.sync_timeout):
        _sync_timed_out(h, task)
        return
    h.send_json(200, envelope(emu, task))


def _sync_timed_out(h: Handler, task: Task) -> None:
    """The gateway stops waiting; the task itself runs on and can still be polled."""
    emu = h.emu
    emu.count("sync_timeouts")
    if emu.sync_timeout_style == "envelope":
        answer = envelope(emu, task, "processing")
        answer["data"]["error"] = f"Sync mode timed out after {emu.sync_timeout:g} seconds"
        answer["data"]["code"] = SYNC_TIMEOUT_CODE
        h.send_json(200, answer)
    else:
        h.send_body(504, GATEWAY_TIMEOUT, "text/plain; charset=utf-8")


def submit_music(h: Handler) -> None:
    emu = h.emu
    raw = h.body()
    number = emu.count("submits")
    if not h.authorized() or _refuse_submit(h, number):
        return
    body = h.json_body(raw)
    spec = check_common(body)
    duration = seconds(body, "duration", 30, 1, 120)
    _start(h, MUSIC_MODEL, spec, music(spec, duration), body, key=json.dumps(body, sort_keys=True))


def submit_outpainting(h: Handler) -> None:
    emu = h.emu
    raw = h.body()
    number = emu.count("submits")
    emu.count("outpaints")
    if not h.authorized() or _refuse_submit(h, number):
        return
    body = h.json_body(raw)
    spec = check_common(body)
    audio_url = body.get("audio")
    if not isinstance(audio_url, str) or not audio_url:
        raise BadInput("audio is required: the URL of the source audio")
    before = seconds(body, "extend_seconds_before", 0, 0, 380)
    after = seconds(body, "extend_seconds_after", 5, 0, 380)
    source = upload_from_url(emu, audio_url)
    if source is None:
        raise BadInput("audio could not be fetched from the given URL")

    def make() -> Audio:  # the fault is used up by a render, not by a submission refused 429
        return outpainting(spec, source, before, after, emu.faults.take("outpaint_extension_only"))()

    _start(h, OUTPAINT_MODEL, spec, make, body)


def poll(h: Handler, task_id: str) -> None:
    """``GET /predictions/{id}/result`` and ``GET /predictions/{id}``: the docs show both."""
    emu = h.emu
    emu.count("polls")
    if not h.authorized():
        return
    faults = emu.faults
    if faults.take("drop_poll"):
        h.drop()
        return
    if faults.take("poll_429"):
        h.send_api_error(429, "Too many requests (emulated)", {"Retry-After": faults.retry_after})
        return
    if faults.take("poll_500"):
        h.send_api_error(500, "Internal server error (emulated)")
        return
    task = emu.task(task_id)
    if task is None:
        h.send_api_error(404, f"prediction {task_id} not found (never created, or older than the retention)")
        return
    answer = envelope(emu, task)
    if answer["data"]["status"] == "failed":
        emu.release(task)
    h.send_json(200, answer)
