"""Whole jobs against the emulator over loopback: concurrency, resume, cost, fallback, outpaint."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Media, make_media, run_cli
from emulator_fixtures import TEST_KEY, make_client

from autoscore.emulator import Emulator
from autoscore.errors import BackendError
from autoscore.media.probe import probe
from autoscore.models import Chunk
from autoscore.music.cache import AudioCache
from autoscore.music.generate import ChunkStore, generate_chunks
from autoscore.text.presets import GenerationSettings


def six_chunks() -> list[Chunk]:
    return [
        Chunk(i, i * 2.0, 3, f"warm piano, 90 BPM, part {i}", "vocals", 0, 1.0, 1.0, i == 0, i == 5, seed=i)
        for i in range(6)
    ]




def test_all_chunks_are_in_flight_at_once(emulator: Emulator, tmp_path: Path) -> None:
    emulator.latency = 0.5
    backend = make_client(emulator, max_concurrency=6)
    stats = generate_chunks(six_chunks(), backend, AudioCache(tmp_path / "c"), ChunkStore(tmp_path / "s"),
                            GenerationSettings(format="flac"))
    assert stats.requests == 6
    assert emulator.stats["submits"] == 6
    assert emulator.stats["peak_active"] == 6


class _Watched:
    """Counts disk operations in flight at once across a cache and a chunk store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def around(self, work):  # type: ignore[no-untyped-def]
        def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                time.sleep(0.02)  # long enough for another thread to arrive if it could
                return work(*args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1
        return wrapped


def test_chunks_reach_the_disk_one_at_a_time(emulator: Emulator, tmp_path: Path) -> None:
    """Downloads overlap, disk work does not: otherwise a long job's cached chunks all sit in memory."""
    watch = _Watched()

    class Cache(AudioCache):
        get = watch.around(AudioCache.get)
        put = watch.around(AudioCache.put)

    class Store(ChunkStore):
        save = watch.around(ChunkStore.save)

    emulator.latency = 0.3
    cache = Cache(tmp_path / "cache")
    settings = GenerationSettings()
    backend = make_client(emulator, max_concurrency=6)
    first = generate_chunks(six_chunks(), backend, cache, Store(tmp_path / "a"), settings)
    again = generate_chunks(six_chunks(), make_client(emulator), cache, Store(tmp_path / "b"), settings)
    assert (first.requests, again.cache_hits) == (6, 6)
    assert emulator.stats["peak_active"] == 6
    assert watch.peak == 1
    last = six_chunks()[5]
    saved = ChunkStore(tmp_path / "b").load(last)  # the second job's copy came from the cache
    assert (saved.rate, saved.frames) == (44100, last.duration * 44100)
    np.testing.assert_array_equal(saved.samples, ChunkStore(tmp_path / "a").load(last).samples)


def test_a_failed_chunk_is_the_only_one_asked_for_again(emulator: Emulator, tmp_path: Path) -> None:
    cache = AudioCache(tmp_path / "cache")
    emulator.faults.update(fail_submit_number=4, fail_submit_status=503)
    with pytest.raises(BackendError):
        generate_chunks(six_chunks(), make_client(emulator, max_concurrency=1), cache,
                        ChunkStore(tmp_path / "a"), GenerationSettings())
    assert emulator.stats["submits"] == 6  # the other five finished and were cached
    emulator.reset()
    stats = generate_chunks(six_chunks(), make_client(emulator), cache, ChunkStore(tmp_path / "b"),
                            GenerationSettings())
    assert emulator.stats["submits"] == 1
    assert stats.requests == 1 and stats.cache_hits == 5


def _remote(emulator: Emulator) -> list[str]:
    return ["--backend", "wavespeed", "--api-base", emulator.base_url, "--api-key", TEST_KEY]


def test_dry_run_shows_cost_and_sends_nothing(media: Media, emulator: Emulator, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["score", str(media.mp4), "-o", str(tmp_path / "x.mp4"), "--dry-run",
                              *_remote(emulator)], capsys)
    assert code == 0 and "$0.0217" in out
    assert emulator.stats["requests"] == 0 and not list(tmp_path.iterdir())
    code, out, err = run_cli(["score", str(media.mp4), "-o", str(tmp_path / "x.mp4"), "--max-cost", "0.01",
                              *_remote(emulator)], capsys)
    assert code == 2 and "above --max-cost" in err and emulator.stats["requests"] == 0


def test_remote_score_reports_cost_and_never_prints_the_key(
    media: Media, emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    out_file = tmp_path / "remote.mp4"
    code, out, err = run_cli(["-v", "score", str(media.mp4), "-o", str(out_file), "--json",
                              "--no-cache", *_remote(emulator)], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["backend"] == "wavespeed" and result["requests"] == 1
    assert result["cost"] == pytest.approx(0.0217)
    assert emulator.stats["submits"] == 1 and out_file.is_file()
    assert TEST_KEY not in out + err + caplog.text


def test_fallback_completes_offline_and_says_so(media: Media, emulator: Emulator, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    emulator.faults.update(fail_tasks=100, fail_error="GPU worker lost")
    base = ["score", str(media.mp4), "--no-cache", *_remote(emulator)]
    code, _, err = run_cli([*base, "-o", str(tmp_path / "no.mp4")], capsys)
    assert code == 1 and "GPU worker lost" in err and not list(tmp_path.iterdir())
    code, out, err = run_cli([*base, "-o", str(tmp_path / "yes.mp4"), "--fallback", "procedural"], capsys)
    assert code == 0 and (tmp_path / "yes.mp4").is_file()
    assert "Warning:" in err and "procedural composer instead" in err
    assert "Backend: procedural" in out


@pytest.mark.slow  # a 125 s input: two chunks and an outpaint, about 8 s
def test_outpaint_join_continues_the_music(emulator: Emulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    long_input = make_media(tmp_path / "long.flac", video=None, audio="silence", seconds=125)
    out = tmp_path / "long.scored.flac"
    code, stdout, err = run_cli(["score", str(long_input), "-o", str(out), "--join", "outpaint", "--json",
                                 "--no-cache", *_remote(emulator)], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert emulator.stats["submits"] == 2 and emulator.stats["outpaints"] == 1  # music + continuation
    assert emulator.stats["uploads"] == 1
    assert result["cost"] == pytest.approx(0.0217 + 0.0446)
    assert probe(out).duration == pytest.approx(125, abs=0.05)


def test_generate_command_with_the_remote_backend(emulator: Emulator, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "theme.opus"
    code, stdout, err = run_cli(["generate", "warm synth theme, 100 BPM", "-d", "4", "-o", str(out),
                                 *_remote(emulator)], capsys)
    assert code == 0, err
    assert "Backend: wavespeed" in stdout and "$0.0217" in stdout
    assert emulator.stats["submits"] == 1
    info = probe(out)
    assert info.audio is not None and info.audio.codec == "opus"
    assert info.duration == pytest.approx(4, abs=0.05)
    assert TEST_KEY not in stdout + err
