"""The emulator itself, spoken to with plain httpx: the contract, its 400s, its fault switches,
the account limits, both upload routes, sync timeouts, eviction and byte ranges."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from emulator_fixtures import TEST_KEY

from autoscore.emulator import MUSIC_PATH, OUTPAINT_PATH, RESULT_PREFIX, UPLOAD_PATH, UPLOADS_PATH, Emulator
from autoscore.media.ffmpeg import decode_bytes, encode_bytes
from autoscore.models import Audio
from autoscore.music.backends.base import FORMATS

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def submit(
    emu: Emulator, body: Any, headers: dict[str, str] | None = None, path: str = MUSIC_PATH
) -> httpx.Response:
    headers = AUTH if headers is None else headers
    return httpx.post(emu.base_url + path, json=body, headers=headers, timeout=10)


def poll(emu: Emulator, task_id: str) -> dict[str, Any]:
    resp = httpx.get(f"{emu.base_url}{RESULT_PREFIX}{task_id}/result", headers=AUTH, timeout=10)
    assert resp.status_code == 200
    data: dict[str, Any] = resp.json()["data"]
    return data


def wait_done(emu: Emulator, task_id: str) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    for _ in range(500):
        data = poll(emu, task_id)
        seen.append(data["status"])
        if data["status"] in ("completed", "failed"):
            return data, seen
        time.sleep(0.02)
    raise AssertionError(f"task never finished: {seen[-5:]}")


def test_binds_loopback_only(emulator: Emulator) -> None:
    assert emulator._server.server_address[0] == "127.0.0.1"
    assert emulator.base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": TEST_KEY}, {"Authorization": "Basic dTpw"}],
)
def test_missing_or_wrong_key_is_401(emulator: Emulator, headers: dict[str, str]) -> None:
    resp = submit(emulator, {"prompt": "x", "duration": 1}, headers)
    assert resp.status_code == 401
    assert resp.json()["code"] == 401
    assert emulator.stats["unauthorized"] == 1
    assert emulator.submitted_bodies == []


def test_statuses_advance_from_created_to_completed(emulator: Emulator) -> None:
    emulator.latency = 0.6
    resp = submit(emulator, {"prompt": "warm strings", "duration": 1, "output_format": "wav"})
    assert resp.status_code == 200
    body = resp.json()
    assert (body["code"], body["message"]) == (200, "success")
    data = body["data"]
    assert data["status"] == "created"
    assert data["outputs"] == []
    assert data["model"] == "stability-ai/stable-audio-3/music"
    assert data["urls"]["get"] == f"{emulator.base_url}{RESULT_PREFIX}{data['id']}/result"
    final, seen = wait_done(emulator, data["id"])
    assert "processing" in seen
    assert seen.index("processing") < seen.index("completed")
    assert final["outputs"][0].endswith(".wav")
    assert final["timings"]["inference"] > 0
    audio = httpx.get(final["outputs"][0], timeout=10)  # a CDN: no key needed
    assert audio.status_code == 200
    assert audio.content[:4] == b"RIFF"


def test_sync_mode_answers_with_the_finished_prediction(emulator: Emulator) -> None:
    resp = submit(emulator, {"prompt": "lofi beat", "duration": 1, "enable_sync_mode": True})
    data = resp.json()["data"]
    assert data["status"] == "completed"
    assert data["outputs"][0].endswith(".mp3")  # the contract's default format
    assert emulator.stats["polls"] == 0


MAGIC = {
    "wav": lambda b: b[:4] == b"RIFF",
    "flac": lambda b: b[:4] == b"fLaC",
    "ogg": lambda b: b[:4] == b"OggS" and b"vorbis" in b[:64],
    "opus": lambda b: b[:4] == b"OggS" and b"OpusHead" in b[:64],
    "mp3": lambda b: b[:3] == b"ID3" or (b[0] == 0xFF and b[1] & 0xE0 == 0xE0),
    "m4a": lambda b: b[4:8] == b"ftyp",
    "aac": lambda b: b[0] == 0xFF and b[1] & 0xF6 == 0xF0,
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_in_every_format(emulator: Emulator, fmt: str) -> None:
    data = submit(emulator, {"prompt": "harp", "duration": 1, "output_format": fmt, "enable_sync_mode": True})
    blob = httpx.get(data.json()["data"]["outputs"][0], timeout=10).content
    assert MAGIC[fmt](blob), blob[:16]
    assert decode_bytes(blob, 44100, 2, suffix="." + fmt).duration == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    "body",
    [
        {"duration": 5},
        {"prompt": "", "duration": 5},
        {"prompt": 7},
        {"prompt": "x", "duration": 0},
        {"prompt": "x", "duration": 121},
        {"prompt": "x", "duration": "5"},
        {"prompt": "x", "duration": 2.5},
        {"prompt": "x", "duration": True},
        {"prompt": "x", "num_inference_steps": 0},
        {"prompt": "x", "num_inference_steps": 101},
        {"prompt": "x", "num_inference_steps": 1.5},
        {"prompt": "x", "guidance_scale": -0.1},
        {"prompt": "x", "guidance_scale": 25.5},
        {"prompt": "x", "guidance_scale": "1"},
        {"prompt": "x", "output_format": "wma"},
        {"prompt": "x", "negative_prompt": ["drums"]},
        {"prompt": "x", "enable_sync_mode": "yes"},
        ["prompt", "x"],
    ],
)
def test_out_of_range_or_wrongly_typed_input_is_400(emulator: Emulator, body: Any) -> None:
    resp = submit(emulator, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"].startswith("Bad request:")
    assert emulator.submitted_bodies == []


def test_body_that_is_not_json_is_400(emulator: Emulator) -> None:
    resp = httpx.post(emulator.base_url + MUSIC_PATH, content=b"{nope", headers=AUTH, timeout=10)
    assert resp.status_code == 400


def upload(emu: Emulator, data: bytes, name: str = "clip.flac") -> httpx.Response:
    return httpx.post(emu.base_url + UPLOAD_PATH, files={"file": (name, data)}, headers=AUTH, timeout=10)


@pytest.fixture(scope="module")
def clip() -> bytes:
    import numpy as np

    t = np.arange(44100) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return encode_bytes(Audio(np.stack([tone, tone], axis=1), 44100), "flac")


def test_upload_then_outpaint(emulator: Emulator, clip: bytes) -> None:
    up = upload(emulator, clip)
    assert up.status_code == 200
    info = up.json()["data"]
    assert (info["type"], info["filename"], info["size"]) == ("audio", "clip.flac", len(clip))
    assert httpx.get(info["download_url"], timeout=10).content == clip
    body = {"audio": info["download_url"], "prompt": "same tone", "extend_seconds_after": 2,
            "output_format": "wav", "enable_sync_mode": True}
    resp = submit(emulator, body, path=OUTPAINT_PATH)
    data = resp.json()["data"]
    assert data["model"] == "stability-ai/stable-audio-3/audio-outpainting"
    blob = httpx.get(data["outputs"][0], timeout=10).content
    assert decode_bytes(blob, 44100, 2, suffix=".wav").duration == pytest.approx(3.0, abs=0.01)
    assert emulator.stats["uploads"] == 1
    assert emulator.stats["outpaints"] == 1


def test_upload_of_unsupported_type_is_400(emulator: Emulator, clip: bytes) -> None:
    assert upload(emulator, clip, "clip.exe").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x"},
        {"prompt": "x", "audio": "http://elsewhere.example/a.flac"},
        {"prompt": "x", "audio": "URL", "extend_seconds_after": 381},
        {"prompt": "x", "audio": "URL", "extend_seconds_before": -1},
        {"audio": "URL"},
    ],
)
def test_bad_outpainting_input_is_400(emulator: Emulator, clip: bytes, body: dict[str, Any]) -> None:
    url = upload(emulator, clip).json()["data"]["download_url"]
    body = {k: (url if v == "URL" else v) for k, v in body.items()}
    assert submit(emulator, body, path=OUTPAINT_PATH).status_code == 400


def test_stats_and_faults_over_the_admin_endpoints(emulator: Emulator) -> None:
    base = emulator.base_url
    faults = {"submit_429": 1, "retry_after": "4"}
    set_faults = httpx.post(f"{base}/_emulator/faults", json=faults, timeout=10)
    assert set_faults.json()["submit_429"] == 1
    limited = submit(emulator, {"prompt": "x", "duration": 1})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "4"
    assert submit(emulator, {"prompt": "x", "duration": 1}).status_code == 200
    stats = httpx.get(f"{base}/_emulator/stats", timeout=10).json()
    assert (stats["submits"], stats["polls"], stats["downloads"], stats["uploads"]) == (2, 0, 0, 0)
    assert stats == {k: v for k, v in emulator.stats.items()}
    assert httpx.post(f"{base}/_emulator/faults", json={"no_such_fault": 1}, timeout=10).status_code == 400
    httpx.post(f"{base}/_emulator/reset", timeout=10)
    assert emulator.stats["submits"] == 0


def test_failed_task_carries_the_error_text(emulator: Emulator) -> None:
    emulator.faults.update(fail_tasks=1, fail_error="model exploded")
    task_id = submit(emulator, {"prompt": "x", "duration": 1}).json()["data"]["id"]
    final, _ = wait_done(emulator, task_id)
    assert (final["status"], final["error"], final["outputs"]) == ("failed", "model exploded", [])


def test_dropped_submit_still_creates_the_task(emulator: Emulator) -> None:
    emulator.faults.update(drop_submit=1)
    tasks_before = len(emulator._tasks)  # the module's server keeps earlier tests' tasks
    with pytest.raises(httpx.RemoteProtocolError):
        submit(emulator, {"prompt": "x", "duration": 1})
    assert emulator.stats["submits"] == 1
    assert len(emulator._tasks) == tasks_before + 1  # charged, as the real service would


def test_truncated_download_announces_more_than_it_sends(emulator: Emulator) -> None:
    emulator.faults.update(truncate_download=1)
    done = submit(emulator, {"prompt": "x", "duration": 1, "enable_sync_mode": True})
    url = done.json()["data"]["outputs"][0]
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, timeout=10)
    assert httpx.get(url, timeout=10).status_code == 200


def test_the_nth_submit_fails(emulator: Emulator) -> None:
    emulator.faults.update(fail_submit_number=2, fail_submit_status=402)
    codes = [submit(emulator, {"prompt": "x", "duration": 1}).status_code for _ in range(3)]
    assert codes == [200, 402, 200]


def test_same_seed_same_task_ids() -> None:
    def ids(seed: int) -> list[str]:
        with Emulator(latency=0, seed=seed, api_key=TEST_KEY) as emu:
            return [submit(emu, {"prompt": "x", "duration": 1}).json()["data"]["id"] for _ in range(2)]

    assert ids(5) == ids(5)
    assert ids(5) != ids(6)


def test_serve_runs_in_the_foreground_until_interrupted() -> None:
    code = "from autoscore.emulator import serve; serve(port=0, latency=0.1, seed=3)"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        stats = httpx.get(match.group(0) + "/_emulator/stats", timeout=10)
        assert json.loads(stats.text)["requests"] == 1
        # Without --api-key any non-empty key is accepted; none at all is still refused.
        assert httpx.post(match.group(0) + MUSIC_PATH, json={"prompt": "x"}, timeout=10).status_code == 401
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        _, err = proc.communicate(timeout=60)  # generous: a loaded CI machine
    assert "stopped" in err
    assert proc.returncode == 0


def test_reused_renders_answer_a_repeated_request_with_the_same_audio() -> None:
    """The benchmark's fixed-latency mode: an identical request is not composed again."""
    with Emulator(latency=0.0, api_key=TEST_KEY, reuse_renders=True) as emu:
        def fetch(prompt: str) -> tuple[bytes, int]:
            resp = submit(emu, {"prompt": prompt, "duration": 2, "output_format": "wav", "seed": 3})
            data, _ = wait_done(emu, resp.json()["data"]["id"])
            got = httpx.get(data["outputs"][0], timeout=10)
            return got.content, data["timings"]["inference"]

        first, composed_ms = fetch("bright ukulele pop")
        again, reused_ms = fetch("bright ukulele pop")
        other, _ = fetch("dark ambient drone")
    assert again == first and other != first
    assert reused_ms < composed_ms


