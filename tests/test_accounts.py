"""Real accounts: rate limits, refunds, signed uploads, resumed downloads, and no paid audio lost.

Each test that changes an account's limits gets an emulator of its own, so the limits
and the in-flight limit the client learns do not leak into other tests.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import make_media
from emulator_fixtures import TEST_KEY, make_client, run

from autoscore.batch import run_batch
from autoscore.emulator import Emulator
from autoscore.errors import BackendError, RemoteTaskError, TransportError
from autoscore.models import Audio, Chunk
from autoscore.music.backends.base import ContinuationRequest, GenerationRequest
from autoscore.music.backends.retry import AccountGate, Clock, PollPacer, RetryPolicy
from autoscore.music.backends.wavespeed import Timeouts, WaveSpeedBackend
from autoscore.music.cache import AudioCache
from autoscore.music.generate import ChunkStore, generate_chunks
from autoscore.pipeline import plan_music
from autoscore.text.presets import GenerationSettings

SETTINGS = GenerationSettings(format="flac")


@pytest.fixture
def own_emulator() -> Iterator[Emulator]:
    with Emulator(latency=0.2, seed=3, api_key=TEST_KEY) as emu:
        yield emu


def short_chunks(n: int, seconds: int = 2) -> list[Chunk]:
    return [
        Chunk(i, i * 2.0, seconds, f"calm piano, 80 BPM, part {i}", "vocals", 0, 1.0, 1.0, i == 0, i == n - 1,
              seed=i)
        for i in range(n)
    ]


def request(seconds: int = 1, prompt: str = "calm piano, 80 BPM") -> GenerationRequest:
    return GenerationRequest(prompt=prompt, duration=seconds, output_format="flac")


# -- the account's limits ---------------------------------------------------------------


def test_a_ten_minute_job_on_a_bronze_account_pays_each_chunk_once(own_emulator: Emulator,
                                                                   tmp_path: Path) -> None:
    """Two running and two a minute (the window shrunk to 1 s): the 6 chunks of a
    10-minute plan all arrive, through 429s, with exactly 6 tasks created."""
    emu = own_emulator
    emu.tier, emu.max_running, emu.per_minute, emu.window = "bronze", 2, 2, 1.0
    job = plan_music(600.0, backend="wavespeed", api_key=TEST_KEY)
    assert len(job.plan.chunks) == 6
    # Same plan shape, shorter audio: the limits, not the composer, are under test.
    chunks = [replace(c, duration=2) for c in job.plan.chunks]
    backend = make_client(emu, max_concurrency=8, poll_interval=0.05, poll_interval_max=0.1,
                          retry=RetryPolicy(attempts=4, base=0.05, cap=0.2, retry_after_cap=5.0))
    throttles = []
    backend.on_throttle = throttles.append
    stats = generate_chunks(chunks, backend, AudioCache(tmp_path / "cache"), ChunkStore(tmp_path / "s"),
                            SETTINGS, timeout=60.0)
    assert stats.requests == 6
    assert emu.stats["accepted"] == 6
    assert emu.stats["rate_limited"] >= 1  # the limit was really met
    assert emu.stats["peak_running"] <= 2
    assert stats.cost == pytest.approx(6 * 0.0217)
    assert backend.gate.limit <= 4  # it learnt to send fewer at once
    assert throttles and max(t.queued for t in throttles) >= 1


def test_retry_after_is_honoured_and_a_huge_one_is_capped_with_a_warning(own_emulator: Emulator) -> None:
    own_emulator.faults.update(submit_429=2, retry_after="86400")
    backend = make_client(own_emulator)
    warnings: list[str] = []
    backend.on_warning = warnings.append
    audio = run(backend.generate(request()), backend)
    assert audio.duration == pytest.approx(1.0)
    sleeps = backend.clock.sleeps  # type: ignore[attr-defined]
    assert sum(1 for x in sleeps if x == pytest.approx(5.0, abs=0.01)) == 2  # FAST_RETRY caps it at 5 s
    assert len(warnings) == 1 and "86400" in warnings[0] and "5 s at most" in warnings[0]
    assert own_emulator.stats["accepted"] == 1


def test_a_job_that_cannot_get_past_the_limit_in_time_fails_uncharged(own_emulator: Emulator) -> None:
    own_emulator.faults.update(submit_429=1000, retry_after="1")
    backend = make_client(own_emulator, clock=Clock(),
                          timeouts=Timeouts(connect=2.0, submit=5.0, poll=5.0, download=5.0, upload=5.0))
    backend.start_job(1, timeout=1.5)
    # Either the wait for room runs out, or too little time is left to start a task: both uncharged.
    with pytest.raises(BackendError, match=r"(raise|Allow more with) --timeout") as err:
        run(backend.generate(request()), backend)
    assert err.value.charged is False
    assert own_emulator.stats["accepted"] == 0


def test_job_deadline_grows_with_the_number_of_requests() -> None:
    from autoscore.music.backends.wavespeed import default_job_timeout

    assert default_job_timeout(30) > default_job_timeout(6) > default_job_timeout(1) >= 300


class _VirtualClock(Clock):
    """Time that moves only when someone sleeps: schedules are checked exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, wake)


