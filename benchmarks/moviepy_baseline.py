"""The same scoring job written the usual moviepy way: the baseline autoscore is measured against.

This is what a user would write by hand: open the clip, lay the music under its sound,
turn the music down while someone speaks, write the file. The music is the very file
autoscore made (its level-set ``music`` stem) and the speech regions are the ones
autoscore found, so the two jobs differ only in how the result is put together.
``write_videofile`` re-encodes every frame with libx264 at moviepy's defaults.

    python benchmarks/moviepy_baseline.py INPUT MUSIC REGIONS_JSON OUTPUT [--duck-db 12]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def score_with_moviepy(source: Path, music_path: Path, regions: list[tuple[float, float]], output: Path,
                       duck_db: float = 12.0) -> None:
    from moviepy import AudioFileClip, CompositeAudioClip, VideoFileClip, afx

    video = VideoFileClip(str(source))
    music = AudioFileClip(str(music_path)).with_duration(video.duration)
    duck = 10 ** (-duck_db / 20)
    music = music.with_effects([afx.MultiplyVolume(duck, start_time=s, end_time=e) for s, e in regions])
    layers = [music] if video.audio is None else [video.audio, music]
    final = video.with_audio(CompositeAudioClip(layers))
    final.write_videofile(str(output), codec="libx264", audio_codec="aac", logger=None)
    video.close()
    music.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("music", type=Path)
    parser.add_argument("regions", type=Path, help="JSON list of [start, end] seconds of speech")
    parser.add_argument("output", type=Path)
    parser.add_argument("--duck-db", type=float, default=12.0)
    args = parser.parse_args()
    regions = [(float(s), float(e)) for s, e in json.loads(args.regions.read_text())]
    score_with_moviepy(args.input, args.music, regions, args.output, args.duck_db)


if __name__ == "__main__":
    main()