# -- account limits ------------------------------------------------------------------


def test_running_limit_answers_429_with_a_truthful_retry_after(emulator: Emulator) -> None:
    emulator.latency = 1.5
    emulator.max_running = 2
    started = time.monotonic()
    ids = [submit(emulator, {"prompt": "x", "duration": 1}).json()["data"]["id"] for _ in range(2)]
    first_done = started + 1.5  # no earlier than this, by the server's clock
    before = time.monotonic()
    refused = submit(emulator, {"prompt": "x", "duration": 1})
    after = time.monotonic()
    assert refused.status_code == 429
    body = refused.json()
    assert body["data"]["limits"] == ["max_running"]
    assert "at most 2 tasks may run at once" in body["message"]
    wait = int(refused.headers["Retry-After"])
    assert math.ceil(first_done - after) <= wait <= math.ceil(first_done - before + 0.3)
    stats = emulator.stats
    assert (stats["submits"], stats["accepted"], stats["rate_limited"]) == (3, 2, 1)
    assert emulator.submitted_ids == ids  # nothing was created for the 429
    time.sleep(max(0.0, before + wait - time.monotonic()))
    assert submit(emulator, {"prompt": "x", "duration": 1}).status_code == 200
    assert emulator.stats["peak_running"] == 2


def test_per_minute_limit_counts_accepted_tasks_only(emulator: Emulator, clip: bytes) -> None:
    emulator.latency = 0.05
    emulator.per_minute, emulator.window = 2, 1.0
    assert submit(emulator, {"prompt": ""}).status_code == 400  # refused input uses up nothing
    started = time.monotonic()
    assert [submit(emulator, {"prompt": "x", "duration": 1}).status_code for _ in range(2)] == [200, 200]
    url = upload(emulator, clip).json()["data"]["download_url"]
    refused = submit(emulator, {"prompt": "x", "audio": url}, path=OUTPAINT_PATH)  # outpainting counts too
    assert refused.status_code == 429
    assert refused.json()["data"]["limits"] == ["per_minute"]
    assert refused.headers["Retry-After"] == "1"
    time.sleep(max(0.0, started + 1.05 - time.monotonic()))
    assert submit(emulator, {"prompt": "x", "duration": 1}).status_code == 200
    assert (emulator.stats["accepted"], emulator.stats["rate_limited"]) == (3, 1)


