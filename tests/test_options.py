"""One options object for every surface: its table, its checks, and that each surface builds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autoscore.batch import run_batch
from autoscore.cli import cli
from autoscore.errors import OptionError
from autoscore.media.render import VIDEO_CONTAINERS
from autoscore.music.backends.base import FORMATS
from autoscore.options import OPTION_SPECS, OUTPUT_FORMATS, ScoreOptions


def test_output_formats_are_the_renderers_containers_and_the_audio_formats() -> None:
    assert (*VIDEO_CONTAINERS, *FORMATS) == OUTPUT_FORMATS


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concurrency": 0}, "--concurrency is 0, out of range; use 1 to 32"),
        ({"concurrency": 2.5}, "--concurrency must be a whole number"),
        ({"timeout": 0}, "--timeout is 0, out of range; use more than 0"),
        ({"max_cost": -1}, "--max-cost is -1, out of range; use 0 or more"),
        ({"join": "glue"}, "--join is 'glue'; use one of crossfade, outpaint"),
        ({"format": "avi"}, "--format is 'avi'; use one of mp4"),
        ({"fallback": "silence"}, "--fallback is 'silence'; use one of procedural"),
        ({"backend": "suno"}, "--backend is 'suno'; use one of auto, procedural, wavespeed"),
        ({"loudness": -14}, "Unknown option 'loudness'"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(changes: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match="^" + message.replace("(", r"\(")) as err:
        ScoreOptions.of(**changes)  # type: ignore[arg-type]
    assert err.value.exit_code == 2


def test_every_ranged_option_has_a_field_and_a_cli_flag_with_the_same_range() -> None:
    fields = ScoreOptions.__dataclass_fields__
    help_text = CliRunner().invoke(cli, ["score", "--help"]).output
    for name in OPTION_SPECS:
        assert name in fields
        assert "--" + name.replace("_", "-") in help_text
    assert "[1<=x<=32]" in help_text and "[x>0]" in help_text  # --help shows the table's ranges


def test_the_key_is_trimmed_once_and_never_shown() -> None:
    opts = ScoreOptions(api_key="  wsk-options-secret-99 \n")
    assert opts.api_key == "wsk-options-secret-99"
    assert "wsk-options-secret" not in repr(opts)


def test_m4v_is_a_format_the_cli_accepts(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "missing.mp4"), "-f", "m4v"])
    # Past option parsing (a refused value exits 2), it fails only on the missing input: exit 1.
    assert result.exit_code == 1, result.output
    assert "Invalid value for '-f'" not in result.output
    refused = CliRunner().invoke(cli, ["score", str(tmp_path / "missing.mp4"), "-f", "m4x"])
    assert refused.exit_code == 2 and "Invalid value for '-f'" in refused.output  # the check can tell


def test_the_api_and_batch_refuse_what_the_cli_refuses(tmp_path: Path) -> None:
    from autoscore import score

    with pytest.raises(OptionError, match="--concurrency is 99"):
        score(tmp_path / "x.mp4", concurrency=99)
    with pytest.raises(OptionError, match="run_batch does not take 'stems'"):
        run_batch([tmp_path], stems=tmp_path / "stems")
    with pytest.raises(OptionError, match="Unknown option 'jobz'"):
        run_batch([tmp_path], jobz=3)


def test_the_joins_line_up_on_the_tempo_the_prompts_state() -> None:
    """The BPM the sections ask for is the BPM the assembler aligns beats with."""
    from autoscore.pipeline import plan_music

    job = plan_music(300.0, prompt="slow cinematic strings, 72 BPM", backend="procedural")
    assert job.tempo == 72
    assert all("72 BPM" in s.prompt for s in job.sections)
