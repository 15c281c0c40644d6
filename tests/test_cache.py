"""The generation cache: keys that change exactly when the music could, entries that survive
only intact, and a second run against the emulator that sends no request at all."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from emulator_fixtures import make_client, run

from autoscore.emulator import Emulator
from autoscore.errors import CacheError
from autoscore.models import Audio
from autoscore.music.backends.base import ContinuationRequest, GenerationRequest
from autoscore.music.backends.procedural import ProceduralBackend
from autoscore.music.cache import AudioCache, CachingBackend

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


# -- the wrapper -------------------------------------------------------------------------


def test_second_run_is_served_from_cache_with_zero_requests(emulator: Emulator, cache_dir: Path) -> None:
    req = GenerationRequest("calm piano", 2, output_format="mp3")
    first = CachingBackend(make_client(emulator), AudioCache(cache_dir))
    audio = run(first.generate(req), first)
    assert (first.hits, first.misses) == (0, 1)
    assert emulator.stats["submits"] == 1

    emulator.reset()
    second = CachingBackend(make_client(emulator), AudioCache(cache_dir))
    again = run(second.generate(req), second)
    assert (second.hits, second.misses) == (1, 0)
    assert emulator.stats["requests"] == 0
    assert np.array_equal(again.samples, audio.samples)


def test_identical_requests_in_flight_together_pay_once(emulator: Emulator, cache_dir: Path) -> None:
    backend = CachingBackend(make_client(emulator), AudioCache(cache_dir))
    req = GenerationRequest("calm piano", 1)

    async def both() -> list[Audio]:
        return await asyncio.gather(backend.generate(req), backend.generate(req))

    a, b = run(both(), backend)
    assert np.array_equal(a.samples, b.samples)
    assert emulator.stats["submits"] == 1
    assert (backend.hits, backend.misses) == (1, 1)


def test_outpainting_is_cached_too(emulator: Emulator, cache_dir: Path) -> None:
    cont = ContinuationRequest(source=noise(44100), prompt="calm piano", extend_after=1)
    first = CachingBackend(make_client(emulator), AudioCache(cache_dir))
    run(first.outpaint(cont), first)
    emulator.reset()
    second = CachingBackend(make_client(emulator), AudioCache(cache_dir))
    assert run(second.outpaint(cont), second).frames == 2 * 44100
    assert emulator.stats["requests"] == 0


def test_wrapper_takes_the_inner_backends_identity(cache_dir: Path) -> None:
    inner = ProceduralBackend(max_concurrency=3)
    wrapped = CachingBackend(inner, AudioCache(cache_dir))
    assert (wrapped.name, wrapped.model, wrapped.max_concurrency) == ("procedural", inner.model, 3)
    audio = wrapped.generate_sync(GenerationRequest("calm piano", 1))
    assert wrapped.generate_sync(GenerationRequest("calm piano", 1)).frames == audio.frames
    assert (wrapped.hits, wrapped.misses) == (1, 1)


def test_unwritable_cache_still_returns_the_music(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrapped = CachingBackend(ProceduralBackend(), AudioCache(cache_dir))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    assert wrapped.generate_sync(GenerationRequest("calm piano", 1)).frames == 44100
    assert "No space left" in caplog.text