def test_when_both_limits_block_retry_after_is_the_longer_wait(emulator: Emulator) -> None:
    emulator.latency = 1.0
    emulator.max_running, emulator.per_minute, emulator.window = 1, 1, 4.0
    assert submit(emulator, {"prompt": "x", "duration": 1}).status_code == 200
    refused = submit(emulator, {"prompt": "x", "duration": 1})
    assert refused.status_code == 429
    assert refused.json()["data"]["limits"] == ["max_running", "per_minute"]
    assert refused.headers["Retry-After"] == "4"


def test_tier_sets_both_limits_and_explicit_numbers_override_it() -> None:
    with Emulator(latency=0, api_key=TEST_KEY, tier="bronze", max_running=3) as emu:
        assert (emu.tier, emu.max_running, emu.per_minute) == ("bronze", 3, 2)
        emu.tier = None
        assert (emu.max_running, emu.per_minute) == (None, None)
        emu.reset_settings()
        assert (emu.tier, emu.max_running, emu.per_minute) == ("bronze", 3, 2)
        with pytest.raises(ValueError, match="Available: bronze"):
            emu.tier = "platinum"
        with pytest.raises(ValueError, match="max_running"):
            emu.max_running = 0


# -- current upload route -------------------------------------------------------------


def ticket(emu: Emulator, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(emu.base_url + UPLOADS_PATH, json=body, headers=AUTH if headers is None else headers,
                      timeout=10)


def test_signed_upload_behaves_like_presigned_storage(emulator: Emulator, clip: bytes) -> None:
    resp = ticket(emulator, {"filename": "take.flac", "size": len(clip), "content_type": "audio/flac"})
    assert resp.status_code == 200
    assert (resp.json()["code"], resp.json()["message"]) == (200, "success")
    data = resp.json()["data"]
    put = data["upload"]
    assert put["method"] == "PUT" and put["headers"] == {"Content-Type": "audio/flac"}
    assert put["url"].startswith(emulator.base_url + "/_upload/")
    assert httpx.get(data["download_url"], timeout=10).status_code == 404  # nothing stored yet

    def send(url: str = put["url"], body: bytes = clip, extra: dict[str, str] | None = None
             ) -> httpx.Response:
        headers = {"Content-Type": "audio/flac", **(extra or {})}
        return httpx.put(url, content=body, headers=headers, timeout=10)

    assert send(extra=AUTH).status_code == 403
    wrong_type = send(extra={"Content-Type": "audio/mpeg"})
    assert wrong_type.status_code == 403 and b"SignatureDoesNotMatch" in wrong_type.content
    tampered = re.sub(r"signature=[0-9a-f]{4}", "signature=0000", put["url"])
    assert tampered != put["url"] and send(tampered).status_code == 403
    assert send(body=clip[:-1]).status_code == 400
    assert send(body=clip + b"\0").status_code == 400
    assert httpx.get(data["download_url"], timeout=10).status_code == 404
    assert send().status_code == 200
    assert httpx.get(data["download_url"], timeout=10).content == clip
    stats = emulator.stats
    assert (stats["uploads"], stats["upload_puts"], stats["unauthorized"]) == (1, 6, 0)


def test_upload_ticket_guesses_the_content_type_from_the_name(emulator: Emulator) -> None:
    put = ticket(emulator, {"filename": "take.wav", "size": 10}).json()["data"]["upload"]
    assert put["headers"] == {"Content-Type": "audio/x-wav"}
    resp = httpx.put(put["url"], content=b"0123456789", headers=put["headers"], timeout=10)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"size": 10}, 400),
        ({"filename": "take.exe", "size": 10}, 400),
        ({"filename": "a/take.flac", "size": 10}, 400),
        ({"filename": "take.flac", "size": 0}, 400),
        ({"filename": "take.flac", "size": "10"}, 400),
        ({"filename": "take.flac", "size": 2.5}, 400),
        ({"filename": "take.flac", "size": 10, "content_type": 5}, 400),
        ({"filename": "take.flac", "size": 50 * 1024 * 1024 + 1}, 413),
    ],
)
def test_bad_upload_tickets_are_refused(emulator: Emulator, body: dict[str, Any], status: int) -> None:
    assert ticket(emulator, body).status_code == status


