"""Write the scored file: new audio, the picture copied bit for bit.

Rendering is one ffmpeg run fed the mix block by block: it encodes the audio once, in
the codec the output container wants, and takes the input's video stream by stream copy
(``-c copy``), so the picture is never re-encoded and its packets stay identical. With
``--music-track`` there are two audio streams to encode, so each goes to a temporary
audio file first and a second run muxes them. The output is assembled under a temporary
name beside the target and renamed into place only when ffmpeg succeeded, so a failure
leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from ..errors import OptionError, OutputPathError
from ..models import MIX_RATE, MediaInfo
from ..music.backends.base import FORMATS
from . import ffmpeg as ff
from .files import atomic_output, unwritable_reason

__all__ = [
    "VIDEO_CONTAINERS",
    "Encoder",
    "OutputSpec",
    "atomic_output",
    "check_output_path",
    "default_output_path",
    "mux",
    "output_spec",
]


@dataclass(frozen=True)
class Container:
    muxer: str
    audio_codec: str
    audio_args: tuple[str, ...]
    temp_suffix: str
    """Audio-only file type that carries ``audio_codec`` into the mux step intact."""
    video_codecs: tuple[str, ...] | None = None
    """Video codecs the container can take by copy; None means any."""


# The "fast" AAC coder is about 2.5x quicker than the default two-loop search, and at 192k
# the difference does not survive a music bed under speech; the encode is the longest
# single step of a render, so it is worth it.
_AAC = ("-aac_coder", "fast", "-b:a", "192k")
VIDEO_CONTAINERS: dict[str, Container] = {
    "mp4": Container("mp4", "aac", _AAC, ".m4a"),
    "m4v": Container("mp4", "aac", _AAC, ".m4a"),
    "mov": Container("mov", "aac", _AAC, ".m4a"),
    "mkv": Container("matroska", "", (), ".mka"),
    "webm": Container("webm", "libopus", ("-b:a", "160k"), ".webm", ("vp8", "vp9", "av1")),
}

# Encoders for the codecs an mkv input may already use, so an mkv keeps its audio codec.
_MKV_ENCODERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "aac": ("aac", _AAC),
    "opus": ("libopus", ("-b:a", "160k")),
    "vorbis": ("libvorbis", ("-q:a", "6")),
    "flac": ("flac", ()),
    "mp3": ("libmp3lame", ("-b:a", "192k")),
    "ac3": ("ac3", ("-b:a", "384k")),
    "eac3": ("eac3", ("-b:a", "384k")),
    "pcm_s16le": ("pcm_s16le", ()),
    "pcm_s24le": ("pcm_s24le", ()),
}
_MKV_DEFAULT = ("libvorbis", ("-q:a", "6"))  # what ffmpeg's matroska muxer picks itself


@dataclass(frozen=True)
class OutputSpec:
    """Where and how the result is written."""

    path: Path
    kind: str
    """A key of VIDEO_CONTAINERS, or one of the seven audio formats."""
    audio_only: bool
    muxer: str
    audio_codec: str
    audio_args: tuple[str, ...]
    temp_suffix: str


def _ext(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def default_output_path(info: MediaInfo, fmt: str | None = None) -> Path:
    """``<stem>.scored.<ext>`` beside the input; ``fmt`` changes the extension."""
    ext = fmt or _ext(info.path)
    if info.is_audio_only and ext not in FORMATS:
        ext = "m4a"
    return info.path.with_name(f"{info.path.stem}.scored.{ext}")


def output_spec(info: MediaInfo, output: Path, fmt: str | None = None) -> OutputSpec:
    """Decide container and audio codec from the output name, ``--format`` and the input."""
    kind = (fmt or _ext(output)).lower()
    if kind in FORMATS:
        af = ff.AUDIO_FORMATS[kind]
        return OutputSpec(output, kind, True, af.muxer, af.codec, af.codec_args, f".{kind}")
    if kind not in VIDEO_CONTAINERS:
        allowed = ", ".join([*VIDEO_CONTAINERS, *FORMATS])
        raise OptionError(f"Unknown output format {kind!r}: use one of {allowed}.")
    if info.video is None:
        raise OptionError(
            f"{info.path.name} has no video, so it cannot become a .{kind}: "
            f"pick an audio format ({', '.join(FORMATS)})."
        )
    box = VIDEO_CONTAINERS[kind]
    if box.video_codecs is not None and info.video.codec not in box.video_codecs:
        raise OptionError(
            f"A {info.video.codec} video cannot be copied into .{kind} without re-encoding the "
            "picture: write .mkv or .mp4 instead."
        )
    codec, args = box.audio_codec, box.audio_args
    if kind == "mkv":
        source = info.audio.codec if info.audio else ""
        codec, args = _MKV_ENCODERS.get(source, _MKV_DEFAULT)
    return OutputSpec(output, kind, False, box.muxer, codec, args, box.temp_suffix)


def check_output_path(input_path: Path | None, output: Path) -> None:
    """Refuse, before any work, an output that would overwrite the input or cannot be written."""
    dst = output.resolve()
    src = input_path.resolve() if input_path is not None else None
    if src is not None and (src == dst or (dst.exists() and src.exists() and os.path.samefile(src, dst))):
        raise OutputPathError(
            f"Output {output} is the input itself: autoscore never overwrites its input; "
            "choose another name with -o."
        )
    parent = dst.parent
    if not parent.is_dir():
        raise OutputPathError(f"Output folder {parent} does not exist: create it or choose another -o.")
    if dst.is_dir():
        raise OutputPathError(f"Output {output} is a folder: give a file name with -o.")
    reason = unwritable_reason(parent)
    if reason is not None:
        raise OutputPathError(f"Output folder {parent} is not writable ({reason}): choose another -o.")


def audio_encode_args(spec: OutputSpec, path: Path, *, metadata_from: Path | None = None) -> list[str]:
    """Read f32le stereo on stdin, write the encoded audio file ``path``.

    For audio-only outputs this is the final file, so tags and chapters come across from
    the input (``metadata_from``); for video outputs the mux step copies them instead.
    """
    args = ["-loglevel", "error", "-y", "-f", "f32le", "-ar", str(MIX_RATE), "-ac", "2", "-i", "pipe:0"]
    if metadata_from is not None:
        args += ["-i", str(metadata_from), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
    args += ["-c:a", spec.audio_codec, *spec.audio_args]
    if spec.audio_only:
        args += ["-f", spec.muxer]
        if spec.kind == "m4a":
            args += ["-movflags", "+faststart"]
    args.append(str(path))
    return args


class Encoder:
    """A sink for mixed blocks: an ffmpeg fed as they arrive, writing ``path``."""

    def __init__(self, args: list[str], path: Path, *, what: str) -> None:
        self.path = path
        self._writer = ff.Writer(args, what=what)

    @classmethod
    def audio(cls, spec: OutputSpec, path: Path, *, metadata_from: Path | None = None) -> Encoder:
        """Encode to the audio file ``path`` (the output itself, or a track for ``mux``)."""
        return cls(audio_encode_args(spec, path, metadata_from=metadata_from), path,
                   what=f"encode audio for {spec.path.name}")

    @classmethod
    def video(cls, info: MediaInfo, spec: OutputSpec, path: Path) -> Encoder:
        """Encode and write the finished video ``path``, the input's picture copied in."""
        return cls(encode_mux_args(info, spec, path), path, what=f"write {spec.path.name}")

    def write(self, block: object) -> None:
        self._writer.write(block)  # type: ignore[arg-type]

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


