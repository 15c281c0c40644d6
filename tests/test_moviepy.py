"""The moviepy effect end to end: a clip built in moviepy, scored, written by moviepy, measured.

The written audio is voice + ducked music. To see the music alone under the voice, the
same clip is also scored without its audio: same duration and preset, so the same music
(the generator is deterministic and cached), never ducked. Projecting the voiced mix onto
that music, window by window, gives the music's gain there; the voice is uncorrelated
with the music, so it hardly moves the projection, even through a lossy codec.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, level_between, rms
from moviepy import AudioFileClip, ColorClip, CompositeAudioClip, concatenate_videoclips

from autoscore.errors import NotesError, OptionError
from autoscore.integrations.moviepy import AutoScore, _cuts_if_asked, clip_cuts, score_clip
from autoscore.media.ffmpeg import decode_audio
from autoscore.media.probe import probe
from autoscore.models import Note
from autoscore.pipeline import plan_music
from autoscore.text.presets import load_preset

DURATION = 8.0
VOICE_AT = 2.0
"""voice.flac is trimmed speech 4.94 s long: speech on [2.0, 6.94) of the clip."""


def _video() -> object:
    parts = [ColorClip((64, 36), color, duration=DURATION / 2) for color in ((200, 0, 0), (0, 0, 200))]
    return concatenate_videoclips(parts)


@pytest.fixture(scope="module")
def voice() -> Iterator[AudioFileClip]:
    """One reader for the module, its buffer larger than the file, so it never seeks again.

    moviepy 2.1 closes its ffmpeg pipes only while ffmpeg still runs; once ffmpeg has
    finished (the whole file read) the pipes are left open and warn when collected,
    which this suite turns into errors. So they are closed here, once, at the end.
    """
    clip = AudioFileClip(str(DATA / "voice.flac"), buffersize=400_000)
    yield clip
    proc = clip.reader.proc
    if proc is not None and proc.poll() is not None:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    clip.close()


def _with_voice(video: object, voice: AudioFileClip) -> object:
    track = CompositeAudioClip([voice.with_start(VOICE_AT)]).with_duration(DURATION)
    return video.with_audio(track)  # type: ignore[attr-defined]


def _write(clip: object, path: Path) -> Path:
    # moviepy's temporary audio goes beside the output, not into the shared working folder,
    # where two test workers writing at once would trip over each other's file.
    clip.write_videofile(str(path), fps=10, preset="ultrafast", logger=None,  # type: ignore[attr-defined]
                         temp_audiofile_path=str(path.parent))
    return path


@dataclass(frozen=True)
class Written:
    voiced: Path
    music_only: Path
    clip: object
    audio_before: object
    frame_before: np.ndarray


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, voice: AudioFileClip) -> Written:
    d = tmp_path_factory.mktemp("moviepy")
    clip = _with_voice(_video(), voice)
    audio_before = clip.audio  # type: ignore[attr-defined]
    frame_before = np.array(audio_before.get_frame(3.0))
    voiced = _write(clip.with_effects([AutoScore()]), d / "voiced.mp4")  # type: ignore[attr-defined]
    music_only = _write(_video().with_effects([AutoScore()]), d / "music.mp4")  # type: ignore[attr-defined]
    return Written(voiced, music_only, clip, audio_before, frame_before)


def _music_gain(mix: np.ndarray, music: np.ndarray, start: float, end: float) -> float:
    """Least-squares gain of ``music`` inside ``mix`` between two times."""
    s = slice(int(start * 48000), int(end * 48000))
    return float(np.dot(mix[s], music[s]) / np.dot(music[s], music[s]))


def test_music_ducks_under_the_voice_by_the_preset_depth(written: Written) -> None:
    mix = decode_audio(written.voiced, 48000, 2).samples.mean(axis=1).astype(np.float64)
    music = decode_audio(written.music_only, 48000, 2).samples.mean(axis=1).astype(np.float64)
    before_voice = _music_gain(mix, music, 0.5, 1.9)
    under_voice = _music_gain(mix, music, VOICE_AT + 0.5, VOICE_AT + 4.4)
    assert before_voice > 0 and under_voice > 0
    ducked_db = 20 * np.log10(before_voice / under_voice)
    depth = load_preset(None).mix.duck_depth_db
    assert 0.75 * depth <= ducked_db <= depth + 3, ducked_db


def test_music_is_audible_where_the_clip_was_silent(written: Written) -> None:
    assert level_between(written.voiced, 1.2, 1.9) > -40
    assert level_between(written.music_only, 1.2, 1.9) > -40


def test_written_clip_keeps_its_length_and_picture(written: Written) -> None:
    info = probe(written.voiced)
    assert info.video is not None and info.audio is not None
    assert info.duration == pytest.approx(DURATION, abs=0.15)


def test_callers_clip_is_not_modified(written: Written) -> None:
    clip = written.clip
    assert clip.audio is written.audio_before  # type: ignore[attr-defined]
    assert np.array_equal(np.array(clip.audio.get_frame(3.0)), written.frame_before)  # type: ignore[attr-defined]


def test_a_cut_clip_is_scored_on_its_own_duration(voice: AudioFileClip) -> None:
    cut = _with_voice(_video(), voice).subclipped(1.0, 4.0)  # type: ignore[attr-defined]
    scored = score_clip(cut, audio_fps=48000)
    assert scored is not cut and scored.duration == pytest.approx(3.0)
    samples = scored.audio.to_soundarray(fps=48000)
    assert samples.shape[0] == pytest.approx(3 * 48000, abs=2)
    # 0.2-0.9 s of the cut is 1.2-1.9 s of the clip: silent there, music now.
    quiet = samples[int(0.2 * 48000): int(0.9 * 48000)]
    assert rms(quiet) > 0.01


def test_notes_as_notes_and_cache_like_the_cli(tmp_path: Path) -> None:
    states: list[str] = []

    class Recorder:
        def stage(self, name: str) -> None:
            pass

        def chunk(self, index: int, total: int, state: str) -> None:
            states.append(state)

        def warn(self, message: str) -> None:
            pass

    notes = [Note(0.0, "calm opening"), Note(2.0, "tense build [energy: high]")]
    effect = AutoScore(notes=notes, cache_dir=tmp_path / "cache", reporter=Recorder())
    effect.copy().apply(_video())
    assert "done" in states and "cached" not in states
    states.clear()
    _video().with_effects([effect])  # type: ignore[attr-defined]
    assert states and all(s in ("queued", "cached") for s in states)


def test_bad_calls_raise_errors_a_user_can_act_on(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="with_duration"):
        score_clip(ColorClip((16, 16), (0, 0, 0)))
    with pytest.raises(OptionError, match="audio_fps"):
        score_clip(_video(), audio_fps=1000)
    with pytest.raises(NotesError, match="does not exist"):
        score_clip(_video(), notes=tmp_path / "missing.txt")
    with pytest.raises(NotesError, match="parse_notes_text"):
        score_clip(_video(), notes=["0:00 calm"])  # type: ignore[list-item]


def test_the_api_key_never_shows_in_the_effect() -> None:
    effect = AutoScore(backend="procedural", api_key="sk-secret-1234")
    assert "sk-secret-1234" not in repr(effect)


def test_the_effect_follows_the_cuts_of_the_clip_itself(voice: AudioFileClip) -> None:
    """Cuts come from the clip's own frames (a concatenation is no file): three held colours,
    a montage of quick ones between them. ``cuts='off'`` decodes nothing; ``on`` with an
    audio-only clip is refused."""
    colours = [(200, 40, 40), (40, 40, 200), (40, 200, 40), (220, 220, 60), (60, 200, 220)]
    shots = [ColorClip((160, 90), colours[0], duration=8)]
    shots += [ColorClip((160, 90), colours[1 + k % 4], duration=1) for k in range(8)]
    shots += [ColorClip((160, 90), colours[0], duration=8)]
    video = concatenate_videoclips([s.with_fps(25) for s in shots])
    found = clip_cuts(video)
    assert found.cuts == pytest.approx([8 + k for k in range(9)], abs=0.04)
    job = plan_music(video.duration, (), cuts=found, backend="procedural")
    energies = {s.start: s.energy for s in job.sections}
    assert job.plan.source == "cuts" and max(energies.values()) == energies[8.0]
    assert job.plan.downbeat is not None
    assert _cuts_if_asked(video, "off", False) is None
    with pytest.raises(OptionError, match="audio only"):
        score_clip(voice, cuts="on")  # the module's reader: a new one would leak moviepy's pipes
