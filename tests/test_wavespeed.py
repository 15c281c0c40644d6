"""The WaveSpeed client against the emulator over real loopback HTTP.

Every fault the emulator can inject is either recovered from or reported with a message
that says what to do, and the emulator's request counts prove the money rules: a
submission whose outcome is unknown is never sent twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import numpy as np
import pytest
from conftest import rms
from emulator_fixtures import TEST_KEY, RecordingClock, make_client, run

from autoscore.emulator import Emulator
from autoscore.errors import (
    AuthError,
    BackendError,
    OptionError,
    QuotaError,
    RemoteTaskError,
    TransportError,
)
from autoscore.models import Audio
from autoscore.music.backends.base import FORMATS, ContinuationRequest, GenerationRequest
from autoscore.music.backends.wavespeed import (
    Clock,
    RetryPolicy,
    Timeouts,
    WaveSpeedBackend,
    parse_retry_after,
)


def request(seconds: int = 2, fmt: str = "wav", prompt: str = "calm piano, soft pads") -> GenerationRequest:
    return GenerationRequest(prompt=prompt, duration=seconds, output_format=fmt, negative_prompt="vocals")


def generate(backend: WaveSpeedBackend, req: GenerationRequest) -> Audio:
    return run(backend.generate(req), backend)


# -- happy paths -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_comes_back_as_audio_of_the_requested_length(emulator: Emulator, fmt: str) -> None:
    backend = make_client(emulator)
    audio = generate(backend, request(2, fmt))
    assert audio.rate == 44100
    assert audio.channels == 2
    assert audio.frames == 2 * 44100
    assert rms(audio.samples) > 0.01, "decoded audio is silent"
    stats = emulator.stats
    assert (stats["submits"], stats["downloads"]) == (1, 1)
    assert backend.music_requests == 1
    assert backend.cost == pytest.approx(0.0217)


def test_submission_carries_the_contract_fields_and_no_seed(emulator: Emulator) -> None:
    backend = make_client(emulator)
    req = GenerationRequest("dark synth", 3, "drums", steps=20, guidance=3.5, output_format="flac", seed=99)
    generate(backend, req)
    (body,) = emulator.submitted_bodies
    assert body == {
        "prompt": "dark synth",
        "duration": 3,
        "negative_prompt": "drums",
        "num_inference_steps": 20,
        "guidance_scale": 3.5,
        "output_format": "flac",
    }


def test_sync_mode_needs_no_polls(emulator: Emulator) -> None:
    backend = make_client(emulator, sync_mode=True)
    audio = generate(backend, request(1))
    assert audio.frames == 44100
    assert emulator.stats["polls"] == 0
    assert emulator.submitted_bodies[0]["enable_sync_mode"] is True


def test_outpainting_uploads_the_source_and_returns_source_plus_extension(emulator: Emulator) -> None:
    backend = make_client(emulator)
    source = generate(backend, request(2))
    emulator.reset()
    cont = ContinuationRequest(source=source, prompt="calm piano, soft pads", extend_after=2)
    audio = run(backend.outpaint(cont), backend)
    assert audio.frames == 4 * 44100
    # The source went up as lossless FLAC and comes back as 16-bit WAV: equal to within 16-bit steps.
    assert np.max(np.abs(audio.samples[: source.frames] - source.samples)) < 1e-3
    assert rms(audio.samples[source.frames :]) > 0.01
    stats = emulator.stats
    assert (stats["uploads"], stats["outpaints"], stats["downloads"]) == (1, 1, 1)
    (body,) = emulator.submitted_bodies
    assert body["audio"].startswith(emulator.base_url + "/_media/")
    assert body["extend_seconds_after"] == 2
    assert backend.cost == pytest.approx(0.0217 + 0.0446)


def test_outpainting_that_returns_only_the_extension_is_joined_to_the_source(emulator: Emulator) -> None:
    backend = make_client(emulator)
    source = generate(backend, request(2))
    emulator.faults.update(outpaint_extension_only=1)
    cont = ContinuationRequest(source=source, prompt="calm piano, soft pads", extend_after=3)
    audio = run(backend.outpaint(cont), backend)
    assert audio.frames == 5 * 44100
    assert np.array_equal(audio.samples[: source.frames], source.samples)
    assert rms(audio.samples[source.frames :]) > 0.01


def test_chunks_run_concurrently_but_never_beyond_the_limit(emulator: Emulator) -> None:
    emulator.latency = 0.3
    backend = make_client(emulator, max_concurrency=2)

    async def many() -> list[Audio]:
        return await asyncio.gather(*(backend.generate(request(1, prompt=f"piece {i}")) for i in range(5)))

    results = run(many(), backend)
    assert [a.frames for a in results] == [44100] * 5
    assert emulator.stats["submits"] == 5
    # The account counts running tasks: a slot frees when a task completes, before its download.
    assert emulator.stats["peak_running"] == 2


def test_invalid_request_is_refused_before_any_request_is_sent(emulator: Emulator) -> None:
    backend = make_client(emulator)
    with pytest.raises(OptionError, match="out of range"):
        generate(backend, request(121))
    with pytest.raises(OptionError, match="format"):
        generate(backend, request(2, "wma"))
    assert emulator.stats["requests"] == 0


# -- recovered faults ------------------------------------------------------------------


def test_429_on_submit_is_resent_after_the_retry_after_wait(emulator: Emulator) -> None:
    emulator.faults.update(submit_429=2, retry_after="2")
    backend = make_client(emulator)
    assert generate(backend, request(1)).frames == 44100
    assert emulator.stats["submits"] == 3  # two refusals made no task; the third did
    assert backend.music_requests == 1
    assert backend.clock.sleeps[:2] == pytest.approx([2.0, 2.0], abs=0.01)  # type: ignore[attr-defined]


def test_retry_after_as_http_date_is_honoured(emulator: Emulator) -> None:
    when = datetime.now(UTC) + timedelta(seconds=3)
    emulator.faults.update(poll_429=1, retry_after=format_datetime(when, usegmt=True))
    backend = make_client(emulator)
    generate(backend, request(1))
    assert any(1.0 < s <= 3.0 for s in backend.clock.sleeps)  # type: ignore[attr-defined]


def test_garbage_retry_after_falls_back_to_the_backoff_schedule(emulator: Emulator) -> None:
    emulator.faults.update(poll_429=2, retry_after="soon-ish")
    backend = make_client(emulator)
    generate(backend, request(1))
    assert emulator.stats["submits"] == 1
    # FAST_RETRY: base 0.01 doubling, at most 25 % shorter with jitter (polls wait 0.02 s and up).
    sleeps = backend.clock.sleeps  # type: ignore[attr-defined]
    assert any(0.0075 <= s <= 0.01 for s in sleeps)
    assert any(0.015 <= s < 0.02 for s in sleeps)


@pytest.mark.parametrize("fault", ["poll_429", "poll_500", "drop_poll"])
def test_poll_faults_are_retried_without_resubmitting(emulator: Emulator, fault: str) -> None:
    emulator.faults.update(**{fault: 2})
    backend = make_client(emulator)
    assert generate(backend, request(1)).frames == 44100
    stats = emulator.stats
    assert stats["submits"] == 1
    assert stats["polls"] >= 3


def test_truncated_download_is_fetched_again(emulator: Emulator) -> None:
    emulator.faults.update(truncate_download=1)
    backend = make_client(emulator)
    assert generate(backend, request(2, "mp3")).frames == 2 * 44100
    assert (emulator.stats["submits"], emulator.stats["downloads"]) == (1, 2)


def test_slow_download_within_the_timeout_succeeds(emulator: Emulator) -> None:
    emulator.faults.update(slow_download=0.3)
    backend = make_client(emulator)
    assert generate(backend, request(1)).frames == 44100
    assert emulator.stats["downloads"] == 1


def test_a_random_task_failure_rate_still_reports_cleanly(emulator: Emulator) -> None:
    emulator.fail_rate = 1.0
    backend = make_client(emulator)
    with pytest.raises(RemoteTaskError, match="emulated random failure"):
        generate(backend, request(1))


# -- reported faults -------------------------------------------------------------------


def test_dropped_submit_is_never_resent(emulator: Emulator) -> None:
    emulator.faults.update(drop_submit=1)
    backend = make_client(emulator)
    with pytest.raises(TransportError, match="does not resend") as err:
        generate(backend, request(1))
    assert "dashboard" in str(err.value)
    assert emulator.stats["submits"] == 1


def test_submit_that_outlasts_the_read_timeout_is_never_resent(emulator: Emulator) -> None:
    emulator.faults.update(stall_submit=1.0)
    timeouts = Timeouts(connect=2.0, submit=0.3, poll=5.0, download=5.0, upload=5.0, job=30.0)
    backend = make_client(emulator, timeouts=timeouts)
    with pytest.raises(TransportError, match="does not resend"):
        generate(backend, request(1))
    assert emulator.stats["submits"] == 1


def test_failed_task_reports_the_providers_error_text(emulator: Emulator) -> None:
    emulator.faults.update(fail_tasks=1, fail_error="CUDA out of memory on worker 7")
    backend = make_client(emulator)
    with pytest.raises(RemoteTaskError, match="CUDA out of memory on worker 7") as err:
        generate(backend, request(1))
    assert "failed" in str(err.value)
    assert emulator.stats["submits"] == 1
    assert emulator.stats["downloads"] == 0


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (402, QuotaError, "credit"),
        (403, AuthError, "access"),
        (500, TransportError, "not resent"),
        (503, TransportError, "not resent"),
    ],
)
def test_nth_submit_refused(emulator: Emulator, status: int, error: type[Exception], words: str) -> None:
    emulator.faults.update(fail_submit_number=2, fail_submit_status=status)
    backend = make_client(emulator)
    generate(backend, request(1))
    with pytest.raises(error, match=words):
        generate(backend, request(1, prompt="another"))
    assert emulator.stats["submits"] == 2


def test_wrong_key_says_to_check_the_key(emulator: Emulator) -> None:
    backend = make_client(emulator, api_key="wsk-wrong-key-0000")
    with pytest.raises(AuthError, match="WAVESPEED_API_KEY") as err:
        generate(backend, request(1))
    assert "wsk-wrong-key-0000" not in str(err.value)
    assert emulator.stats["submits"] == 1


def test_missing_key_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    with pytest.raises(AuthError, match="WAVESPEED_API_KEY"):
        WaveSpeedBackend()


def test_key_and_base_url_come_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAVESPEED_API_KEY", TEST_KEY)
    monkeypatch.setenv("WAVESPEED_BASE_URL", emulator.base_url + "/")
    backend = WaveSpeedBackend(retry=RetryPolicy(base=0.01), poll_interval=0.02)
    assert backend.base_url == emulator.base_url
    assert generate(backend, request(1)).frames == 44100


def test_bad_base_url_is_a_usage_error() -> None:
    with pytest.raises(OptionError, match="not an http"):
        WaveSpeedBackend(api_key=TEST_KEY, base_url="ftp://example.com")


def test_a_task_is_polled_through_a_storm_of_429s_rather_than_abandoned(emulator: Emulator) -> None:
    """The task exists and will be charged: polls go on past the usual tries, within the deadline."""
    emulator.faults.update(poll_429=20, retry_after="3600")
    backend = make_client(emulator)
    assert generate(backend, request(1)).frames == 44100
    sleeps = backend.clock.sleeps  # type: ignore[attr-defined]
    assert max(sleeps) == 5.0 and sleeps.count(5.0) == 20  # Retry-After: 3600 capped at retry_after_cap
    assert emulator.stats["submits"] == 1


def test_polls_that_outlast_the_deadline_say_the_task_may_still_be_charged(emulator: Emulator) -> None:
    emulator.faults.update(poll_429=10_000, retry_after="1")
    timeouts = Timeouts(connect=2.0, submit=5.0, poll=5.0, download=5.0, upload=5.0, job=1.0)
    backend = make_client(emulator, timeouts=timeouts, clock=Clock())
    with pytest.raises(TransportError, match=r"may still finish and be charged.*--timeout") as err:
        generate(backend, request(1))
    assert err.value.charged is None and err.value.task_id
    assert emulator.stats["submits"] == 1 and backend.unsettled == 1


def test_download_that_keeps_coming_is_not_cut_by_a_total_cap(emulator: Emulator) -> None:
    """The body takes 1 s in all but never pauses 0.2 s: per-read timeouts let it finish."""
    emulator.faults.update(slow_download=1.0)
    timeouts = Timeouts(connect=2.0, submit=5.0, poll=5.0, download=0.3, upload=5.0, job=30.0)
    backend = make_client(emulator, timeouts=timeouts, retry=RetryPolicy(attempts=2, base=0.01, cap=0.02))
    assert generate(backend, request(1)).duration == pytest.approx(1.0)
    assert (emulator.stats["submits"], emulator.stats["downloads"]) == (1, 1)


def test_download_that_stalls_past_a_read_timeout_gives_up_after_the_attempts(emulator: Emulator) -> None:
    emulator.faults.update(slow_download=1.0)
    timeouts = Timeouts(connect=2.0, submit=5.0, poll=5.0, download=0.03, upload=5.0, job=30.0)
    backend = make_client(emulator, timeouts=timeouts, retry=RetryPolicy(attempts=2, base=0.01, cap=0.02))
    with pytest.raises(TransportError, match=r"after 2 tries.*was charged") as err:
        generate(backend, request(1))
    assert err.value.charged is True and err.value.task_id
    assert (emulator.stats["submits"], emulator.stats["downloads"]) == (1, 2)


def test_job_timeout_names_the_task_that_may_still_be_charged(emulator: Emulator) -> None:
    emulator.latency = 30.0
    timeouts = Timeouts(connect=2.0, submit=5.0, poll=5.0, download=5.0, upload=5.0, job=0.4)
    backend = make_client(emulator, timeouts=timeouts)
    with pytest.raises(TransportError, match=r"Gave up .* after 0.4 s \(task [0-9a-f]+ may still finish"):
        generate(backend, request(1))
    assert emulator.stats["submits"] == 1


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = RecordingClock()
    backend = WaveSpeedBackend(
        api_key=TEST_KEY, base_url=f"http://127.0.0.1:{port}", clock=clock,
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.02),
    )
    with pytest.raises(TransportError, match=r"Could not reach WaveSpeed .* after 3 tries"):
        generate(backend, request(1))
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("status", ["cancelled", "timeout", "deleted"])
def test_other_terminal_statuses_are_failures(status: str) -> None:
    """The emulator's tasks only complete or fail, so these come from a mocked transport."""

    def answer(req: httpx.Request) -> httpx.Response:
        data = {"id": "t1", "status": "created" if req.method == "POST" else status, "outputs": [],
                "error": f"task was {status} by the operator"}
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    backend = WaveSpeedBackend(api_key=TEST_KEY, base_url="http://wavespeed.test", clock=RecordingClock(),
                               poll_interval=0.01, transport=httpx.MockTransport(answer))
    with pytest.raises(RemoteTaskError, match=f"ended {status}.*by the operator.*not charged") as err:
        run(backend.generate(request(1)), backend)
    assert (err.value.task_id, err.value.status, err.value.charged) == ("t1", status, False)
    assert (backend.refunded, backend.music_requests, backend.cost) == (1, 0, 0.0)


