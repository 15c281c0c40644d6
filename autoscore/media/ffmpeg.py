"""The one place that starts ffmpeg.

Commands are built as argument lists by pure functions, logged with ``shlex.join`` (so
``--debug`` shows exactly what ran) and executed here with stderr captured to a file:
a pipe would deadlock once ffmpeg writes more than the OS buffer while we are busy
feeding its stdin. Failures become ``FFmpegError`` carrying ffmpeg's own last words.

The binary is the one on PATH when there is one (a user's own build may have more
codecs), otherwise the static build that the ``imageio-ffmpeg`` wheel ships, so a
pip install is all a fresh machine needs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import queue
import shlex
import shutil
import subprocess
import tempfile
import threading
import wave
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import shutdown
from ..errors import FFmpegError
from ..models import Audio

log = logging.getLogger(__name__)

__all__ = [
    "AUDIO_FORMATS",
    "AudioFormat",
    "Finished",
    "Reader",
    "decode_audio",
    "decode_bytes",
    "encode_audio",
    "ffmpeg_exe",
    "ffprobe_exe",
    "gray_frames_args",
    "run",
]


@dataclass(frozen=True)
class AudioFormat:
    """How to write one of the seven formats the generator API speaks."""

    name: str
    muxer: str
    codec: str
    codec_args: tuple[str, ...] = ()


AUDIO_FORMATS: dict[str, AudioFormat] = {
    "mp3": AudioFormat("mp3", "mp3", "libmp3lame", ("-b:a", "192k")),
    "wav": AudioFormat("wav", "wav", "pcm_s16le"),
    "flac": AudioFormat("flac", "flac", "flac"),
    "ogg": AudioFormat("ogg", "ogg", "libvorbis", ("-q:a", "6")),
    "opus": AudioFormat("opus", "opus", "libopus", ("-b:a", "160k")),
    "m4a": AudioFormat(
        "m4a", "ipod", "aac", ("-aac_coder", "fast", "-b:a", "192k", "-movflags", "+faststart")
    ),
    "aac": AudioFormat("aac", "adts", "aac", ("-aac_coder", "fast", "-b:a", "192k")),
}


@functools.cache
def ffmpeg_exe() -> str:
    """PATH first (``AUTOSCORE_FFMPEG`` overrides both), then imageio-ffmpeg's binary."""
    override = os.environ.get("AUTOSCORE_FFMPEG")
    if override:
        return override
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as exc:  # the wheel lacks a binary for this platform
        raise FFmpegError(
            "No ffmpeg found: install one on PATH or reinstall autoscore so that "
            f"imageio-ffmpeg brings its own ({exc})."
        ) from exc


@functools.cache
def ffprobe_exe() -> str | None:
    """ffprobe beside the ffmpeg in use or on PATH; None means probe falls back."""
    if os.environ.get("AUTOSCORE_NO_FFPROBE"):
        return None
    beside = Path(ffmpeg_exe()).with_name("ffprobe")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ffprobe")


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) if lines else "no message"


# -- every ffmpeg this process runs, so that a shutdown can stop them all ---------------

_LIVE: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _start(cmd: Sequence[str], what: str, **popen: object) -> subprocess.Popen[bytes]:
    """Popen, registered in ``_LIVE``; refused once the process is shutting down (``shutdown``)."""
    with _LIVE_LOCK:
        reason = shutdown.stopping()
        if reason is not None:
            raise FFmpegError(f"Stopped before ffmpeg could {what}: {reason}.")
        try:
            proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]
        except OSError as exc:
            raise FFmpegError(f"Could not start ffmpeg to {what}: {exc}.") from exc
        _LIVE.add(proc)
    return proc


def _terminate_all(_reason: str) -> None:
    """Every ffmpeg of this process ends: its job fails at once with ``FFmpegError``, and
    its own cleanup removes its ``.part`` output and scratch folder."""
    with _LIVE_LOCK:
        running = list(_LIVE)
    for proc in running:
        with contextlib.suppress(OSError):
            proc.terminate()


shutdown.register(_terminate_all)


def _failed(what: str, err: str) -> FFmpegError:
    reason = shutdown.stopping()
    if reason is not None:
        return FFmpegError(f"Stopped while ffmpeg tried to {what}: {reason}.")
    return FFmpegError(f"ffmpeg failed to {what}: {_last_lines(err)}")


