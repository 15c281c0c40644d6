"""Long audio kept on disk as raw float32 frames.

An hour of 48 kHz stereo float32 is 1.4 GB; held in memory twice over it would sink the
1 GiB goal. Music is therefore assembled into a ``PcmFile`` and read back block by
block by the mixer, and only the chunk being joined is ever in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models import MIX_RATE, SPEECH_RATE

__all__ = ["DecodedAudio", "PcmFile", "PcmWriter", "decode_for_mixing"]


@dataclass(frozen=True)
class PcmFile:
    path: Path
    rate: int
    channels: int = 2

    @property
    def frames(self) -> int:
        return self.path.stat().st_size // (4 * self.channels)

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def read(self, start: int, count: int) -> np.ndarray:
        """Frames ``[start, start + count)``; zeros past the end so callers need no edge cases."""
        out = np.zeros((count, self.channels), np.float32)
        if count <= 0 or start >= self.frames:
            return out
        with self.path.open("rb") as f:
            f.seek(max(start, 0) * 4 * self.channels)
            raw = f.read(count * 4 * self.channels)
        got = np.frombuffer(raw, dtype="<f4").reshape(-1, self.channels)
        out[: len(got)] = got
        return out

    def blocks(self, block_frames: int = 1 << 17) -> Iterator[np.ndarray]:
        with self.path.open("rb") as f:
            while True:
                raw = f.read(block_frames * 4 * self.channels)
                if not raw:
                    return
                yield np.frombuffer(raw, dtype="<f4").reshape(-1, self.channels)

    def read_all(self) -> np.ndarray:
        return np.fromfile(self.path, dtype="<f4").reshape(-1, self.channels)


class PcmWriter:
    """Appends blocks to a ``PcmFile``; use as a context manager."""

    def __init__(self, path: Path, rate: int, channels: int = 2) -> None:
        self.file = PcmFile(Path(path), rate, channels)
        self._f = Path(path).open("wb")
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        if block.ndim != 2 or block.shape[1] != self.file.channels:
            raise ValueError(f"expected (n, {self.file.channels}) block, got {block.shape}")
        self._f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.frames += len(block)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PcmWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class DecodedAudio:
    """An input's audio, decoded once for mixing into raw files the mixer reads many times."""

    full: PcmFile
    """48 kHz stereo: the analysis, the limiter estimate and the render read it."""
    speech: PcmFile
    """16 kHz mono: speech (or loudness) detection reads it."""


def decode_for_mixing(source: Path, folder: Path, *, stream: int | None = None) -> DecodedAudio:
    """Decode ``source``'s audio into ``folder`` in one ffmpeg run with two raw outputs.

    A decode costs far more than reading raw samples back, and the mixer makes several
    passes, so it decodes once; an hour of input takes about 1.6 GB in ``folder``.
    """
    from .ffmpeg import run

    full, speech = folder / "original.f32", folder / "original-16k.f32"
    pick = ["-map", f"0:{stream}" if stream is not None else "0:a:0", "-vn", "-sn", "-dn"]
    raw = ["-f", "f32le", "-acodec", "pcm_f32le"]
    run(["-loglevel", "error", "-y", "-i", str(source),
         *pick, "-ac", "2", "-ar", str(MIX_RATE), *raw, str(full),
         *pick, "-ac", "1", "-ar", str(SPEECH_RATE), *raw, str(speech)],
        what=f"decode the audio of {source.name}")
    return DecodedAudio(PcmFile(full, MIX_RATE, 2), PcmFile(speech, SPEECH_RATE, 1))
