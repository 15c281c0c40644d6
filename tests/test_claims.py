"""Claims that remember the provider's task, and caches on fsspec URLs.

A chunk paid for but never downloaded (its job timed out, or its process died) must be
collected by the next job that needs it, never bought again; the emulator counts the
tasks it accepted, so "bought again" is something these tests can see.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from emulator_fixtures import TEST_KEY, make_client

from autoscore.emulator import Emulator
from autoscore.errors import BackendError, CacheError
from autoscore.models import Audio, Chunk
from autoscore.music.backends.base import GenerationRequest
from autoscore.music.backends.wavespeed import Timeouts
from autoscore.music.cache import AudioCache
from autoscore.music.claims import FileClaims, FileTaskNotes, ProcessClaims
from autoscore.music.generate import ChunkStore, generate_chunks
from autoscore.text.presets import GenerationSettings

SETTINGS = GenerationSettings(format="flac")
BASE = GenerationRequest(prompt="calm piano", duration=2, output_format="flac")


def noise(seconds: float = 0.5) -> Audio:
    rng = np.random.default_rng(1)
    return Audio(rng.standard_normal((int(44100 * seconds), 2)).astype(np.float32) * 0.1, 44100)


def one_chunk() -> list[Chunk]:
    return [Chunk(0, 0.0, 2, "calm piano, 80 BPM", "vocals", 0, 1.0, 1.0, True, True, seed=0)]


# -- the task record ---------------------------------------------------------------------


def test_a_task_recorded_then_abandoned_is_inherited_and_dropped_once_done(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "c")
    key = cache.key_for("w", "m", BASE)
    first = cache.claim(key)
    assert first is not None and first.inherited is None
    first.record("task-1")
    assert cache.claim(key) is None  # held
    first.release(done=False)  # the job gave up while the task ran
    second = cache.claim(key)
    assert second is not None and second.inherited == "task-1"
    second.release(done=True)
    third = cache.claim(key)
    assert third is not None and third.inherited is None
    third.release()


def test_a_claim_of_a_killed_process_hands_its_task_to_the_next(tmp_path: Path) -> None:
    """A real process claims, records a task and is SIGKILLed: its claim is taken over at once
    (same host, dead pid) and the task id comes with it."""
    root = tmp_path / "c"
    key = AudioCache(root).key_for("w", "m", BASE)
    code = (
        "import os, signal, sys\n"
        "from autoscore.music.cache import AudioCache\n"
        f"c = AudioCache({str(root)!r}).claim({key!r})\n"
        "c.record('task-of-the-dead')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9
    claim_file = AudioCache(root).path_for(key).with_suffix(".claim")
    assert json.loads(claim_file.read_text())["host"] == platform.node()
    claim = AudioCache(root).claim(key)
    assert claim is not None and claim.inherited == "task-of-the-dead"
    claim.release()


def test_process_claims_are_exclusive_per_cache_and_keep_tasks(tmp_path: Path) -> None:
    notes = FileTaskNotes(lambda key: tmp_path / f"{key}.f32")
    a, b = ProcessClaims(f"one-{uuid.uuid4()}", notes), ProcessClaims(f"two-{uuid.uuid4()}")
    held = a.claim("k")
    assert held is not None and a.claim("k") is None
    other = b.claim("k")
    assert other is not None  # another cache's key
    held.record("t")
    held.release(done=False)
    again = a.claim("k")
    assert again is not None and again.inherited == "t"
    again.release()
    other.release()


def test_file_claims_need_only_a_path_function(tmp_path: Path) -> None:
    board = FileClaims(lambda key: tmp_path / f"{key}.f32")
    claim = board.claim("abc")
    assert claim is not None and (tmp_path / "abc.claim").is_file()
    claim.record("t9")
    assert json.loads((tmp_path / "abc.task").read_text())["task_id"] == "t9"
    claim.release(done=True)
    assert sorted(os.listdir(tmp_path)) == []


def test_a_note_that_cannot_be_written_does_not_fail_the_paid_task(tmp_path: Path) -> None:
    class Broken(FileTaskNotes):
        def write(self, key: str, task_id: str) -> None:
            raise OSError(28, "No space left on device")

    def entry(key: str) -> Path:
        return tmp_path / f"{key}.f32"

    claim = FileClaims(entry, Broken(entry)).claim("k")
    assert claim is not None
    claim.record("t1")  # logged, not raised
    assert claim.noted == "t1"
    claim.release(done=False)


# -- resuming paid tasks through the emulator -------------------------------------------


def test_a_job_that_timed_out_while_its_task_ran_is_collected_by_the_rerun(tmp_path: Path) -> None:
    """The first job gives up polling (its deadline passes while the provider still works);
    the rerun polls the same task and downloads it: one task accepted, one charged."""
    with Emulator(latency=2.5, seed=5, api_key=TEST_KEY) as emu:
        cache = AudioCache(tmp_path / "cache")
        first = make_client(emu, timeouts=Timeouts(connect=2.0, submit=10.0, poll=5.0, download=10.0,
                                                   upload=10.0, job=60.0))
        with pytest.raises(BackendError) as err:
            generate_chunks(one_chunk(), first, cache, ChunkStore(tmp_path / "s1"), SETTINGS, timeout=1.0)
        assert err.value.charged is None  # the task may still complete, and be charged
        assert emu.stats["accepted"] == 1
        task_files = list((tmp_path / "cache").rglob("*.task"))
        assert len(task_files) == 1
        second = make_client(emu)
        warnings: list[str] = []
        stats = generate_chunks(one_chunk(), second, cache, ChunkStore(tmp_path / "s2"), SETTINGS,
                                timeout=30.0, warn=warnings.append)
        assert (stats.resumed, stats.requests, warnings) == (1, 0, [])
        assert emu.stats["accepted"] == 1  # collected, not bought again
        assert stats.cost == pytest.approx(0.0217)
        assert ChunkStore(tmp_path / "s2").load(one_chunk()[0]).duration == pytest.approx(2.0, abs=0.05)
        assert not list((tmp_path / "cache").rglob("*.task"))  # the record goes once the audio is cached


def test_a_recorded_task_the_provider_no_longer_knows_is_asked_for_again(tmp_path: Path) -> None:
    with Emulator(latency=0.1, seed=6, api_key=TEST_KEY) as emu:
        cache = AudioCache(tmp_path / "cache")
        backend = make_client(emu)
        request = GenerationRequest(prompt="calm piano, 80 BPM", duration=2, negative_prompt="vocals",
                                    output_format="flac", seed=0, opens=True, ends=True)
        key = cache.key_for(backend.name, backend.model, request)
        claim = cache.claim(key)
        assert claim is not None
        claim.record("no-such-task")
        claim.release(done=False)
        warnings: list[str] = []
        stats = generate_chunks(one_chunk(), backend, cache, ChunkStore(tmp_path / "s"), SETTINGS,
                                timeout=30.0, warn=warnings.append)
        assert (stats.resumed, stats.requests) == (0, 1)
        assert len(warnings) == 1 and "no-such-task" in warnings[0] and "again" in warnings[0]
        assert emu.stats["accepted"] == 1


# -- caches on fsspec URLs ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_a_url_cache_round_trips_checks_and_deletes_damage(scheme: str, tmp_path: Path) -> None:
    import fsspec

    url = f"memory://autoscore-{uuid.uuid4().hex}" if scheme == "memory" else f"file://{tmp_path}/c"
    cache = AudioCache(url)
    key = cache.key_for("w", "m", BASE)
    assert cache.get(key) is None and key not in cache
    audio = noise()
    cache.put(key, audio)
    assert key in cache
    back = cache.get(key)
    assert back is not None and np.array_equal(back.samples, audio.samples)
    fs, base = fsspec.core.url_to_fs(url)
    names = [p.rsplit("/", 1)[-1] for p in fs.find(base)]
    assert names == [f"{key}.f32"]  # no temporary names left, no probe
    entry = next(p for p in fs.find(base))
    blob = bytearray(fs.cat_file(entry))
    blob[-5] ^= 0x10
    fs.pipe_file(entry, bytes(blob))
    assert cache.get(key) is None  # fails its checksum
    assert not fs.exists(entry)


def test_a_file_url_is_the_local_folder_with_claim_files(tmp_path: Path) -> None:
    cache = AudioCache(f"file://{tmp_path}/c")
    assert cache.url is None and cache.root == tmp_path / "c"
    assert isinstance(cache.claims, FileClaims)


def test_an_unknown_protocol_is_a_cache_error_naming_what_to_install() -> None:
    with pytest.raises(CacheError, match=r"cannot be opened.*install"):
        AudioCache("nosuchproto://bucket/prefix")


def test_a_url_cache_serves_a_whole_score(tmp_path: Path) -> None:
    """generate_chunks on a memory:// cache: the second job is all cache hits."""
    from autoscore.music.backends.procedural import ProceduralBackend

    url = f"memory://autoscore-{uuid.uuid4().hex}"
    chunks = one_chunk()
    first = generate_chunks(chunks, ProceduralBackend(), AudioCache(url), ChunkStore(tmp_path / "a"),
                            SETTINGS)
    second = generate_chunks(chunks, ProceduralBackend(), AudioCache(url), ChunkStore(tmp_path / "b"),
                             SETTINGS)
    assert (first.requests, second.requests, second.cache_hits) == (1, 0, 1)