def run(args: Sequence[str], *, what: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``ffmpeg ARGS`` to completion; ``what`` names the job for error messages."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args] if input is None else [
        ffmpeg_exe(), "-hide_banner", *args]
    log.debug("ffmpeg: %s", shlex.join(cmd))
    stdin = subprocess.PIPE if input is not None else None
    proc = _start(cmd, what, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with proc:
        try:
            out, err = proc.communicate(input)
        except BaseException:
            proc.kill()
            raise
    if proc.returncode != 0:
        raise _failed(what, err.decode("utf-8", "replace"))
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def decode_args(
    source: str | Path,
    rate: int,
    channels: int,
    *,
    stream: int | None = None,
    start: float | None = None,
    duration: float | None = None,
) -> list[str]:
    """Arguments that decode one audio stream of ``source`` to raw f32le on stdout."""
    args: list[str] = ["-loglevel", "error"]
    if start:
        args += ["-ss", f"{start:.6f}"]
    args += ["-i", str(source)]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    args += ["-map", f"0:{stream}" if stream is not None else "0:a:0", "-vn", "-sn", "-dn"]
    args += ["-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    return args


def decode_audio(
    source: str | Path,
    rate: int,
    channels: int = 2,
    *,
    stream: int | None = None,
    start: float | None = None,
    duration: float | None = None,
) -> Audio:
    """Decode a whole audio stream into memory (long inputs are decoded to a ``PcmFile`` instead)."""
    proc = run(
        decode_args(source, rate, channels, stream=stream, start=start, duration=duration),
        what=f"decode the audio of {Path(source).name}",
    )
    data = np.frombuffer(proc.stdout, dtype="<f4")
    data = data[: len(data) - len(data) % channels]
    return Audio(data.reshape(-1, channels).copy(), rate)


def encode_args(path: str | Path, fmt: str, rate: int, channels: int) -> list[str]:
    """Arguments that read raw f32le on stdin and write ``path`` in audio format ``fmt``."""
    spec = AUDIO_FORMATS[fmt]
    return [
        "-loglevel", "error", "-y",
        "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
        "-c:a", spec.codec, *spec.codec_args, "-f", spec.muxer, str(path),
    ]


def encode_audio(audio: Audio, path: str | Path, fmt: str) -> None:
    """Write ``audio`` to ``path`` in one of the seven formats (caller handles atomicity)."""
    samples = audio.samples
    if fmt == "opus" and audio.rate not in (8000, 12000, 16000, 24000, 48000):
        from .resample import resample

        audio = Audio(resample(samples, audio.rate, 48000), 48000)
    data = np.ascontiguousarray(np.clip(audio.samples, -1.0, 1.0), dtype="<f4").tobytes()
    run(encode_args(path, fmt, audio.rate, audio.channels), what=f"write {Path(path).name}", input=data)


def encode_bytes(audio: Audio, fmt: str) -> bytes:
    """``audio`` encoded in ``fmt``, in memory (the emulator serves these)."""
    with tempfile.TemporaryDirectory(prefix="autoscore-") as tmp:
        out = Path(tmp) / f"audio.{fmt}"
        encode_audio(audio, out, fmt)
        return out.read_bytes()


def decode_bytes(data: bytes, rate: int, channels: int = 2, *, suffix: str = "") -> Audio:
    """Decode an encoded file held in memory (e.g. a download).

    Plain PCM WAV already at ``rate`` with ``channels`` channels (what the API sends by
    default) is read directly: ffmpeg spent 0.15-0.3 s on each two-minute chunk just to
    convert integers to floats, which for a job of many chunks was most of the client's
    own time. Anything else goes through ffmpeg, by a temporary file rather than a pipe
    because MP4/M4A put their index at the end unless written with faststart, and
    ffmpeg cannot seek a pipe to find it.
    """
    direct = read_pcm_wav(data, rate, channels)
    if direct is not None:
        return direct
    with tempfile.TemporaryDirectory(prefix="autoscore-") as tmp:
        src = Path(tmp) / f"input{suffix}"
        src.write_bytes(data)
        return decode_audio(src, rate, channels)


_PCM_SCALE = {2: 1 / 32768.0, 4: 1 / 2147483648.0}


def read_pcm_wav(data: bytes, rate: int, channels: int) -> Audio | None:
    """``data`` as float32 samples if it is 16-, 24- or 32-bit integer PCM WAV at ``rate`` x ``channels``.

    None for anything else (float or extensible WAV, another rate, another format): the
    caller then lets ffmpeg decode it. Samples scale exactly as ffmpeg scales them (by
    2^-15, 2^-23, 2^-31), so either road gives the same floats.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    try:
        with wave.open(io.BytesIO(data)) as w:
            if w.getframerate() != rate or w.getnchannels() != channels or w.getsampwidth() not in (2, 3, 4):
                return None
            width = w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return None
    whole = len(raw) // (width * channels) * width * channels
    if width == 3:  # widen to 32 bits (the low byte stays 0) and scale as a 32-bit sample
        packed = np.frombuffer(raw[:whole], np.uint8).reshape(-1, 3)
        wide = np.zeros((len(packed), 4), np.uint8)
        wide[:, 1:] = packed
        ints = wide.view("<i4").ravel()
        scale = _PCM_SCALE[4]
    else:
        ints = np.frombuffer(raw[:whole], "<i2" if width == 2 else "<i4")
        scale = _PCM_SCALE[width]
    samples = (ints.astype(np.float32) * np.float32(scale)).reshape(-1, channels)
    return Audio(samples, rate)


class Writer:
    """A running ffmpeg that consumes f32le blocks on stdin (used by render and stems).

    A feeder thread does the writing, so the caller computes the next block while ffmpeg
    encodes this one; written straight from the caller's thread, each block waited for
    the encoder and the two took turns instead of running on two cores. ``write``
    blocks only when ``QUEUE_BLOCKS`` blocks are already waiting. ``close`` waits and
    raises ``FFmpegError`` with ffmpeg's last lines if it failed, so a caller never
    renames a broken output into place.
    """

    QUEUE_BLOCKS = 2

    def __init__(self, args: Sequence[str], *, what: str) -> None:
        self.what = what
        self.cmd = [ffmpeg_exe(), "-hide_banner", *args]
        log.debug("ffmpeg: %s", shlex.join(self.cmd))
        self._err = tempfile.TemporaryFile()
        try:
            self.proc = _start(self.cmd, what, stdin=subprocess.PIPE, stderr=self._err)
        except FFmpegError:
            self._err.close()
            raise
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.QUEUE_BLOCKS)
        self._broken = threading.Event()
        self._finished = False
        self._feeder = threading.Thread(target=self._feed, name="ffmpeg-feeder", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        while (data := self._queue.get()) is not None:
            if self._broken.is_set():
                continue  # keep draining, so a producer blocked on a full queue wakes up
            try:
                stdin.write(data)
            except (BrokenPipeError, OSError, ValueError):
                self._broken.set()
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stdin.close()

    def write(self, block: np.ndarray) -> None:
        if self._broken.is_set():
            self.close()  # raises with ffmpeg's reason
            raise FFmpegError(f"ffmpeg stopped early while trying to {self.what}.")
        self._queue.put(np.ascontiguousarray(block, dtype="<f4").tobytes())

    def _stop_feeder(self) -> None:
        if self._feeder.is_alive():
            self._queue.put(None)
            self._feeder.join()

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._stop_feeder()
        code = self.proc.wait()
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace")
        self._err.close()
        if code != 0:
            raise _failed(self.what, err)
        if self._broken.is_set():
            raise FFmpegError(f"ffmpeg stopped reading early while trying to {self.what}.")

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        with contextlib.suppress(Exception):
            self.proc.kill()  # a feeder stuck in write gets EPIPE and drains the rest
            self._stop_feeder()
            self.proc.wait()
            self._err.close()


def gray_frames_args(
    source: str | Path, width: int, height: int, *, stream: str = "0:v:0", fast: bool = True, threads: int = 0
) -> list[str]:
    """Arguments that decode a picture to raw 8-bit gray frames of ``width`` x ``height`` on stdout.

    Every frame is decoded (nothing assumes cuts sit on keyframes), but nothing else is:
    no audio, subtitle or data stream is selected. ``fast`` skips the decoder's loop
    filter and allows its non-bit-exact shortcuts: the deblocking they save is invisible
    once the frame is averaged down to ``width`` pixels (the benchmark's cuts came out the
    same with and without), and skipping it took about 8 % off the CPU of a 1080p H.264
    decode, which pays for the scaling. ``showinfo`` logs each frame's own timestamp on
    stderr (``-loglevel level+info`` tags ffmpeg's errors apart from it), and
    ``-fps_mode passthrough`` keeps one output frame per decoded frame, so the n-th
    frame on stdout is the n-th ``showinfo`` line.
    """
    args = ["-loglevel", "level+info", "-nostats"]
    if threads:
        args += ["-threads", str(threads)]
    if fast:
        args += ["-skip_loop_filter", "all", "-flags2", "+fast"]
    args += ["-an", "-sn", "-dn", "-i", str(source), "-map", stream,
             "-vf", f"scale={width}:{height}:flags=area,format=gray,showinfo",
             "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    return args


@dataclass(frozen=True)
class Finished:
    """How a streamed ffmpeg ended: its exit code and everything it wrote on stderr."""

    returncode: int
    stderr: str


class Reader:
    """A running ffmpeg whose stdout is read in blocks as it decodes (used by cut detection).

    A long input's decoded frames never sit in memory at once: the caller reads a block,
    scores it, and reads the next while ffmpeg decodes ahead into the pipe. stderr goes to
    a temporary file, so a chatty ffmpeg never blocks on a full pipe. ``finish`` never
    raises: a decode that fails part way is a result the caller reports, not an error.
    Use it as a context manager, so an exception in the caller kills the process.
    """

    def __init__(self, args: Sequence[str], *, what: str) -> None:
        self.what = what
        self.cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
        log.debug("ffmpeg: %s", shlex.join(self.cmd))
        self._err = tempfile.TemporaryFile()
        try:
            self.proc = _start(self.cmd, what, stdout=subprocess.PIPE, stderr=self._err)
        except FFmpegError:
            self._err.close()
            raise

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the output."""
        stdout = self.proc.stdout
        assert stdout is not None
        return stdout.read(size)

    def finish(self) -> Finished:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        code = self.proc.wait()
        self._err.seek(0)
        text = self._err.read().decode("utf-8", "replace")
        self._err.close()
        return Finished(code, text)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if not self._err.closed:
            self._err.close()
