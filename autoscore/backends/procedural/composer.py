"""Placeholder composer: a plain chord pad so the pipeline runs end to end (issue 7 replaces it)."""

from __future__ import annotations

import zlib

import numpy as np

from ...models import Audio
from ..base import ContinuationRequest, GenerationRequest

SAMPLE_RATE = 44100


def _render(prompt: str, seed: int, start: float, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(prompt.encode()) ^ seed)
    root = 220.0 * 2 ** (rng.integers(0, 12) / 12)
    t = start + np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chords = [(0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14)]
    idx = (t // 2.0).astype(int) % 4
    out = np.zeros_like(t)
    for voice in range(3):
        semis = np.array([c[voice] for c in chords])[idx]
        out += np.sin(2 * np.pi * root * 2 ** (semis / 12) * t)
    out *= 0.1
    return np.stack([out, out], axis=1).astype(np.float32)


def compose(request: GenerationRequest) -> Audio:
    return Audio(_render(request.prompt, request.seed, 0.0, request.duration), SAMPLE_RATE)


def continue_piece(request: ContinuationRequest) -> Audio:
    ext = _render(request.prompt, request.seed, request.source.duration, request.extend_after)
    src = request.source.samples
    if request.source.rate != SAMPLE_RATE:
        raise ValueError("source must be 44.1 kHz")
    return Audio(np.concatenate([src, ext]), SAMPLE_RATE)


def explain(prompt: str, negative_prompt: str = "") -> str:
    return f"placeholder composer; prompt={prompt!r}"
