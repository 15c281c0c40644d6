"""One contract, every music backend: the suite each generator must pass unchanged.

The stages above a backend (cache, chunking, joining, the 48 kHz mix) rely only on what
``autoscore.music.backends.base`` promises, so each backend is run through the same tests:
exact length, stereo float32 audio that is finite and not silent, a rate the pipeline can
resample, validation before anything is sent or spent, continuation (or a clean refusal),
an ``aclose`` that is safe to repeat, and the seed range. The WaveSpeed backend talks to the
emulator over loopback HTTP, so "nothing was sent" is read from the emulator's counts.

A new backend joins by adding its name to ``BACKENDS`` and a branch to ``make_backend``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_cli
from emulator_fixtures import make_client, run

from autoscore.emulator import Emulator
from autoscore.errors import OptionError
from autoscore.media.resample import resample
from autoscore.models import MIX_RATE, Audio
from autoscore.music.backends.base import Backend, ContinuationRequest, GenerationRequest
from autoscore.music.backends.procedural import SAMPLE_RATE, ProceduralBackend
from autoscore.music.backends.wavespeed import WaveSpeedBackend
from autoscore.music.backends.wavespeed.collect import OUTPUT_RATE

BACKENDS = ["procedural", "wavespeed"]
NATIVE_RATE = {"procedural": SAMPLE_RATE, "wavespeed": OUTPUT_RATE}
"""The rate each backend says it answers at."""
CAN_CONTINUE = {"procedural", "wavespeed"}
"""Backends with a real ``outpaint``; any other must refuse with OptionError."""
LENGTH_TOLERANCE = 0.005
"""Seconds: base.py promises the requested length "within a few ms"."""
MAX_SEED = 2**31 - 1
PROMPT = "warm piano and soft pads, 90 BPM"


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def make_backend(name: str, request: pytest.FixtureRequest) -> Backend:
    if name == "procedural":
        return ProceduralBackend()
    if name == "wavespeed":
        emulator: Emulator = request.getfixturevalue("emulator")
        emulator.latency = 0.02
        return make_client(emulator)
    raise AssertionError(f"no contract setup for backend {name!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made = make_backend(request.param, request)
    assert made.name == request.param
    yield made
    asyncio.run(made.aclose())


def sent(backend: Backend, request: pytest.FixtureRequest) -> dict[str, int]:
    """What reached the provider so far: the emulator's counts, nothing for a local backend."""
    if isinstance(backend, WaveSpeedBackend):
        emulator: Emulator = request.getfixturevalue("emulator")
        stats = emulator.stats
        return {k: stats[k] for k in ("requests", "submits", "uploads", "downloads")}
    return {"requests": 0, "submits": 0, "uploads": 0, "downloads": 0}


def generate(backend: Backend, req: GenerationRequest) -> Audio:
    return run(backend.generate(req), backend)


def outpaint(backend: Backend, req: ContinuationRequest) -> Audio:
    return run(backend.outpaint(req), backend)


def assert_sound(audio: Audio, seconds: float) -> None:
    """Stereo float32, finite, not silent, ``seconds`` long within the contract's few ms."""
    assert audio.samples.ndim == 2 and audio.channels == 2, audio.samples.shape
    assert audio.samples.dtype == np.float32
    assert np.isfinite(audio.samples).all()
    assert abs(audio.frames - seconds * audio.rate) <= LENGTH_TOLERANCE * audio.rate, (
        f"{audio.frames} frames at {audio.rate} Hz is {audio.frames / audio.rate:.4f} s, wanted {seconds} s"
    )
    assert rms(audio.samples) > 0.01, "the audio is silent"


# -- length, layout, rate ---------------------------------------------------------------


@pytest.mark.parametrize("duration", [1, 3, 7])
def test_generate_returns_exactly_the_requested_length_as_stereo_float32(
    backend: Backend, request: pytest.FixtureRequest, duration: int
) -> None:
    audio = generate(backend, GenerationRequest(PROMPT, duration, seed=duration))
    assert_sound(audio, duration)
    assert audio.frames == duration * audio.rate  # both backends today trim to the exact frame
    assert sent(backend, request)["submits"] == (1 if backend.name == "wavespeed" else 0)


