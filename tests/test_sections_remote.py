"""Sections against the WaveSpeed emulator over loopback, and ``--sections`` on the command line.

What the provider receives is read from the emulator (``submitted_bodies``, its counts),
not from the plan: the words of every note must arrive, and the joins must sit on the
section boundaries.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import make_media, run_cli
from emulator_fixtures import FAST_RETRY, TEST_KEY, RecordingClock, make_client

from autoscore.emulator import Emulator
from autoscore.models import Audio
from autoscore.music.backends.base import ContinuationRequest, GenerationRequest
from autoscore.music.backends.procedural import ProceduralBackend
from autoscore.music.backends.wavespeed import Timeouts, WaveSpeedBackend
from autoscore.music.cache import AudioCache
from autoscore.music.generate import ChunkStore, generate_chunks, request_for
from autoscore.pipeline import plan_music
from autoscore.text.notes import parse_notes_text
from autoscore.text.presets import GenerationSettings

NOTES = """\
0:00 misty harbour at dawn [energy: low]
0:08 fishing boats head out
0:16 a storm rolls in, waves crash [energy: high]
"""
SCENES = ("misty harbour at dawn", "fishing boats head out", "a storm rolls in, waves crash")


def _remote(emulator: Emulator) -> list[str]:
    return ["--backend", "wavespeed", "--api-base", emulator.base_url, "--api-key", TEST_KEY]


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 24 s video with a voice, and its three notes beside it."""
    folder = tmp_path_factory.mktemp("harbour")
    video = make_media(folder / "harbour.mp4", seconds=24, acodec="aac")
    notes = folder / "harbour.notes.txt"
    notes.write_text(NOTES)
    return video, notes