def test_gate_halves_on_429_once_per_round_and_grows_back_with_successes() -> None:
    gate = AccountGate(8)

    async def go() -> None:
        clock = _VirtualClock()
        first = [await gate.acquire(clock, deadline=None) for _ in range(8)]
        for t in first[2:]:  # the account took two; six were refused, all sent under the same limit
            gate.refused(t, 0.0, clock.now)
        assert (gate.limit, gate.in_flight) == (4, 2)  # halved once, not six times
        second = [await gate.acquire(clock, deadline=None) for _ in range(2)]
        gate.refused(second[1], 0.0, clock.now)  # refused again under the new limit: halve again
        assert (gate.limit, gate.in_flight) == (2, 3)
        for t in [*first[:2], second[0]]:  # old rounds' successes do not raise the new limit
            gate.release(t, succeeded=True)
        assert gate.limit == 2
        third = [await gate.acquire(clock, deadline=None) for _ in range(2)]
        for t in third:
            gate.release(t, succeeded=True)
        assert gate.limit == 3  # a limit's worth of successes raises it by one

    asyncio.run(go())


def test_gate_holds_every_submission_for_the_servers_wait_and_times_out_at_the_deadline() -> None:
    gate = AccountGate(2)

    async def go() -> None:
        clock = _VirtualClock()
        t = await gate.acquire(clock, deadline=None)
        gate.refused(t, 7.0, clock.now)
        t = await gate.acquire(clock, deadline=None)
        assert clock.sleeps == [7.0]
        gate.refused(t, 100.0, clock.now)
        with pytest.raises(TimeoutError):
            await gate.acquire(clock, deadline=clock.now + 10.0)
        clock.now += 90.0  # who arrives later waits only for what is left of the wait
        t = await gate.acquire(clock, deadline=clock.now + 60.0)
        assert clock.sleeps[-1] == pytest.approx(10.0)
        gate.refused(t, 5.0, clock.now)
        gate.refused(await gate.acquire(clock, deadline=None), 20.0, clock.now)  # overlapping: later end wins
        assert clock.sleeps[-1] == pytest.approx(5.0)

    asyncio.run(go())


def test_poll_pacer_keeps_a_ceiling_on_polls_per_second_for_the_whole_job() -> None:
    pacer = PollPacer(4)
    clock = _VirtualClock()

    async def go() -> list[float]:
        times: list[float] = []

        async def poll() -> None:
            await pacer.turn(clock)
            times.append(clock.now)

        await asyncio.gather(*(poll() for _ in range(20)))
        return times

    times = sorted(asyncio.run(go()))
    assert len(times) == 20
    assert times[:4] == [0.0] * 4  # polls of tasks sent together are not held back...
    for i in range(len(times)):  # ...but no one-second window ever holds more than four
        assert sum(1 for t in times if times[i] <= t < times[i] + 1.0 - 1e-9) <= 4
    assert times[-1] == pytest.approx(4.0)