def test_audio_comes_at_the_backends_rate_and_resamples_to_the_mix_rate(backend: Backend) -> None:
    duration = 3
    audio = generate(backend, GenerationRequest(PROMPT, duration))
    assert audio.rate in (44100, 48000)
    assert audio.rate == NATIVE_RATE[backend.name]
    mixed = resample(audio.samples, audio.rate, MIX_RATE)
    assert mixed.shape == (duration * MIX_RATE, 2)
    assert mixed.dtype == np.float32
    assert np.isfinite(mixed).all()
    # Resampling changes the rate, not the music: the level stays within a fraction of a dB.
    assert abs(20 * np.log10(rms(mixed) / rms(audio.samples))) < 0.2


# -- validation before anything is sent -------------------------------------------------

INVALID = {
    "empty prompt": GenerationRequest("", 2),
    "blank prompt": GenerationRequest("   ", 2),
    "duration 0": GenerationRequest(PROMPT, 0),
    "duration 121": GenerationRequest(PROMPT, 121),
    "steps 0": GenerationRequest(PROMPT, 2, steps=0),
    "steps 101": GenerationRequest(PROMPT, 2, steps=101),
    "guidance -1": GenerationRequest(PROMPT, 2, guidance=-1),
    "guidance 26": GenerationRequest(PROMPT, 2, guidance=26),
    "format wma": GenerationRequest(PROMPT, 2, output_format="wma"),
    "seed -1": GenerationRequest(PROMPT, 2, seed=-1),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_request_is_a_usage_error_before_anything_is_sent(
    backend: Backend, request: pytest.FixtureRequest, case: str
) -> None:
    with pytest.raises(OptionError) as exc:
        generate(backend, INVALID[case])
    assert exc.value.exit_code == 2
    assert str(exc.value).strip()
    assert sent(backend, request) == {"requests": 0, "submits": 0, "uploads": 0, "downloads": 0}


INVALID_CONTINUATION: dict[str, dict[str, Any]] = {
    "empty prompt": {"prompt": ""},
    "extend 0": {"extend_after": 0},
    "steps 101": {"steps": 101},
    "guidance 26": {"guidance": 26},
    "format wma": {"output_format": "wma"},
    "seed -1": {"seed": -1},
}


@pytest.mark.parametrize("case", INVALID_CONTINUATION, ids=list(INVALID_CONTINUATION))
def test_invalid_continuation_is_a_usage_error_before_anything_is_sent(
    backend: Backend, request: pytest.FixtureRequest, case: str
) -> None:
    source = Audio(np.full((SAMPLE_RATE, 2), 0.1, np.float32), SAMPLE_RATE)
    invalid = replace(ContinuationRequest(source, PROMPT, extend_after=2), **INVALID_CONTINUATION[case])
    with pytest.raises(OptionError) as exc:
        outpaint(backend, invalid)
    assert exc.value.exit_code == 2
    assert sent(backend, request) == {"requests": 0, "submits": 0, "uploads": 0, "downloads": 0}


# -- continuation -----------------------------------------------------------------------


def test_continuation_is_the_source_followed_by_the_extension(backend: Backend) -> None:
    assert (type(backend).outpaint is not Backend.outpaint) == (backend.name in CAN_CONTINUE)
    source = generate(backend, GenerationRequest(PROMPT, 2, negative_prompt="ending, fade-out"))
    cont = ContinuationRequest(source, PROMPT, extend_after=2, negative_prompt="ending, fade-out")
    if backend.name not in CAN_CONTINUE:
        with pytest.raises(OptionError) as refused:
            outpaint(backend, cont)
        assert refused.value.exit_code == 2
        return
    audio = outpaint(backend, cont)
    assert_sound(audio, source.duration + 2)
    head = resample(source.samples, source.rate, audio.rate)
    assert audio.frames - head.shape[0] == pytest.approx(2 * audio.rate, abs=LENGTH_TOLERANCE * audio.rate)
    # The source comes back in front (through a lossless upload and a 16-bit download at most).
    assert np.max(np.abs(audio.samples[: head.shape[0]] - head)) < 1e-3
    assert rms(audio.samples[head.shape[0]:]) > 0.01, "the extension is silent"


def test_a_backend_without_continuation_refuses_with_a_usage_error() -> None:
    class GenerateOnly(Backend):
        name = "generate-only"
        model = "test"

        async def generate(self, request: GenerationRequest) -> Audio:
            request.validate()
            return Audio(np.zeros((request.duration * 48000, 2), np.float32), 48000)

    source = Audio(np.zeros((48000, 2), np.float32), 48000)
    with pytest.raises(OptionError, match="cannot continue") as exc:
        asyncio.run(GenerateOnly().outpaint(ContinuationRequest(source, PROMPT, 2)))
    assert exc.value.exit_code == 2


# -- aclose -----------------------------------------------------------------------------


def test_aclose_is_safe_unused_twice_and_the_backend_works_after_it(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    async def close_twice() -> None:
        await backend.aclose()
        await backend.aclose()

    asyncio.run(close_twice())  # never used
    asyncio.run(backend.aclose())  # again, from another loop
    first = generate(backend, GenerationRequest(PROMPT, 1))  # used and closed in one loop
    asyncio.run(close_twice())  # closed again, twice, from a new loop
    second = generate(backend, GenerationRequest(PROMPT, 1, seed=1))  # a new loop each time
    third = generate(backend, GenerationRequest(PROMPT, 1, seed=2))
    for audio in (first, second, third):
        assert_sound(audio, 1)
    asyncio.run(close_twice())
    if backend.name == "wavespeed":
        assert sent(backend, request)["submits"] == 3


# -- seeds ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED])
def test_every_seed_in_range_is_accepted_by_generate_and_outpaint(backend: Backend, seed: int) -> None:
    audio = generate(backend, GenerationRequest(PROMPT, 1, seed=seed))
    assert_sound(audio, 1)
    extended = outpaint(backend, ContinuationRequest(audio, PROMPT, extend_after=1, seed=seed))
    assert_sound(extended, 2)


@pytest.mark.parametrize("seed", [-1, -(2**31), MAX_SEED + 1, 2**63])
def test_seeds_out_of_range_are_refused_naming_the_seed_and_the_range(
    backend: Backend, request: pytest.FixtureRequest, seed: int
) -> None:
    source = Audio(np.full((SAMPLE_RATE, 2), 0.1, np.float32), SAMPLE_RATE)
    with pytest.raises(OptionError, match=rf"^Seed {seed}\b.*0 to {MAX_SEED}") as exc:
        generate(backend, GenerationRequest(PROMPT, 1, seed=seed))
    assert exc.value.exit_code == 2
    with pytest.raises(OptionError, match=rf"^Seed {seed}\b.*0 to {MAX_SEED}"):
        outpaint(backend, ContinuationRequest(source, PROMPT, extend_after=1, seed=seed))
    assert sent(backend, request) == {"requests": 0, "submits": 0, "uploads": 0, "downloads": 0}


def test_seed_must_be_a_whole_number() -> None:
    for seed in (True, 1.0, "1"):
        with pytest.raises(OptionError, match=r"^Seed "):
            GenerationRequest(PROMPT, 1, seed=seed).validate()  # type: ignore[arg-type]


# -- the CLI ----------------------------------------------------------------------------




@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_cli_seed_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    out = tmp_path / "out.mp3"
    code, _, err = run_cli(["generate", "x", "-d", "2", "--seed", str(seed), "-o", str(out)], capsys)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("Error:") and f"Seed {seed}" in lines[0] and str(MAX_SEED) in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_largest_seed_makes_music(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Chunk seeds derive from the user's seed; the largest one must not push them out of range."""
    out = tmp_path / "out.wav"
    code, stdout, err = run_cli(
        ["generate", "x", "-d", "2", "--seed", str(MAX_SEED), "-b", "procedural", "-o", str(out)], capsys
    )
    assert code == 0, err
    assert "Backend: procedural" in stdout
    assert out.stat().st_size > 2 * 48000 * 2  # two seconds of at least 16-bit mono