def test_upload_ticket_needs_the_key(emulator: Emulator) -> None:
    assert ticket(emulator, {"filename": "take.flac", "size": 10}, headers={}).status_code == 401
    assert emulator.stats["unauthorized"] == 1


def test_expired_upload_urls_are_refused(emulator: Emulator) -> None:
    emulator.faults.update(upload_put_403=1)
    put = ticket(emulator, {"filename": "take.flac", "size": 3}).json()["data"]["upload"]
    expired = httpx.put(put["url"], content=b"abc", headers=put["headers"], timeout=10)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    assert httpx.put(put["url"], content=b"abc", headers=put["headers"], timeout=10).status_code == 200
    emulator.upload_url_lifetime = 0
    put = ticket(emulator, {"filename": "take.flac", "size": 3}).json()["data"]["upload"]
    late = httpx.put(put["url"], content=b"abc", headers=put["headers"], timeout=10)
    assert late.status_code == 403 and b"Request has expired" in late.content


def test_either_upload_route_can_be_switched_off(emulator: Emulator, clip: bytes) -> None:
    emulator.current_upload = False
    assert ticket(emulator, {"filename": "take.flac", "size": 10}).status_code == 404
    assert upload(emulator, clip).status_code == 200
    emulator.current_upload, emulator.legacy_upload = True, False
    assert upload(emulator, clip).status_code == 404
    assert ticket(emulator, {"filename": "take.flac", "size": 10}).status_code == 200
    assert emulator.stats["uploads"] == 4  # every call to an upload route, answered or not