def test_polls_start_about_a_second_after_submit_and_then_grow() -> None:
    polls = 0

    def answer(req: httpx.Request) -> httpx.Response:
        nonlocal polls
        if req.method == "POST":
            data = {"id": "t1", "status": "created", "outputs": []}
        else:
            polls += 1
            status = "processing" if polls < 15 else "failed"
            data = {"id": "t1", "status": status, "outputs": [], "error": "x"}
        return httpx.Response(200, json={"code": 200, "message": "success", "data": data})

    clock = _VirtualClock()
    backend = WaveSpeedBackend(api_key=TEST_KEY, base_url="http://wavespeed.test", clock=clock,
                               transport=httpx.MockTransport(answer))
    with pytest.raises(RemoteTaskError):
        run(backend.generate(request()), backend)
    waits = [s for s in clock.sleeps if s > 0.0]
    assert waits[:2] == pytest.approx([1.0, 0.5])
    assert all(b > a for a, b in itertools.pairwise(waits[1:5]))  # growing...
    assert max(waits) <= 3.0 and waits[-1] == pytest.approx(3.0)  # ...up to a cap of a few seconds


# -- money -------------------------------------------------------------------------------


@pytest.mark.slow  # a 125 s episode scored through the CLI with a fallback, about 8 s
def test_failed_task_is_reported_refunded_and_the_json_cost_counts_completed_tasks_only(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoscore.cli import main

    clip = make_media(tmp_path / "talk.flac", video=None, audio="silence", seconds=125)
    emulator.faults.update(fail_tasks=1)
    argv = ["score", str(clip), "--json", "--no-cache", "--fallback", "procedural",
            "--api-key", TEST_KEY, "--api-base", emulator.base_url, "--backend", "wavespeed"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    result = json.loads(out)
    assert emulator.stats["accepted"] == 2  # two chunks for 125 s; one of them failed
    assert result["fallback_used"] is True
    assert result["cost"] == pytest.approx(0.0217)  # the completed one; the failed one was refunded
    assert any("not charged" in w and "$0.0217" in w for w in result["warnings"])


class _FullDiskCache(AudioCache):
    """A cache whose disk fills up just as paid audio arrives (ENOSPC on every write)."""

    @staticmethod
    def _write(path: Path, head: bytes, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_cache_that_fails_after_payment_loses_no_audio(emulator: Emulator, tmp_path: Path) -> None:
    chunks = short_chunks(2)
    store = ChunkStore(tmp_path / "store")
    warnings: list[str] = []
    stats = generate_chunks(chunks, make_client(emulator), _FullDiskCache(tmp_path / "cache"), store,
                            SETTINGS, warn=warnings.append)
    assert emulator.stats["accepted"] == 2 and stats.requests == 2
    for chunk in chunks:
        assert store.load(chunk).duration == pytest.approx(2.0)
    assert len(warnings) == 2 and all("No space left on device" in w and "kept" in w for w in warnings)
    assert stats.cost == pytest.approx(2 * 0.0217)


def test_identical_chunks_of_concurrent_jobs_are_paid_once(emulator: Emulator, tmp_path: Path) -> None:
    emulator.latency = 0.8
    a = make_media(tmp_path / "a.mp4", seconds=3)
    b = tmp_path / "b.mp4"
    shutil.copyfile(a, b)
    result = run_batch([a, b], tmp_path / "out", jobs=2, backend="wavespeed", api_key=TEST_KEY,
                       api_base=emulator.base_url, cache_dir=tmp_path / "cache")
    assert [o.status for o in result.outcomes] == ["ok", "ok"], [o.message for o in result.outcomes]
    assert emulator.stats["accepted"] == 1
    assert sorted(o.details["cost"] for o in result.outcomes) == [0.0, 0.0217]
    assert sorted(o.details["cache_hits"] for o in result.outcomes) == [0, 1]


def test_identical_chunks_of_two_processes_are_paid_once(emulator: Emulator, tmp_path: Path) -> None:
    """Two separate ``autoscore score`` processes at once share the chunk through the claim file."""
    emulator.latency = 1.5
    clip = make_media(tmp_path / "a.mp4", seconds=3)
    env = {**os.environ, "WAVESPEED_API_KEY": TEST_KEY, "AUTOSCORE_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen([sys.executable, "-m", "autoscore.cli", "-q", "score", str(clip), "-o",
                          str(tmp_path / f"out{i}.mp4"), "--api-base", emulator.base_url, "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.decode() for _, e in outs]
    costs = sorted(json.loads(o)["cost"] for o, _ in outs)
    assert emulator.stats["accepted"] == 1 and costs == [0.0, 0.0217]


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "cache")
    key = "ab" * 32
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim_path = cache.path_for(key).with_suffix(".claim")
    claim_path.parent.mkdir(parents=True)
    import platform

    claim_path.write_text(json.dumps({"pid": dead.pid, "host": platform.node(), "time": 0}))
    claim = cache.claim(key)
    assert claim is not None and claim.path == claim_path
    assert cache.claim(key) is None  # now held by this live process
    claim.release()
    assert not claim_path.exists()


# -- uploads, downloads, sync mode ---------------------------------------------------------


def _continuation(seconds: float = 2.0) -> ContinuationRequest:
    t = np.arange(int(seconds * 44100)) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return ContinuationRequest(source=Audio(np.stack([tone, tone], axis=1), 44100),
                               prompt="calm piano, 80 BPM", extend_after=2, output_format="flac")


def test_outpaint_uses_the_current_upload_route_when_it_is_the_only_one(own_emulator: Emulator) -> None:
    own_emulator.legacy_upload = False
    backend = make_client(own_emulator)
    audio = run(backend.outpaint(_continuation()), backend)
    assert audio.duration == pytest.approx(4.0, abs=0.01)
    assert own_emulator.stats["upload_puts"] == 1


def test_an_old_deployment_without_the_current_route_falls_back_to_multipart(own_emulator: Emulator) -> None:
    own_emulator.current_upload = False
    backend = make_client(own_emulator)
    assert run(backend.outpaint(_continuation()), backend).duration == pytest.approx(4.0, abs=0.01)
    assert own_emulator.stats["upload_puts"] == 0 and own_emulator.stats["uploads"] == 2


def test_a_signed_url_that_answers_403_once_gets_a_fresh_ticket(own_emulator: Emulator) -> None:
    own_emulator.faults.update(upload_put_403=1)
    backend = make_client(own_emulator)
    assert run(backend.outpaint(_continuation()), backend).duration == pytest.approx(4.0, abs=0.01)
    assert own_emulator.stats["upload_puts"] == 2


def test_a_signed_url_that_keeps_answering_403_is_one_clear_uncharged_error(own_emulator: Emulator) -> None:
    own_emulator.faults.update(upload_put_403=10)
    backend = make_client(own_emulator)
    with pytest.raises(BackendError, match=r"refused the upload.*HTTP 403.*Nothing was charged") as err:
        run(backend.outpaint(_continuation()), backend)
    assert err.value.charged is False
    assert own_emulator.stats["submits"] == 0


def test_a_download_that_stops_halfway_is_resumed_with_range(emulator: Emulator) -> None:
    seen: list[str | None] = []

    class Spy(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, req: httpx.Request) -> httpx.Response:
            if "/_cdn/" in req.url.path:
                seen.append(req.headers.get("Range"))
            return await super().handle_async_request(req)

    emulator.faults.update(truncate_download=1)
    backend = make_client(emulator, transport=Spy())
    audio = run(backend.generate(request(2)), backend)
    assert audio.duration == pytest.approx(2.0)
    assert len(seen) == 2 and seen[0] is None and seen[1] is not None and seen[1].startswith("bytes=")
    assert int(seen[1][6:].rstrip("-")) > 0
    assert emulator.stats["submits"] == 1


def test_sync_mode_that_times_out_in_the_envelope_goes_on_polling(own_emulator: Emulator) -> None:
    own_emulator.latency = 0.6
    own_emulator.sync_timeout, own_emulator.sync_timeout_style = 0.1, "envelope"
    backend = make_client(own_emulator, sync_mode=True)
    assert run(backend.generate(request()), backend).duration == pytest.approx(1.0)
    assert own_emulator.stats["accepted"] == 1 and own_emulator.stats["polls"] >= 1


def test_sync_mode_that_hits_the_gateway_limit_is_never_resent(own_emulator: Emulator) -> None:
    own_emulator.latency = 0.6
    own_emulator.sync_timeout = 0.1
    backend = make_client(own_emulator, sync_mode=True)
    with pytest.raises(TransportError, match="not resent") as err:
        run(backend.generate(request()), backend)
    assert err.value.charged is None and err.value.status == 504
    assert own_emulator.stats["submits"] == 1 and backend.unsettled == 1


# -- the key -----------------------------------------------------------------------------


def test_a_key_with_surrounding_whitespace_is_sent_trimmed_and_never_shown(
    own_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoscore.cli import main

    clip = make_media(tmp_path / "a.flac", video=None, audio="silence", seconds=2)
    with pytest.raises(SystemExit) as exc:
        main(["score", str(clip), "--no-cache", "--backend", "wavespeed", "--api-key", f"  {TEST_KEY}\n",
              "--api-base", own_emulator.base_url])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert own_emulator.stats["accepted"] == 1 and own_emulator.stats["unauthorized"] == 0
    assert TEST_KEY not in out + err


def test_the_signed_put_carries_only_the_signed_headers(own_emulator: Emulator) -> None:
    puts: list[httpx.Headers] = []

    class Spy(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, req: httpx.Request) -> httpx.Response:
            if req.method == "PUT":
                puts.append(req.headers)
            return await super().handle_async_request(req)

    own_emulator.legacy_upload = False
    backend = make_client(own_emulator, transport=Spy())
    run(backend.outpaint(_continuation()), backend)
    (headers,) = puts
    assert {name.lower() for name in headers} <= {"host", "content-length", "content-type"}
    assert headers["content-type"] == "audio/flac"


def test_a_429_inside_a_200_envelope_is_a_refusal_not_a_failure() -> None:
    answers = iter([
        httpx.Response(200, json={"code": 429, "message": "too many requests", "data": None},
                       headers={"Retry-After": "2"}),
        httpx.Response(200, json={"code": 200, "message": "success",
                                  "data": {"id": "t9", "status": "failed", "error": "x", "outputs": []}}),
    ])
    clock = _VirtualClock()
    backend = WaveSpeedBackend(api_key=TEST_KEY, base_url="http://wavespeed.test", clock=clock,
                               transport=httpx.MockTransport(lambda req: next(answers)))
    with pytest.raises(RemoteTaskError, match="t9"):  # the resent submission went through
        run(backend.generate(request()), backend)
    assert clock.sleeps[0] == pytest.approx(2.0)


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3"])
def test_downloads_decode_the_same_whichever_reader_takes_them(tmp_path: Path, fmt: str) -> None:
    from autoscore.media.ffmpeg import decode_audio, encode_audio
    from autoscore.music.backends.wavespeed.collect import decode_file

    source = _continuation(1.5).source
    path = tmp_path / f"x.{fmt}"
    encode_audio(source, path, fmt)
    ours, ffmpegs = decode_file(path=path, fmt=fmt), decode_audio(path, 44100, 2)
    assert ours.rate == 44100 and ours.samples.shape == ffmpegs.samples.shape
    assert np.abs(ours.samples - ffmpegs.samples).max() < 1e-6
