"""The mix's stems as float WAV files, each written whole or not at all."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..errors import OutputPathError
from ..media.ffmpeg import Writer
from ..models import MIX_RATE

__all__ = ["STEM_NAMES", "StemWriters"]

STEM_NAMES = ("music", "music_ducked", "original", "mix")


class StemWriters:
    """Float WAV stems written to ``name.wav.part`` and renamed into place only when complete."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"Cannot create the stems folder {folder}: {exc}. Choose another.") from exc
        self.final = {name: folder / f"{name}.wav" for name in STEM_NAMES}
        self.parts = {name: path.with_name(path.name + ".part") for name, path in self.final.items()}
        self.writers: dict[str, Writer] = {}
        try:
            for name, part in self.parts.items():
                self.writers[name] = Writer(
                    ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(MIX_RATE), "-ac", "2",
                     "-i", "pipe:0", "-c:a", "pcm_f32le", "-f", "wav", str(part)],
                    what=f"write the {name} stem",
                )
        except BaseException:
            self.abort()
            raise

    def write(self, **blocks: np.ndarray) -> None:
        for name, block in blocks.items():
            self.writers[name].write(block)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for name, part in self.parts.items():
            part.replace(self.final[name])

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()
        for part in self.parts.values():
            with contextlib.suppress(OSError):
                part.unlink()