# -- polls, sync mode, eviction ---------------------------------------------------------


def test_prediction_answers_without_the_result_suffix_too(emulator: Emulator) -> None:
    task_id = submit(emulator, {"prompt": "x", "duration": 1}).json()["data"]["id"]
    final, _ = wait_done(emulator, task_id)
    plain = httpx.get(f"{emulator.base_url}{RESULT_PREFIX}{task_id}", headers=AUTH, timeout=10)
    assert plain.status_code == 200 and plain.json()["data"] == final
    unknown = httpx.get(f"{emulator.base_url}{RESULT_PREFIX}nope", headers=AUTH, timeout=10)
    assert unknown.status_code == 404
    assert emulator.stats["polls"] >= 3


def test_sync_wait_that_outlasts_the_gateway_is_504_and_the_task_runs_on(emulator: Emulator) -> None:
    emulator.latency, emulator.sync_timeout = 1.0, 0.2
    started = time.monotonic()
    resp = submit(emulator, {"prompt": "x", "duration": 1, "enable_sync_mode": True, "output_format": "wav"})
    assert resp.status_code == 504 and resp.text == "upstream request timeout"
    assert time.monotonic() - started < 0.8
    (task_id,) = emulator.submitted_ids
    final, seen = wait_done(emulator, task_id)
    assert seen[0] in ("created", "processing") and final["status"] == "completed"
    assert httpx.get(final["outputs"][0], timeout=10).content[:4] == b"RIFF"
    assert (emulator.stats["sync_timeouts"], emulator.stats["accepted"]) == (1, 1)


