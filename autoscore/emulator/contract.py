"""What the emulated service accepts, written down apart from the client's own tables.

The emulator keeps its own routes, formats, ranges and account tiers (from
``docs/wavespeed-api.md``) instead of importing the client's: an emulator built
from the client's constants would agree with the client even where both are wrong. Music
comes from the procedural composer through its plain-argument functions, imported on first
use so that starting a server (or the CLI) does not load numpy and the synthesiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Audio

HOST = "127.0.0.1"
DEFAULT_LATENCY = 0.5
MUSIC_MODEL = "stability-ai/stable-audio-3/music"
OUTPAINT_MODEL = "stability-ai/stable-audio-3/audio-outpainting"
MUSIC_PATH = "/api/v3/" + MUSIC_MODEL
OUTPAINT_PATH = "/api/v3/" + OUTPAINT_MODEL
UPLOAD_PATH = "/api/v3/media/upload/binary"
"""The older multipart upload route, still documented for existing integrations."""
UPLOADS_PATH = "/api/v3/media/uploads"
"""The current upload route: a JSON ticket, then a PUT of the bytes to a signed URL."""
RESULT_PREFIX = "/api/v3/predictions/"
CDN_PREFIX = "/_cdn/"
MEDIA_PREFIX = "/_media/"
PUT_PREFIX = "/_upload/"
FORMATS: tuple[str, ...] = ("mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
UPLOAD_TYPES: tuple[str, ...] = ("mp3", "wav", "ogg", "aac", "flac", "webm", "m4a", "opus")
MAX_UPLOAD = 50 * 1024 * 1024
OUTPUT_RATE = 44100


@dataclass(frozen=True)
class Tier:
    """An account level's limits; None means the level sets none."""

    max_running: int | None
    per_minute: int | None


TIERS: dict[str, Tier] = {"bronze": Tier(max_running=2, per_minute=2)}
"""The docs give numbers only for the level every new account starts at."""


class BadInput(Exception):
    """A 400 answer: the message goes back to the client."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return is_number(value) and float(value).is_integer()


def check_common(body: dict[str, Any]) -> dict[str, Any]:
    """The fields music and outpainting share, with the contract's ranges and defaults."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInput("prompt is required and must be a non-empty string")
    negative = body.get("negative_prompt", "")
    if not isinstance(negative, str):
        raise BadInput("negative_prompt must be a string")
    steps = body.get("num_inference_steps", 8)
    if not is_int(steps) or not 1 <= steps <= 100:
        raise BadInput("num_inference_steps must be an integer from 1 to 100")
    guidance = body.get("guidance_scale", 1)
    if not is_number(guidance) or not 0 <= guidance <= 25:
        raise BadInput("guidance_scale must be a number from 0 to 25")
    fmt = body.get("output_format", "mp3")
    if fmt not in FORMATS:
        raise BadInput(f"output_format must be one of {', '.join(FORMATS)}")
    sync = body.get("enable_sync_mode", False)
    if not isinstance(sync, bool):
        raise BadInput("enable_sync_mode must be a boolean")
    return {
        "prompt": prompt,
        "negative_prompt": negative,
        "steps": int(steps),
        "guidance": float(guidance),
        "output_format": fmt,
        "sync": sync,
    }


def seconds(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if not is_int(value) or not low <= value <= high:
        raise BadInput(f"{name} must be a whole number of seconds from {low} to {high}")
    return int(value)


def upload_extension(filename: str) -> str:
    """The lower-case extension of an upload's name, refused unless the platform takes it."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in UPLOAD_TYPES:
        raise BadInput(f"unsupported file type {ext!r}: audio uploads take {', '.join(UPLOAD_TYPES)}")
    return ext


def music(spec: dict[str, Any], duration: int) -> Callable[[], Audio]:
    """The render for a music submission; seed 0 because the model takes none."""

    def make() -> Audio:
        from ..music.backends.procedural.composer import compose_text

        return compose_text(spec["prompt"], duration, spec["negative_prompt"], spec["guidance"],
                            spec["steps"])

    return make


def outpainting(
    spec: dict[str, Any], source: bytes, before: int, after: int, extension_only: bool = False
) -> Callable[[], Audio]:
    def make() -> Audio:
        import numpy as np

        from ..media.ffmpeg import decode_bytes
        from ..models import Audio
        from ..music.backends.procedural.composer import extend_text

        audio = decode_bytes(source, OUTPUT_RATE, 2)
        if after > 0:
            audio = extend_text(audio, spec["prompt"], after, spec["negative_prompt"], spec["guidance"],
                                spec["steps"])
        if before > 0:  # the composer only continues forwards; a quiet lead-in keeps the length honest
            lead = np.zeros((before * audio.rate, audio.channels), np.float32)
            audio = Audio(np.concatenate([lead, audio.samples]), audio.rate)
        if extension_only:
            audio = Audio(audio.samples[-after * audio.rate:], audio.rate)
        return audio

    return make
