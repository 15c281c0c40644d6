"""The emulator itself, spoken to with plain httpx: the contract, its 400s and its fault switches."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from emulator_fixtures import TEST_KEY

from autoscore.backends.base import FORMATS
from autoscore.emulator import MUSIC_PATH, OUTPAINT_PATH, RESULT_PREFIX, UPLOAD_PATH, Emulator
from autoscore.ffmpeg import decode_bytes, encode_bytes
from autoscore.models import Audio

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
    with pytest.raises(httpx.RemoteProtocolError):
        submit(emulator, {"prompt": "x", "duration": 1})
    assert emulator.stats["submits"] == 1
    assert len(emulator._tasks) >= 1  # charged, as the real service would


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
        _, err = proc.communicate(timeout=10)
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