def test_every_note_reaches_the_provider_and_the_joins_sit_on_the_boundaries(
    harbour: tuple[Path, Path], emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    video, _ = harbour
    code, out, err = run_cli(["score", str(video), "-o", str(tmp_path / "out.mp4"), "--json",
                              "--cache-dir", str(tmp_path / "cache"), *_remote(emulator)], capsys)
    assert code == 0, err
    result = json.loads(out)
    plan = result["plan"]
    assert plan["sections_policy"]["chosen"] == "each" and plan["sections_policy"]["asked"] == "auto"
    bodies = emulator.submitted_bodies
    assert len(bodies) == 3 and emulator.stats["submits"] == 3
    for scene in SCENES:
        assert any(scene in b["prompt"] for b in bodies), scene
    assert all("cues" not in b for b in bodies), "the API has no cues field: the words are in the prompt"
    # Each request lasts its section plus half a crossfade at each join, so the joins are
    # centred on 8 s and 16 s: the 4 s crossfades run 6-10 s and 14-18 s.
    assert sorted(b["duration"] for b in bodies) == [10, 10, 12]
    by_scene = {scene: b["duration"] for b in bodies for scene in SCENES if scene in b["prompt"]}
    assert [by_scene[s] for s in SCENES] == [10, 12, 10]
    assert [c["start"] + c["overlap_before"] / 2 for c in plan["chunks"][1:]] == [8, 16]
    assert [c["sections"] for c in plan["chunks"]] == [[0], [1], [2]]
    assert result["cost"] == pytest.approx(3 * 0.0217)


def test_a_failure_halfway_keeps_the_finished_sections_and_a_rerun_pays_for_the_rest(
    harbour: tuple[Path, Path], emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    video, _ = harbour
    args = ["score", str(video), "-o", str(tmp_path / "out.mp4"), "--json", "--sections", "each",
            "--cache-dir", str(tmp_path / "cache"), *_remote(emulator)]
    emulator.faults.update(fail_submit_number=2, fail_submit_status=503)
    code, _, err = run_cli(args, capsys)
    assert code == 1 and err.startswith("Error:") and "Traceback" not in err
    assert emulator.stats["submits"] == 3, "the other sections ran to their end and were kept"
    emulator.reset()
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads(out)
    assert emulator.stats["submits"] == 1 and (result["requests"], result["cache_hits"]) == (1, 2)
    assert result["cost"] == pytest.approx(0.0217), "only the missing section was paid for"


class _Records:
    """Put before a backend: it remembers the requests it was handed (what generate made of the plan)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[GenerationRequest | ContinuationRequest] = []

    async def generate(self, request: GenerationRequest) -> Audio:
        self.seen.append(request)
        return await super().generate(request)  # type: ignore[misc]  # the backend after this mixin

    async def outpaint(self, request: ContinuationRequest) -> Audio:
        self.seen.append(request)
        return await super().outpaint(request)  # type: ignore[misc]


class _Recorded(_Records, WaveSpeedBackend):
    """The real client, remembering the requests it was handed."""


def test_outpaint_sections_continue_with_their_own_words_and_cues(emulator: Emulator, tmp_path: Path) -> None:
    job = plan_music(24, parse_notes_text(NOTES).notes, backend="wavespeed", api_key=TEST_KEY,
                     sections="outpaint")
    assert [(c.start, c.duration) for c in job.plan.chunks] == [(0, 8), (8, 8), (16, 8)]
    backend = _Recorded(api_key=TEST_KEY, base_url=emulator.base_url, retry=FAST_RETRY,
                        timeouts=Timeouts(connect=2.0, submit=10.0, poll=5.0, download=10.0, upload=10.0,
                                          job=60.0),
                        clock=RecordingClock(), poll_interval=0.02, poll_interval_max=0.05, seed=7)
    stats = generate_chunks(job.plan.chunks, backend, AudioCache(tmp_path / "cache"),
                            ChunkStore(tmp_path / "s"), GenerationSettings(format="flac"), join=job.plan.join)
    assert (stats.requests, stats.continuations) == (3, 2)
    assert (emulator.stats["submits"], emulator.stats["outpaints"]) == (3, 2)
    first, *later = backend.seen
    assert isinstance(first, GenerationRequest) and all(isinstance(r, ContinuationRequest) for r in later)
    for request, scene in zip(backend.seen, SCENES, strict=True):
        # The remote model hears words only: cues stay out of its requests (and cache keys).
        assert request.cues == () and scene in request.prompt
    # On the extension's clock: each continuation's own section starts at the join, 0 s.
    later_cues = [[(q.index, q.start, q.end) for q in c.cues] for c in job.plan.chunks[1:]]
    assert later_cues == [[(1, 0, 8)], [(2, 0, 8)]]
    bodies = emulator.submitted_bodies
    assert [b.get("extend_seconds_after") for b in bodies[1:]] == [8, 8]
    assert all("cues" not in b for b in bodies)


SPLIT_NOTES = """\
0:00 calm intro over the title
0:12 [silence]
0:20 harbour at work, cranes and ships [energy: high]
2:20 evening falls, the lights come on [no drums]
"""
SPLIT_SCENES = ("calm intro over the title", "harbour at work, cranes and ships",
                "evening falls, the lights come on")


@pytest.mark.parametrize(("sections", "join"), [
    ("each", "crossfade"), ("outpaint", "crossfade"), ("blend", "crossfade"), ("blend", "outpaint"),
])
def test_what_the_provider_receives_is_what_the_plan_priced(
    emulator: Emulator, tmp_path: Path, sections: str, join: str,
) -> None:
    """Two music spans (a [silence] note between), the second past 120 s: the requests the
    emulator receives, their kinds and lengths, and the money spent are the plan's."""
    job = plan_music(170, parse_notes_text(SPLIT_NOTES).notes, backend="wavespeed", api_key=TEST_KEY,
                     sections=sections, join=join)
    assert job.plan.spans == ((0, 12), (20, 170))
    priced = {p.name: p for p in job.plan.policy_costs}[sections]
    backend = make_client(emulator)
    generate_chunks(job.plan.chunks, backend, AudioCache(tmp_path / "cache"), ChunkStore(tmp_path / "s"),
                    GenerationSettings(format="flac"), join=job.plan.join)
    bodies = emulator.submitted_bodies
    assert len(bodies) == job.plan.requests == priced.requests
    assert emulator.stats["outpaints"] == priced.continuations
    assert backend.spent == pytest.approx(job.plan.cost)
    lengths = [b.get("extend_seconds_after", b.get("duration")) for b in bodies]
    assert all(isinstance(n, int) and 1 <= n <= 120 for n in lengths), lengths
    for scene in SPLIT_SCENES:
        assert any(scene in b["prompt"] for b in bodies), scene


# --- the command line ---------------------------------------------------------------


def test_plan_json_shows_the_policy_and_what_each_request_carries(
    harbour: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    video, _ = harbour
    base = ["plan", str(video), "--json", "--backend", "wavespeed", "--api-key", TEST_KEY]
    code, out, err = run_cli([*base, "--sections", "blend"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["sections_policy"]["chosen"] == "blend" and data["requests"] == 1
    assert data["chunks"][0]["sections"] == [0, 1, 2]
    assert all(scene in data["chunks"][0]["prompt"] for scene in SCENES)
    code, out, err = run_cli([*base, "--max-cost", "0.05"], capsys)
    data = json.loads(out)
    assert code == 0 and data["sections_policy"]["chosen"] == "blend"
    assert data["sections_policy"]["costs"]["each"]["cost"] == pytest.approx(0.0651)


@pytest.mark.parametrize(("extra", "message"), [
    (["--sections", "each", "--max-cost", "0.05"],
     "Error: --sections each needs 3 requests ($0.0651), more than --max-cost $0.0500 allows: use --sections "
     "blend ($0.0217), or raise --max-cost."),
    (["--sections", "each", "--join", "outpaint"], "Error: --sections each joins one request per section"),
    (["--sections", "every"], "Invalid value for '--sections'"),
])
def test_a_bad_sections_choice_is_one_line_and_exit_2(
    harbour: tuple[Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str,
) -> None:
    video, _ = harbour
    for command in (["plan", str(video)], ["score", str(video), "--dry-run"]):
        code, _out, err = run_cli([*command, "--backend", "wavespeed", "--api-key", TEST_KEY, *extra], capsys)
        assert code == 2 and message in err and "Traceback" not in err
        if message.startswith("Error:"):
            assert err.count("\n") == 1


def test_a_preset_sets_the_policy_and_an_explicit_flag_overrides_it(
    harbour: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    video, _ = harbour
    preset = tmp_path / "harbour.toml"
    preset.write_text('extends = "documentary"\n[music]\nsections = "blend"\n')
    base = ["plan", str(video), "--json", "--preset", str(preset), "--backend", "wavespeed",
            "--api-key", TEST_KEY]
    code, out, err = run_cli(base, capsys)
    assert code == 0, err
    policy = json.loads(out)["sections_policy"]
    assert (policy["chosen"], policy["asked"]) == ("blend", "blend")
    code, out, err = run_cli([*base, "--sections", "each"], capsys)
    assert code == 0 and json.loads(out)["sections_policy"]["chosen"] == "each"
    code, out, _ = run_cli(["presets", "show", str(preset)], capsys)
    assert 'sections = "blend"' in out
    for command in ("score", "batch", "bed"):
        code, out, _ = run_cli([command, "--help"], capsys)
        assert code == 0 and "--sections [auto|each|outpaint|blend]" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[music]\nsections = "many"\n')
    code, _, err = run_cli(["plan", str(video), "--preset", str(bad)], capsys)
    assert code == 2 and "[music] sections is 'many'; use one of auto, each, outpaint, blend" in err


class _RecordedComposer(_Records, ProceduralBackend):
    """The embedded composer, remembering the requests it was handed."""


def test_the_composer_is_handed_the_cues_and_a_moved_note_costs_the_remote_nothing(tmp_path: Path) -> None:
    """The composer reads cues, so they reach it on each request's own clock; a remote
    request leaves them out, so its cache key depends on its words alone."""
    job = plan_music(24, parse_notes_text(NOTES).notes, backend="procedural", sections="outpaint")
    composer = _RecordedComposer()
    generate_chunks(job.plan.chunks, composer, AudioCache(tmp_path / "cache"), ChunkStore(tmp_path / "s"),
                    GenerationSettings(format="wav"), join=job.plan.join)
    assert [r.cues for r in composer.seen] == [c.cues for c in job.plan.chunks]
    assert [[(q.index, q.start) for q in r.cues] for r in composer.seen[1:]] == [[(1, 0)], [(2, 0)]]
    chunk = job.plan.chunks[0]
    moved = replace(chunk, cues=tuple(replace(q, end=q.end + 0.5) for q in chunk.cues))
    settings = GenerationSettings(format="wav")
    remote = [request_for(c, settings, cues=WaveSpeedBackend.reads_cues) for c in (chunk, moved)]
    keys = {AudioCache.key_for("wavespeed", "m", r) for r in remote}
    assert len(keys) == 1
    local = [request_for(c, settings, cues=ProceduralBackend.reads_cues) for c in (chunk, moved)]
    assert len({AudioCache.key_for("procedural", "m", r) for r in local}) == 2
