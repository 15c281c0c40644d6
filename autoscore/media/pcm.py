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

__all__ = ["PcmFile", "PcmWriter"]


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