def test_sync_timeout_as_an_envelope(emulator: Emulator) -> None:
    emulator.latency, emulator.sync_timeout, emulator.sync_timeout_style = 1.0, 0.2, "envelope"
    resp = submit(emulator, {"prompt": "x", "duration": 1, "enable_sync_mode": True})
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert (data["status"], data["code"], data["outputs"]) == ("processing", 5004, [])
    assert data["error"] == "Sync mode timed out after 0.2 seconds"
    assert wait_done(emulator, data["id"])[0]["status"] == "completed"


def test_finished_tasks_and_uploads_are_forgotten_after_the_ttl(emulator: Emulator, clip: bytes) -> None:
    emulator.ttl = 0.3
    old = submit(emulator, {"prompt": "x", "duration": 1, "enable_sync_mode": True}).json()["data"]
    url = upload(emulator, clip).json()["data"]["download_url"]
    assert poll(emulator, old["id"])["status"] == "completed"
    time.sleep(0.4)
    assert submit(emulator, {"prompt": "x", "duration": 1}).status_code == 200  # sweeps
    gone = httpx.get(f"{emulator.base_url}{RESULT_PREFIX}{old['id']}/result", headers=AUTH, timeout=10)
    assert gone.status_code == 404
    assert httpx.get(old["outputs"][0], timeout=10).status_code == 404
    assert httpx.get(url, timeout=10).status_code == 404
    assert emulator.stats["evicted"] >= 2


