"""The emulator driven by the provider's official Python SDK (``wavespeed``), as a user would.

The emulator is only worth testing the client against if the real client library accepts
it too: every route, status, sync-mode answer, upload step and refusal here goes through
``wavespeed.Client`` unchanged, pointed at the emulator by ``base_url``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import wavespeed
from emulator_fixtures import TEST_KEY

from autoscore.emulator import Emulator
from autoscore.media.ffmpeg import decode_bytes, encode_bytes
from autoscore.models import Audio

MUSIC = "stability-ai/stable-audio-3/music"
OUTPAINT = "stability-ai/stable-audio-3/audio-outpainting"
CONTRACT_FORMATS = ("mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
"""From the contract, not from either side's code."""


@pytest.fixture
def client(emulator: Emulator) -> wavespeed.Client:
    return wavespeed.Client(api_key=TEST_KEY, base_url=emulator.base_url)


def fetch(url: str, fmt: str) -> Audio:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200
    return decode_bytes(resp.content, 44100, 2, suffix="." + fmt)


def wait_completed(client: wavespeed.Client, task_id: str) -> dict[str, Any]:
    for _ in range(200):
        data: dict[str, Any] = client.get_result(task_id)["data"]
        if data["status"] not in ("created", "processing"):
            return data
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never finished")


@pytest.mark.parametrize("fmt", CONTRACT_FORMATS)
def test_run_returns_audio_in_every_format(emulator: Emulator, client: wavespeed.Client, fmt: str) -> None:
    out = client.run(MUSIC, {"prompt": "bright marimba, 110 BPM", "duration": 2, "output_format": fmt},
                     poll_interval=0.05)
    (url,) = out["outputs"]
    assert url.endswith("." + fmt)
    assert fetch(url, fmt).duration == pytest.approx(2.0, abs=0.1)
    stats = emulator.stats
    assert (stats["submits"], stats["accepted"]) == (1, 1)
    assert stats["polls"] >= 1


def test_sync_mode_answers_in_one_request(emulator: Emulator, client: wavespeed.Client) -> None:
    out = client.run(MUSIC, {"prompt": "warm pads", "duration": 2, "output_format": "wav"},
                     enable_sync_mode=True)
    assert fetch(out["outputs"][0], "wav").frames == 2 * 44100
    assert emulator.stats["polls"] == 0
    assert emulator.submitted_bodies[0]["enable_sync_mode"] is True


def test_gateway_timeout_in_sync_mode_is_raised_and_the_task_still_finishes(
    emulator: Emulator, client: wavespeed.Client
) -> None:
    emulator.latency, emulator.sync_timeout = 1.0, 0.2
    with pytest.raises(RuntimeError, match="HTTP 504"):
        client.run(MUSIC, {"prompt": "warm pads", "duration": 2}, enable_sync_mode=True)
    assert emulator.stats["submits"] == 1  # the SDK never resends a POST
    (task_id,) = emulator.submitted_ids  # the 504 carried no id: the service's own record has it
    data = wait_completed(client, task_id)
    assert data["status"] == "completed"
    assert fetch(data["outputs"][0], "mp3").duration == pytest.approx(2.0, abs=0.1)


def test_sync_timeout_envelope_names_the_task_to_query_later(
    emulator: Emulator, client: wavespeed.Client
) -> None:
    emulator.latency, emulator.sync_timeout, emulator.sync_timeout_style = 1.0, 0.2, "envelope"
    with pytest.raises(RuntimeError, match="Sync mode timed out") as raised:
        client.run(MUSIC, {"prompt": "warm pads", "duration": 2}, enable_sync_mode=True)
    match = re.search(r"task_id: (\w+)", str(raised.value))
    assert match and [match.group(1)] == emulator.submitted_ids
    assert wait_completed(client, match.group(1))["status"] == "completed"
    quiet = client.run_no_throw(MUSIC, {"prompt": "warm pads", "duration": 2}, enable_sync_mode=True)
    assert (quiet["status"], quiet["outputs"]) == ("processing", None)
    assert quiet["task_id"] == emulator.submitted_ids[-1]


def test_upload_then_outpaint(emulator: Emulator, client: wavespeed.Client, tmp_path: Path) -> None:
    t = np.arange(2 * 44100) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    source = Audio(np.stack([tone, tone], axis=1), 44100)
    path = tmp_path / "source.flac"
    path.write_bytes(encode_bytes(source, "flac"))
    url = client.upload(str(path))
    assert url.startswith(emulator.base_url + "/_media/")
    assert (emulator.stats["uploads"], emulator.stats["upload_puts"]) == (1, 1)
    out = client.run(OUTPAINT, {"audio": url, "prompt": "gentle drone, same key", "extend_seconds_after": 2,
                                "output_format": "wav"}, poll_interval=0.05)
    audio = fetch(out["outputs"][0], "wav")
    assert audio.frames == 4 * 44100
    assert np.max(np.abs(audio.samples[: source.frames] - source.samples)) < 1e-3
    assert emulator.stats["outpaints"] == 1


def test_get_result_reports_a_finished_task(emulator: Emulator, client: wavespeed.Client) -> None:
    done = client.run_no_throw(MUSIC, {"prompt": "lofi beat", "duration": 2}, poll_interval=0.05)
    assert done["status"] == "completed"
    data = client.get_result(done["task_id"])["data"]
    assert (data["status"], data["outputs"], data["model"]) == ("completed", done["outputs"], MUSIC)
    assert data["timings"]["inference"] > 0
    polls = emulator.stats["polls"]
    with pytest.raises(RuntimeError, match="HTTP 404"):
        client.get_result("no-such-task")
    assert emulator.stats["polls"] == polls + 1  # a 404 is not retried


def test_bronze_account_refuses_the_third_task_and_the_sdk_never_resends(
    emulator: Emulator, client: wavespeed.Client
) -> None:
    emulator.tier = "bronze"
    for _ in range(2):
        client.run(MUSIC, {"prompt": "lofi beat", "duration": 2}, poll_interval=0.05)
    with pytest.raises(RuntimeError, match="HTTP 429") as raised:
        client.run(MUSIC, {"prompt": "lofi beat", "duration": 2}, poll_interval=0.05)
    assert "per_minute" in str(raised.value)
    stats = emulator.stats
    assert (stats["submits"], stats["accepted"], stats["rate_limited"]) == (3, 2, 1)
    assert len(emulator.submitted_bodies) == 2