# -- inputs and outputs behind URLs ------------------------------------------------------


def test_a_batch_reads_and_writes_fsspec_urls_through_local_copies(tmp_path: Path) -> None:
    """Inputs and notes in memory://, outputs to memory://: staged, scored, uploaded whole."""
    import fsspec
    from conftest import make_media

    from autoscore.batch import run_batch
    from autoscore.media.probe import probe

    fs = fsspec.filesystem("memory")
    root = f"/autoscore-{uuid.uuid4().hex}"
    clip = make_media(tmp_path / "clip.mp4", seconds=3.0)
    fs.put_file(str(clip), f"{root}/in/clip.mp4")
    fs.pipe_file(f"{root}/in/clip.notes.txt", b"0:00 calm piano opening\n")
    fs.pipe_file(f"{root}/in/readme.txt", b"not media")
    result = run_batch([f"memory://{root}/in"], f"memory://{root}/out", backend="procedural", cuts="off")
    [outcome] = result.outcomes
    assert outcome.status == "ok", outcome.message
    assert str(outcome.output) == f"memory://{root}/out/clip.scored.mp4"
    assert outcome.details["notes"].endswith("clip.notes.txt")  # found beside the remote input
    assert fs.ls(f"{root}/out", detail=False) == [f"{root}/out/clip.scored.mp4"]  # no temporary names
    fs.get_file(f"{root}/out/clip.scored.mp4", str(tmp_path / "back.mp4"))
    assert probe(tmp_path / "back.mp4").duration == pytest.approx(3.0, abs=0.1)
    named_twice = [f"memory://{root}/in", f"memory://{root.lstrip('/')}/in/clip.mp4"]
    again = run_batch(named_twice, f"memory://{root}/out", backend="procedural", cuts="off")
    assert len(again.outcomes) == 1 and again.count("skipped") == 1  # one file, however it is named
    missing = run_batch([f"memory://{root}/nothing-here.mp4"], tmp_path / "out", backend="procedural")
    assert missing.count("failed") == 1 and "check the URL" in missing.outcomes[0].message


