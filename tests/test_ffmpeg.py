"""The ffmpeg edge: the streaming writer (what goes in comes out; a dying ffmpeg is an error,
not a hang) and the direct WAV reader (the same floats as ffmpeg's decode)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from autoscore.errors import FFmpegError
from autoscore.media.ffmpeg import Writer, decode_audio, decode_bytes, encode_bytes, read_pcm_wav
from autoscore.models import Audio


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


def pcm_wav(width: int, rate: int = 48000, channels: int = 2, frames: int = 24000) -> bytes:
    """A plain (non-extensible) integer PCM WAV of random full-scale samples, written by the stdlib."""
    rng = np.random.default_rng(width)
    top = 2 ** (8 * width - 1)
    ints = rng.integers(-top, top, size=(frames, channels), dtype=np.int64)
    raw = (ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes() if width == 3
           else ints.astype("<i2" if width == 2 else "<i4").tobytes())
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return buf.getvalue()


@pytest.mark.parametrize("width", [2, 3, 4])
def test_direct_wav_reading_gives_ffmpegs_floats_exactly(width: int, tmp_path: Path) -> None:
    data = pcm_wav(width)
    path = tmp_path / "in.wav"
    path.write_bytes(data)
    direct = read_pcm_wav(data, 48000, 2)
    assert direct is not None
    np.testing.assert_array_equal(direct.samples, decode_audio(path, 48000, 2).samples)


def test_other_wavs_are_left_to_ffmpeg() -> None:
    assert read_pcm_wav(pcm_wav(2, rate=44100), 48000, 2) is None  # needs resampling
    assert read_pcm_wav(pcm_wav(2, channels=1), 48000, 2) is None  # needs upmixing
    assert read_pcm_wav(b"ID3" + bytes(100), 48000, 2) is None
    assert read_pcm_wav(pcm_wav(2)[:30], 48000, 2) is None  # the header itself is cut off
    ours = encode_bytes(Audio(np.zeros((4800, 2), np.float32), 48000), "wav")  # 16-bit, as the emulator sends
    direct = read_pcm_wav(ours, 48000, 2)
    assert direct is not None and direct.rate == 48000
    np.testing.assert_array_equal(direct.samples, np.zeros((4800, 2), np.float32))
    # ... and ffmpeg still delivers the asked-for rate and channels.
    got = decode_bytes(pcm_wav(2, rate=44100, channels=1), 48000, 2, suffix=".wav")
    assert got.rate == 48000 and got.channels == 2 and abs(got.frames - 24000 * 48000 / 44100) < 50


def test_a_cut_wav_reads_as_what_arrived() -> None:
    data = pcm_wav(2)  # 24000 stereo 16-bit frames: 4 bytes each after the header
    arrived = data[: len(data) // 2 + 1]
    cut, whole = read_pcm_wav(arrived, 48000, 2), read_pcm_wav(data, 48000, 2)
    assert cut is not None and whole is not None
    header = len(data) - 24000 * 4
    assert cut.frames == (len(arrived) - header) // 4  # every whole frame that arrived, no more
    np.testing.assert_array_equal(cut.samples, whole.samples[: cut.frames])