def test_memory_stays_bounded_over_many_tasks() -> None:
    with Emulator(latency=0, api_key=TEST_KEY, reuse_renders=True, ttl=0.05) as emu:
        for n in range(8):
            data = submit(emu, {"prompt": f"piece {n % 3}", "duration": 1, "enable_sync_mode": True}).json()
            assert data["data"]["status"] == "completed"
            time.sleep(0.06)
        assert len(emu._tasks) <= 2
        assert emu._renders is not None and len(emu._renders) <= 2
        assert emu.stats["evicted"] >= 14  # each pass drops the last pass's task and render


# -- downloads ---------------------------------------------------------------------------


@pytest.fixture
def finished_wav(emulator: Emulator) -> tuple[str, bytes]:
    data = submit(emulator, {"prompt": "x", "duration": 1, "output_format": "wav", "enable_sync_mode": True})
    url = data.json()["data"]["outputs"][0]
    whole = httpx.get(url, timeout=10)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    return url, whole.content


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=10-", 10, None), ("bytes=0-9", 0, 9), ("bytes=100-199", 100, 199), ("bytes=-5", -5, None)],
)
def test_downloads_answer_byte_ranges(
    finished_wav: tuple[str, bytes], header: str, first: int, last: int | None
) -> None:
    url, whole = finished_wav
    part = httpx.get(url, headers={"Range": header}, timeout=10)
    assert part.status_code == 206
    expected = whole[first:] if last is None else whole[first:last + 1]
    assert part.content == expected
    start = first % len(whole)
    assert part.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(whole)}"
    assert part.headers["Accept-Ranges"] == "bytes"


def test_range_past_the_end_is_416_and_a_cdn_may_ignore_ranges(
    emulator: Emulator, finished_wav: tuple[str, bytes]
) -> None:
    url, whole = finished_wav
    beyond = httpx.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=10)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
    emulator.faults.update(no_range=1)
    ignored = httpx.get(url, headers={"Range": "bytes=10-"}, timeout=10)
    assert ignored.status_code == 200 and ignored.content == whole
    assert httpx.get(url, headers={"Range": "bytes=10-"}, timeout=10).status_code == 206


def test_a_cut_download_can_be_resumed_with_a_range(
    emulator: Emulator, finished_wav: tuple[str, bytes]
) -> None:
    url, whole = finished_wav
    emulator.faults.update(truncate_download=1)
    got = b""
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", url, timeout=10) as resp:
        assert int(resp.headers["Content-Length"]) > len(whole)
        for piece in resp.iter_raw():
            got += piece
    assert 0 < len(got) < len(whole)
    rest = httpx.get(url, headers={"Range": f"bytes={len(got)}-"}, timeout=10)
    assert rest.status_code == 206
    assert got + rest.content == whole


# -- the package itself ---------------------------------------------------------------


def test_public_names_and_no_client_imports() -> None:
    """The emulator shares no code with the client it tests, so it cannot share its mistakes."""
    import ast
    from pathlib import Path

    import autoscore.emulator as package

    assert sorted(package.__all__) == ["DEFAULT_LATENCY", "Emulator", "Faults", "serve"]
    folder = Path(package.__file__).parent
    imported: set[str] = set()
    for source in folder.glob("*.py"):
        text = source.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                imported.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        assert len(text.splitlines()) < 400, source.name
    assert "..music.backends.procedural.composer" in imported
    assert not {m for m in imported if "backends.base" in m or "wavespeed" in m or m == "..music.backends"}


def test_cli_serves_with_account_limits() -> None:
    args = ["--port", "0", "--latency", "0", "--tier", "bronze", "--max-running", "3", "--per-minute", "1",
            "--window", "30", "--sync-timeout", "5", "--ttl", "60"]
    proc = subprocess.Popen([sys.executable, "-m", "autoscore", "emulator", *args], stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "limits 3 running and 1 per 30 s, sync timeout 5 s" in line, line
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        url = match.group(0) + MUSIC_PATH
        codes = [httpx.post(url, json={"prompt": "x", "duration": 1}, headers=AUTH, timeout=10)
                 for _ in range(2)]
        assert [c.status_code for c in codes] == [200, 429]
        assert codes[1].headers["Retry-After"] == "30"
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