def test_a_url_with_no_driver_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    from autoscore.batch import run_batch
    from autoscore.errors import OptionError

    with pytest.raises(OptionError, match="nosuchproto"):
        run_batch([str(tmp_path)], "nosuchproto://bucket/out", backend="procedural")


def test_a_url_cache_keeps_task_notes_beside_its_entries() -> None:
    import fsspec

    url = f"memory://autoscore-{uuid.uuid4().hex}"
    cache = AudioCache(url)
    key = cache.key_for("w", "m", BASE)
    claim = cache.claim(key)
    assert claim is not None
    claim.record("task-7")
    claim.release(done=False)
    fs, base = fsspec.core.url_to_fs(url)
    assert [p.rsplit("/", 1)[-1] for p in fs.find(base)] == [f"{key}.task"]
    again = AudioCache(url).claim(key)
    assert again is not None and again.inherited == "task-7"
    again.release(done=True)
    assert fs.find(base) == []


def test_a_task_that_could_not_be_collected_this_time_keeps_its_note(tmp_path: Path) -> None:
    """The resume of an inherited task fails without a charge (no room under the limit in
    time): the task is still paid for at the provider, so its note must stay."""
    from autoscore.music.backends.base import Backend, ContinuationRequest

    class NoRoom(Backend):
        name, model = "stub", "stub-model"

        async def generate(self, request: GenerationRequest) -> Audio:
            raise AssertionError("must not pay again")

        async def resume(self, task_id: str,
                         request: GenerationRequest | ContinuationRequest) -> Audio | None:
            raise BackendError("no room under the account's limit in time", charged=False)

    cache = AudioCache(tmp_path / "cache")
    backend = NoRoom()
    from autoscore.music.generate import request_for

    key = cache.key_for(backend.name, backend.model, request_for(one_chunk()[0], SETTINGS))
    claim = cache.claim(key)
    assert claim is not None
    claim.record("paid-task")
    claim.release(done=False)
    with pytest.raises(BackendError, match="no room"):
        generate_chunks(one_chunk(), backend, cache, ChunkStore(tmp_path / "s"), SETTINGS)
    again = cache.claim(key)
    assert again is not None and again.inherited == "paid-task"
    again.release(done=False)