# -- the key never leaks -----------------------------------------------------------------


def test_key_appears_in_no_log_output_or_error(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.faults.update(submit_429=1, poll_429=1, poll_500=1, drop_poll=1, truncate_download=1)
    texts: list[str] = []
    backend = make_client(emulator)
    generate(backend, request(1))
    texts.append(repr(backend))
    emulator.faults.update(fail_tasks=1, fail_error=f"echoing Bearer {TEST_KEY} back")
    with pytest.raises(RemoteTaskError) as failed:
        generate(backend, request(1))
    texts.append(str(failed.value))
    emulator.faults.update(drop_submit=1)
    with pytest.raises(TransportError) as dropped:
        generate(backend, request(1))
    texts.append(str(dropped.value))
    wrong = "wsk-wrong-9d8c7b6a5f4e"
    with pytest.raises(AuthError) as refused:
        generate(make_client(emulator, api_key=wrong), request(1))
    texts.append(str(refused.value))
    out = capsys.readouterr()
    texts += [out.out, out.err, caplog.text]
    texts += [json.dumps(r.__dict__, default=str) for r in caplog.records]
    everything = "\n".join(texts)
    assert "wavespeed: retry" in caplog.text, "DEBUG logging was not captured"
    assert TEST_KEY not in everything
    assert wrong not in everything


# -- Retry-After parsing ---------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:09 GMT", now) == 9.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    for garbage in (None, "", "soon", "nan", "inf", "12 parsecs", "Thu, 99 Foo"):
        assert parse_retry_after(garbage, now) is None


def test_backoff_is_capped_and_jittered_downwards() -> None:
    import random

    policy = RetryPolicy(base=1.0, cap=5.0, jitter=0.5)
    rng = random.Random(3)
    for retry in range(1, 12):
        delay = policy.backoff(retry, rng)
        assert 0.5 * min(5.0, 2 ** (retry - 1)) <= delay <= min(5.0, 2 ** (retry - 1))
    assert policy.delay(1, "600", 0.0, rng) == policy.retry_after_cap


def test_backend_error_messages_for_unexpected_answers(emulator: Emulator) -> None:
    """A base URL that is not the API (here: the emulator's admin page) gives a pointed message."""
    backend = make_client(emulator, base_url=emulator.base_url + "/_emulator")
    with pytest.raises(BackendError, match="HTTP 404"):
        generate(backend, request(1))