def mux_args(
    info: MediaInfo,
    spec: OutputSpec,
    tracks: list[tuple[Path, str]],
    tmp_out: Path,
) -> list[str]:
    """The stream-copy mux: the input's picture, our encoded audio tracks, the input's metadata."""
    return _mux_args(info, spec, [(ffmpeg_python.input(str(path))["a:0"], title) for path, title in tracks],
                     tmp_out, {})


def encode_mux_args(info: MediaInfo, spec: OutputSpec, tmp_out: Path) -> list[str]:
    """One ffmpeg that encodes the mix arriving on stdin and muxes it with the input's picture.

    The same output as ``Encoder.audio`` followed by ``mux``, without writing, reading and
    copying the audio a second time or waiting for a second ffmpeg.
    """
    pcm = ffmpeg_python.input("pipe:0", f="f32le", ar=MIX_RATE, ac=2)
    args = spec.audio_args
    encode: dict[str, object] = {"c:a": spec.audio_codec}
    encode.update({flag.lstrip("-"): value for flag, value in zip(args[0::2], args[1::2], strict=True)})
    return _mux_args(info, spec, [(pcm["a:0"], "")], tmp_out, encode)


def _mux_args(
    info: MediaInfo,
    spec: OutputSpec,
    tracks: list[tuple[ffmpeg_python.nodes.FilterableStream, str]],
    tmp_out: Path,
    encode: dict[str, object],
) -> list[str]:
    """The input (first, so ``0:`` below is the input) gives picture, subtitles and metadata."""
    assert info.video is not None
    src = ffmpeg_python.input(str(info.path))
    streams = [src[str(info.video.index)], *(stream for stream, _ in tracks)]
    same_container = _ext(info.path) == spec.kind
    if same_container:
        streams.append(src["s?"])  # subtitles survive when the container stays the same
    opts: dict[str, object] = {
        "c": "copy",
        **encode,
        "map_metadata": 0,
        "map_chapters": 0,
        "f": spec.muxer,
        "disposition:a:0": "default",
    }
    if info.audio is not None:
        opts["map_metadata:s:a:0"] = f"0:s:{info.audio.index}"
    for n, (_, title) in enumerate(tracks):
        if title:
            opts[f"metadata:s:a:{n}"] = f"title={title}"
        if n:
            opts[f"disposition:a:{n}"] = "0"
    if spec.muxer in ("mp4", "mov"):
        opts["movflags"] = "+faststart"
    cmd = ffmpeg_python.output(*streams, str(tmp_out), **opts).overwrite_output().compile(cmd="ffmpeg")
    return ["-loglevel", "error", *cmd[1:]]


def mux(info: MediaInfo, spec: OutputSpec, tracks: list[tuple[Path, str]], tmp_out: Path) -> None:
    ff.run(mux_args(info, spec, tracks, tmp_out), what=f"write {spec.path.name}")
