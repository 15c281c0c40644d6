"""The streaming ffmpeg writer: what goes in comes out, and a dying ffmpeg is an error, not a hang."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autoscore.errors import FFmpegError
from autoscore.ffmpeg import Writer, decode_audio


def blocks(count: int, frames: int = 48000) -> list[np.ndarray]:
    rng = np.random.default_rng(count)
    return [(rng.standard_normal((frames, 2)) * 0.1).astype(np.float32) for _ in range(count)]


def raw_args(path: Path) -> list[str]:
    return ["-loglevel", "error", "-y", "-f", "f32le", "-ar", "48000", "-ac", "2", "-i", "pipe:0",
            "-c:a", "pcm_f32le", "-f", "wav", str(path)]


def test_every_block_arrives_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    sent = blocks(7)
    writer = Writer(raw_args(out), what="write a test file")
    for block in sent:
        writer.write(block)
        block[:] = 0.0  # the writer copied it: a caller may reuse its buffer at once
    writer.close()
    got = decode_audio(out, 48000, 2).samples
    np.testing.assert_array_equal(got, np.concatenate(blocks(7)))


def test_an_ffmpeg_that_stops_reading_raises_instead_of_hanging(tmp_path: Path) -> None:
    # -t 0.5 makes ffmpeg stop after half a second of input and close its end of the pipe.
    writer = Writer(["-loglevel", "error", "-y", "-f", "f32le", "-ar", "48000", "-ac", "2",
                     "-i", "pipe:0", "-t", "0.5", "-c:a", "pcm_f32le", "-f", "wav",
                     str(tmp_path / "short.wav")], what="write a short file")
    with pytest.raises(FFmpegError, match="write a short file"):
        for block in blocks(200, frames=48000):
            writer.write(block)
        writer.close()
    writer.abort()  # after a failure, abort is safe and does nothing more


def test_a_failing_ffmpeg_reports_its_own_words(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "out.wav"
    writer = Writer(raw_args(missing), what="write into a missing folder")
    with pytest.raises(FFmpegError, match="write into a missing folder"):
        for block in blocks(50):
            writer.write(block)
        writer.close()
