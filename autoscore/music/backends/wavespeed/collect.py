"""The last step of a task: fetch what it made, and make sure it is the audio that was paid for.

A completed task is charged whatever its file turns out to be, so the file is fetched
again (not the task run again) when it does not decode or is not the length asked for;
codec padding is trimmed and a short tail padded, so every chunk is exactly its length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from ....errors import AutoscoreError, BackendError
from ....media.ffmpeg import decode_audio, read_pcm_wav
from ....models import Audio
from .answers import TaskRef
from .transfer import Sender, download_to

__all__ = ["OUTPUT_RATE", "at_rate", "collect", "decode_file", "fit_length"]

log = logging.getLogger(__name__)

OUTPUT_RATE = 44100
"""The model's native rate; downloads are decoded at it so nothing is resampled twice."""


class Collector(Sender, Protocol):
    """What ``collect`` needs of the client beyond a ``Sender``."""

    length_tolerance: float

    def scratch_dir(self) -> Path: ...


async def collect(client: Collector, data: dict[str, Any], ref: TaskRef, fmt: str,
                  lengths: tuple[float, ...]) -> Audio:
    """Download the completed task's audio and check it; a file that is not usable is fetched again."""
    outputs = data.get("outputs")
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], str):
        raise BackendError(f"WaveSpeed task {ref.task_id} completed without an output URL.",
                           task_id=ref.task_id, charged=True)
    url = outputs[0]
    if urlsplit(url).scheme not in ("http", "https"):
        raise BackendError(f"WaveSpeed task {ref.task_id} returned an output that is not a URL: {url!r}.",
                           task_id=ref.task_id, charged=True)
    problem = ""
    for attempt in range(1, client.attempts + 1):
        if attempt > 1:
            await client.pause(attempt - 1, None, ref, f"download ({problem})")
        path = await download_to(client, url, ref, client.scratch_dir(), "." + fmt)
        try:
            audio = await asyncio.to_thread(decode_file, path, fmt)
        except AutoscoreError as exc:
            problem = f"not decodable as {fmt}: {exc}"
            continue
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        for length in lengths:
            fitted = fit_length(audio, length, client.length_tolerance)
            if fitted is not None:
                log.debug("wavespeed: task %s done, %.2f s of audio", ref.task_id, audio.duration)
                return fitted
        wanted = " or ".join(f"{length:.2f} s" for length in lengths)
        problem = f"{audio.duration:.2f} s of audio instead of {wanted}"
    raise BackendError(
        f"WaveSpeed task {ref.task_id} produced a file that is not usable ({problem}) after "
        f"{client.attempts} downloads; run again later (the task was charged).",
        task_id=ref.task_id, charged=True,
    )


def fit_length(audio: Audio, seconds: float, tolerance_s: float) -> Audio | None:
    """Exactly ``seconds`` long (codec padding trimmed, a short tail padded), or None if far off."""
    target = round(seconds * audio.rate)
    tolerance = round((tolerance_s + 0.01 * seconds) * audio.rate)
    if audio.frames == 0 or abs(audio.frames - target) > tolerance:
        return None
    if audio.frames >= target:
        return Audio(audio.samples[:target], audio.rate)
    pad = np.zeros((target - audio.frames, audio.channels), np.float32)
    return Audio(np.concatenate([audio.samples, pad]), audio.rate)



def decode_file(path: Path, fmt: str) -> Audio:
    """The downloaded file as float samples at the model's rate.

    PCM WAV is read directly and FLAC by libFLAC inside pedalboard (already here for the
    composer), each about half the time of an ffmpeg run, and identical to it to the last
    bit of a float; anything else, or a file either cannot read, goes through ffmpeg.
    """
    if fmt == "wav":
        direct = read_pcm_wav(path.read_bytes(), OUTPUT_RATE, 2)
        if direct is not None:
            return direct
    if fmt == "flac":
        from pedalboard.io import AudioFile

        try:
            with AudioFile(str(path)) as f:
                if f.samplerate == OUTPUT_RATE and f.num_channels == 2:
                    return Audio(np.ascontiguousarray(f.read(f.frames).T, dtype=np.float32), OUTPUT_RATE)
        except (OSError, ValueError, RuntimeError):
            pass  # let ffmpeg try, and say what is wrong if it cannot either
    return decode_audio(path, OUTPUT_RATE, 2)


def at_rate(audio: Audio, rate: int) -> np.ndarray:
    """``audio``'s samples at ``rate``, stereo, for joining to a download."""
    samples = audio.samples if audio.channels == 2 else np.repeat(audio.samples[:, :1], 2, axis=1)
    if audio.rate == rate:
        return samples
    from ....media.resample import resample

    return resample(samples, audio.rate, rate)
