"""The generation cache: keys that change exactly when the music could, entries that survive
only intact, and a second job against the emulator that sends no request at all."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from emulator_fixtures import make_client

from autoscore.emulator import Emulator
from autoscore.errors import CacheError
from autoscore.models import Audio, Chunk
from autoscore.music.backends.base import ContinuationRequest, GenerationRequest
from autoscore.music.cache import AudioCache
from autoscore.music.generate import ChunkStore, GenerationStats, generate_chunks
from autoscore.text.presets import GenerationSettings

BASE = GenerationRequest("calm piano", 2, "vocals", steps=8, guidance=1.0, output_format="wav", seed=0)


def noise(frames: int = 4410, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(rng.uniform(-0.5, 0.5, (frames, 2)).astype(np.float32), 44100)


# -- keys --------------------------------------------------------------------------------


def test_same_request_same_key() -> None:
    key = AudioCache.key_for("wavespeed", "m", BASE)
    assert key == AudioCache.key_for("wavespeed", "m", dataclasses.replace(BASE))
    assert len(key) == 64
    assert key == AudioCache.key_for("wavespeed", "m", dataclasses.replace(BASE, guidance=1))


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "calm piano!"},
        {"duration": 3},
        {"negative_prompt": ""},
        {"steps": 9},
        {"guidance": 1.5},
        {"output_format": "flac"},
        {"seed": 1},
    ],
)
def test_every_request_field_changes_the_key(change: dict[str, object]) -> None:
    changed = dataclasses.replace(BASE, **change)
    assert AudioCache.key_for("w", "m", BASE) != AudioCache.key_for("w", "m", changed)


def test_backend_and_model_change_the_key() -> None:
    keys = {AudioCache.key_for(b, m, BASE) for b, m in [("w", "m"), ("p", "m"), ("w", "m2")]}
    assert len(keys) == 3


def test_continuation_key_follows_the_source_samples() -> None:
    source = noise()
    req = ContinuationRequest(source=source, prompt="calm piano", extend_after=5)
    same = dataclasses.replace(req, source=Audio(source.samples.copy(), 44100))
    changed = source.samples.copy()
    changed[100, 1] += 1e-6
    other = ContinuationRequest(source=Audio(changed, 44100), prompt="calm piano", extend_after=5)
    longer = dataclasses.replace(req, extend_after=6)
    key = AudioCache.key_for("w", "m", req)
    assert key == AudioCache.key_for("w", "m", same)
    assert key != AudioCache.key_for("w", "m", other)
    assert key != AudioCache.key_for("w", "m", longer)
    assert key != AudioCache.key_for("w", "m", GenerationRequest("calm piano", 5))


# -- storage -----------------------------------------------------------------------------


def test_round_trip_is_exact_and_leaves_no_temp_files(cache_dir: Path) -> None:
    cache = AudioCache(cache_dir)
    key = cache.key_for("w", "m", BASE)
    assert cache.get(key) is None
    audio = noise()
    cache.put(key, audio)
    back = cache.get(key)
    assert back is not None
    assert back.rate == 44100
    assert np.array_equal(back.samples, audio.samples)
    assert [p.name for p in cache.path_for(key).parent.iterdir()] == [f"{key}.f32"]
    assert cache.path_for(key).is_relative_to(cache_dir)


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "empty"])
def test_damaged_entry_is_a_miss_and_is_deleted(cache_dir: Path, damage: str) -> None:
    cache = AudioCache(cache_dir)
    key = cache.key_for("w", "m", BASE)
    cache.put(key, noise())
    path = cache.path_for(key)
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[-10] ^= 0x40
    elif damage == "truncate":
        del blob[-100:]
    elif damage == "header":
        blob[20:30] = b"xxxxxxxxxx"
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    assert cache.get(key) is None
    assert not path.exists()


def test_failed_write_leaves_no_entry_and_no_temp_file(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = AudioCache(cache_dir)
    key = cache.key_for("w", "m", BASE)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CacheError, match="No space left"):
        cache.put(key, noise())
    monkeypatch.undo()
    assert cache.get(key) is None
    assert list(cache.path_for(key).parent.iterdir()) == []


def test_disabled_cache_never_reads_or_writes(cache_dir: Path) -> None:
    cache = AudioCache(cache_dir, enabled=False)
    key = cache.key_for("w", "m", BASE)
    cache.put(key, noise())
    assert cache.get(key) is None
    assert not cache_dir.exists()


def test_root_from_argument_then_env_then_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSCORE_CACHE_DIR", str(tmp_path / "env"))
    assert AudioCache(enabled=False).root == tmp_path / "env"
    assert AudioCache(tmp_path / "arg", enabled=False).root == tmp_path / "arg"
    monkeypatch.delenv("AUTOSCORE_CACHE_DIR")
    assert AudioCache(enabled=False).root == Path(platformdirs.user_cache_dir("autoscore"))


def test_unusable_root_is_a_cache_error_up_front(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="--no-cache"):
        AudioCache(blocker / "cache")


def test_path_for_rejects_anything_but_a_key(cache_dir: Path) -> None:
    with pytest.raises(CacheError):
        AudioCache(cache_dir).path_for("../../etc/passwd")


# -- jobs: generate_chunks, the path every score takes --------------------------------


def _job(emulator: Emulator, cache_dir: Path, store: Path, chunks: list[Chunk],
         join: str = "crossfade") -> tuple[GenerationStats, ChunkStore]:
    """Generate ``chunks`` against the emulator through the cache; the stats and the store."""
    kept = ChunkStore(store)
    stats = generate_chunks(chunks, make_client(emulator), AudioCache(cache_dir), kept,
                            GenerationSettings(format="mp3"), join=join)
    return stats, kept


def test_second_run_is_served_from_cache_with_zero_requests(emulator: Emulator, cache_dir: Path,
                                                            tmp_path: Path) -> None:
    chunks = [Chunk(0, 0.0, 2, "calm piano", "", 0, is_first=True, is_last=True)]
    first, first_store = _job(emulator, cache_dir, tmp_path / "a", chunks)
    assert (first.requests, first.cache_hits) == (1, 0)
    assert emulator.stats["submits"] == 1

    emulator.reset()
    again, again_store = _job(emulator, cache_dir, tmp_path / "b", chunks)
    assert (again.requests, again.cache_hits) == (0, 1)
    assert emulator.stats["requests"] == 0
    np.testing.assert_array_equal(again_store.load(chunks[0]).samples, first_store.load(chunks[0]).samples)


def test_identical_requests_in_flight_together_pay_once(emulator: Emulator, cache_dir: Path,
                                                        tmp_path: Path) -> None:
    """Two chunks of one job that ask for the very same music: one request, one cache hit."""
    twins = [Chunk(0, 0.0, 1, "calm piano", "", 0), Chunk(1, 5.0, 1, "calm piano", "", 0)]
    stats, store = _job(emulator, cache_dir, tmp_path / "s", twins)
    assert (stats.requests, stats.cache_hits) == (1, 1)
    assert emulator.stats["submits"] == 1
    np.testing.assert_array_equal(store.load(twins[0]).samples, store.load(twins[1]).samples)


def test_outpainting_is_cached_too(emulator: Emulator, cache_dir: Path, tmp_path: Path) -> None:
    chunks = [Chunk(0, 0.0, 2, "calm piano", "", 0, is_first=True),
              Chunk(1, 2.0, 1, "calm piano", "", 0, is_last=True, seed=1)]
    first, first_store = _job(emulator, cache_dir, tmp_path / "a", chunks, join="outpaint")
    assert (first.requests, first.continuations, emulator.stats["outpaints"]) == (2, 1, 1)
    emulator.reset()
    again, again_store = _job(emulator, cache_dir, tmp_path / "b", chunks, join="outpaint")
    assert (again.requests, again.cache_hits) == (0, 2)
    assert emulator.stats["requests"] == 0
    extension = again_store.load(chunks[1])
    assert extension.frames == extension.rate  # the cached continuation, less its 2 s source: 1 s
    np.testing.assert_array_equal(extension.samples, first_store.load(chunks[1]).samples)
