"""Presets: the built-in library, the search path, inheritance and validation messages."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from autoscore.errors import OptionError, PresetError, UsageError
from autoscore.text.presets import (
    FORMATS,
    PRESET_FIELDS,
    TABLES,
    Preset,
    builtin_dir,
    list_presets,
    load_preset,
    override,
    preset_dirs,
    preset_to_toml,
)

REQUIRED = (
    "default",
    "vlog",
    "cinematic-trailer",
    "documentary",
    "corporate-explainer",
    "lofi-study",
    "podcast-intro",
    "podcast-outro",
    "social-hype",
    "game-ambience",
    "noir-trip-hop",
    "ambient-calm",
    "product-launch",
    "emotional-wedding",
    "sports-montage",
)
COMPOSER_WORDS = (
    "piano",
    "rhodes",
    "strings",
    "pads",
    "guitar",
    "bass",
    "drums",
    "synth",
    "bells",
    "brass",
    "trip-hop",
    "lo-fi",
    "house",
    "rock",
    "cinematic percussion",
)


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the machine's own user presets and AUTOSCORE_PRESETS out of these tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("AUTOSCORE_PRESETS", raising=False)
    return tmp_path / "config" / "autoscore" / "presets"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# The built-in library


def test_library_has_every_required_preset() -> None:
    names = [info.name for info in list_presets()]
    assert sorted(names) == sorted(REQUIRED)  # each once, and nothing unlisted
    assert all(info.origin == "built-in" for info in list_presets())


@pytest.mark.parametrize("name", REQUIRED)
def test_every_builtin_loads_valid_and_self_described(name: str) -> None:
    preset = load_preset(name)
    assert preset.name == name
    assert preset.source == builtin_dir() / f"{name}.toml"
    assert preset.description and len(preset.description) < 120
    assert preset.music.tempo is not None and preset.music.key and preset.music.instruments
    style = preset.music.style.lower()
    assert "instrumental" in style and len(style) <= 170
    assert any(word in style for word in COMPOSER_WORDS)
    # Every value is inside its documented range.
    for dotted, spec in PRESET_FIELDS.items():
        table, key = dotted.split(".")
        value = getattr(getattr(preset, table), key)
        if spec.kind == "list":
            value = list(value)
        assert spec.problem(value) is None, (name, dotted, value)


def test_builtins_are_tuned_for_their_use() -> None:
    presets = {name: load_preset(name) for name in REQUIRED}
    for name in ("podcast-intro", "podcast-outro"):
        assert presets[name].structure.mode == "beds"
        assert presets[name].mix.target_lufs == -16.0
    for name in ("vlog", "social-hype", "cinematic-trailer", "sports-montage", "product-launch"):
        assert presets[name].mix.target_lufs == -14.0
    assert presets["podcast-intro"].structure.intro > 0 and presets["podcast-outro"].structure.outro > 0
    # Music that is the show sits louder than music under narration.
    assert presets["cinematic-trailer"].mix.music_level_db > presets["documentary"].mix.music_level_db
    assert presets["sports-montage"].music.tempo > presets["ambient-calm"].music.tempo  # type: ignore[operator]
    assert presets["social-hype"].structure.min_section < presets["documentary"].structure.min_section
    assert "drum" in presets["ambient-calm"].music.negative


def test_default_file_matches_the_dataclass_defaults() -> None:
    """`load_preset()` and `Preset()` must not drift apart: stages may use either."""
    loaded = load_preset()
    assert loaded.name == "default"
    assert replace(loaded, source=None) == Preset()


def test_podcast_outro_inherits_from_podcast_intro() -> None:
    intro, outro = load_preset("podcast-intro"), load_preset("podcast-outro")
    assert outro.parents == ("podcast-intro",)
    assert outro.mix.duck_depth_db == intro.mix.duck_depth_db  # inherited
    assert outro.music.tempo == intro.music.tempo  # same theme family
    assert (outro.structure.intro, outro.structure.outro) == (0.0, 30.0)  # overridden
    assert outro.music.style != intro.music.style


@pytest.mark.parametrize("name", REQUIRED)
def test_preset_to_toml_round_trips(name: str, tmp_path: Path) -> None:
    preset = load_preset(name)
    text = preset_to_toml(preset)
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    again = load_preset(path)
    assert replace(again, source=None, parents=()) == replace(preset, source=None, parents=())
    assert "extends" not in tomllib.loads(text)  # inheritance is resolved in the output


def test_preset_to_toml_escapes_text(tmp_path: Path) -> None:
    preset = replace(Preset(), description='quotes " and \\ backslash\nand a newline')
    path = tmp_path / "odd.toml"
    path.write_text(preset_to_toml(preset), encoding="utf-8")
    assert load_preset(path).description == preset.description


# --------------------------------------------------------------------------------------
# The search path


def test_user_folder_overrides_builtin(isolated_search_path: Path) -> None:
    write(isolated_search_path, "vlog", 'description = "mine"\n[music]\ntempo = 101\n')
    preset = load_preset("vlog")
    assert preset.music.tempo == 101
    assert preset.description == "mine"
    assert preset.music.style == Preset().music.style  # no extends: dataclass defaults underneath
    info = {i.name: i for i in list_presets()}["vlog"]
    assert info.origin == "user" and info.description == "mine"


def test_env_folders_override_user_and_builtin(
    isolated_search_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(isolated_search_path, "vlog", "[music]\ntempo = 101\n")
    write(second, "vlog", "[music]\ntempo = 102\n")
    write(second, "only-here", 'description = "from env"\n')
    write(first, "vlog", "[music]\ntempo = 103\n")
    monkeypatch.setenv("AUTOSCORE_PRESETS", f"{first}{__import__('os').pathsep}{second}")
    assert load_preset("vlog").music.tempo == 103
    assert load_preset("only-here").description == "from env"
    assert [origin for origin, _ in preset_dirs()] == [
        "AUTOSCORE_PRESETS",
        "AUTOSCORE_PRESETS",
        "user",
        "built-in",
    ]
    infos = {i.name: i for i in list_presets()}
    assert infos["vlog"].path == first / "vlog.toml"
    assert infos["only-here"].origin == "AUTOSCORE_PRESETS"


def test_same_named_preset_can_extend_the_one_it_shadows(isolated_search_path: Path) -> None:
    write(isolated_search_path, "vlog", 'extends = "vlog"\n[mix]\nduck_depth_db = 20\n')
    builtin = load_preset(builtin_dir() / "vlog.toml")  # type: ignore[operator]
    mine = load_preset("vlog")
    assert mine.mix.duck_depth_db == 20
    assert mine.music == builtin.music
    assert mine.parents == ("vlog", "default")


def test_direct_path(tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere", "my-style", 'extends = "noir-trip-hop"\n[music]\nenergy = 0.9\n')
    for ref in (path, str(path)):
        preset = load_preset(ref)
        assert preset.name == "my-style"
        assert preset.music.energy == 0.9
        assert preset.music.tempo == load_preset("noir-trip-hop").music.tempo
    named = write(tmp_path, "x", 'name = "Shown name"\nextends = "elsewhere/my-style.toml"\n')
    preset = load_preset(named)
    assert preset.name == "Shown name" and preset.music.energy == 0.9  # relative extends path


def test_none_and_blank_mean_default() -> None:
    assert load_preset(None).name == "default"
    assert load_preset("").name == "default"


# --------------------------------------------------------------------------------------
# override() for CLI options


def test_override_checks_against_the_table() -> None:
    preset = override(load_preset("vlog"), {"mix.duck_depth_db": 6, "music.instruments": "piano, harp"})
    assert preset.mix.duck_depth_db == 6.0 and isinstance(preset.mix.duck_depth_db, float)
    assert preset.music.instruments == ("piano", "harp")
    with pytest.raises(
        OptionError, match=r"Setting mix\.duck_depth_db is 50, out of range; use a number from 0 to 40 dB"
    ):
        override(preset, {"mix.duck_depth_db": 50})
    with pytest.raises(OptionError, match=r"Unknown preset setting 'mix\.depth'"):
        override(preset, {"mix.depth": 1})
    with pytest.raises(OptionError, match="mode 'beds' needs intro or outro"):
        override(preset, {"structure.mode": "beds"})


def test_field_table_matches_the_issue() -> None:
    ranges = {d: (s.low, s.high) for d, s in PRESET_FIELDS.items() if s.low is not None}
    assert ranges == {
        "generation.steps": (1, 100),
        "generation.guidance": (0, 25),
        "music.tempo": (40, 220),
        "music.energy": (0, 1),
        "mix.duck_depth_db": (0, 40),
        "mix.attack_ms": (5, 2000),
        "mix.release_ms": (20, 5000),
        "mix.lookahead_ms": (0, 2000),
        "mix.hold_ms": (0, 5000),
        "mix.min_speech_ms": (0, 2000),
        "mix.music_level_db": (-40, 0),
        "mix.target_lufs": (-40, -5),
        "mix.true_peak_db": (-9, 0),
        "mix.fade_in": (0, 30),
        "mix.fade_out": (0, 60),
        "mix.crossfade": (0.5, 20),
        "structure.intro": (0, 600),
        "structure.outro": (0, 600),
        "structure.min_section": (1, 600),
        "structure.max_section": (5, 600),
    }
    assert (
        PRESET_FIELDS["generation.format"].choices
        == FORMATS
        == ("mp3", "wav", "flac", "ogg", "opus", "m4a", "aac")
    )
    assert PRESET_FIELDS["mix.duck_on"].choices == ("speech", "loud")
    assert PRESET_FIELDS["structure.mode"].choices == ("full", "beds")
    assert {d.split(".")[0] for d in PRESET_FIELDS} == set(TABLES)


# --------------------------------------------------------------------------------------
# Bad presets: each a PresetError (exit 2) naming the file, the key and what is allowed.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[mix]\nduck_depth_db = 50\n",
            "[mix] duck_depth_db is 50, out of range; use a number from 0 to 40 dB.",
        ),
        (
            "[generation]\nsteps = 0\n",
            "[generation] steps is 0, out of range; use a whole number from 1 to 100.",
        ),
        ("[generation]\nsteps = 8.5\n", "[generation] steps must be a whole number (got a number 8.5)"),
        (
            "[generation]\nguidance = 30\n",
            "[generation] guidance is 30, out of range; use a number from 0 to 25.",
        ),
        (
            '[generation]\nformat = "wma"\n',
            "[generation] format is 'wma'; use one of mp3, wav, flac, ogg, opus",
        ),
        (
            "[music]\ntempo = 30\n",
            "[music] tempo is 30, out of range; use a whole number from 40 to 220 BPM.",
        ),
        ('[music]\ntempo = "fast"\n', "[music] tempo must be a whole number (got text 'fast')"),
        ("[music]\nenergy = 1.5\n", "[music] energy is 1.5, out of range; use a number from 0 to 1."),
        ("[music]\nenergy = true\n", "[music] energy must be a number (got true/false True)"),
        ("[music]\nstyle = 5\n", "[music] style must be text in quotes (got a whole number 5)"),
        ('[music]\ninstruments = "piano"\n', "[music] instruments must be a list of words"),
        ('[music]\ninstruments = ["piano", 3]\n', "[music] instruments must be a list of words"),
        ('[music]\nstyle = "  "\n', "[music] style is empty"),
        ("[mix]\nattack_ms = 1\n", "[mix] attack_ms is 1, out of range; use a number from 5 to 2000 ms."),
        ("[mix]\nrelease_ms = 6000\n", "release_ms is 6000, out of range; use a number from 20 to 5000 ms."),
        ("[mix]\nlookahead_ms = -1\n", "lookahead_ms is -1, out of range; use a number from 0 to 2000 ms."),
        ("[mix]\nhold_ms = 5001\n", "hold_ms is 5001, out of range"),
        ("[mix]\nmin_speech_ms = 2500\n", "min_speech_ms is 2500, out of range"),
        ('[mix]\nduck_on = "music"\n', "[mix] duck_on is 'music'; use one of speech, loud."),
        ("[mix]\nmusic_level_db = 3\n", "music_level_db is 3, out of range; use a number from -40 to 0 LU."),
        ("[mix]\ntarget_lufs = -3\n", "target_lufs is -3, out of range; use a number from -40 to -5 LUFS."),
        ("[mix]\ntrue_peak_db = -10\n", "true_peak_db is -10, out of range; use a number from -9 to 0 dBTP."),
        ("[mix]\nfade_in = 31\n", "fade_in is 31, out of range"),
        ("[mix]\nfade_out = 61\n", "fade_out is 61, out of range"),
        ("[mix]\ncrossfade = 0.2\n", "crossfade is 0.2, out of range; use a number from 0.5 to 20 s."),
        ('[structure]\nmode = "intro"\n', "[structure] mode is 'intro'; use one of full, beds."),
        ("[structure]\nintro = 700\n", "intro is 700, out of range; use a number from 0 to 600 s."),
        ("[structure]\noutro = -1\n", "outro is -1, out of range"),
        (
            "[structure]\nmin_section = 0.5\n",
            "min_section is 0.5, out of range; use a number from 1 to 600 s.",
        ),
        ('[structure]\nmode = "beds"\n', "[structure] mode 'beds' needs intro or outro above 0 seconds."),
        ("[mix]\nduck_deph_db = 3\n", "unknown key 'duck_deph_db' in [mix]. Did you mean 'duck_depth_db'?"),
        ("[mix]\ntempo = 90\n", "unknown key 'tempo' in [mix]. It belongs in [music]."),
        ("tempo = 90\n", "unknown key 'tempo'. It belongs in [music]."),
        ("colour = 1\n", "unknown key 'colour'. Known keys: name, description, extends, generation"),
        ("[musik]\nx = 1\n", "unknown key 'musik'. Did you mean 'music'?"),
        ("mix = 3\n", "mix must be a table [mix], got a whole number 3."),
        ("description = 3\n", "description must be text in quotes, got a whole number 3."),
        ("[mix\n", "is not valid TOML"),
    ],
)
def test_bad_preset_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad", text)
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert f"Preset file {path}" in str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(PresetError) as info:
        load_preset("vlgo")
    message = str(info.value)
    assert message.startswith("Preset 'vlgo' not found. Available: ambient-calm, cinematic-trailer,")
    assert "Did you mean 'vlog'?" in message


def test_missing_file_path(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="does not exist: check the path"):
        load_preset(tmp_path / "nope.toml")


def test_extends_itself_without_anything_to_shadow(tmp_path: Path) -> None:
    path = write(tmp_path, "loop", 'extends = "loop"\n')
    with pytest.raises(PresetError, match=r"extends itself \('loop'\) and there is no other preset"):
        load_preset(path)


def test_extends_cycle(isolated_search_path: Path) -> None:
    write(isolated_search_path, "a", 'extends = "b"\n')
    write(isolated_search_path, "b", 'extends = "c"\n')
    write(isolated_search_path, "c", 'extends = "a"\n')
    with pytest.raises(PresetError, match=r"extends 'a', which leads back to itself \(a -> b -> c -> a\)"):
        load_preset("a")


def test_extends_cycle_by_path(tmp_path: Path) -> None:
    write(tmp_path, "one", 'extends = "two.toml"\n')
    two = write(tmp_path, "two", 'extends = "./one.toml"\n')
    with pytest.raises(PresetError, match="leads back to itself"):
        load_preset(two)


def test_missing_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "orphan", 'extends = "no-such-preset"\n')
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert f"Preset file {path}: extends 'no-such-preset', which is missing." in str(info.value)
    path = write(tmp_path, "orphan2", 'extends = "gone.toml"\n')
    with pytest.raises(PresetError, match=r"extends 'gone\.toml', but .*gone\.toml does not exist"):
        load_preset(path)


def test_error_in_parent_names_the_parent_file(isolated_search_path: Path, tmp_path: Path) -> None:
    parent = write(isolated_search_path, "broken-base", "[mix]\nduck_depth_db = 99\n")
    child = write(tmp_path, "child", 'extends = "broken-base"\n')
    with pytest.raises(PresetError, match=f"Preset file {parent}: \\[mix\\] duck_depth_db is 99"):
        load_preset(child)


def test_broken_preset_is_listed_with_its_error(isolated_search_path: Path) -> None:
    write(isolated_search_path, "oops", "[mix]\nfade_in = -1\n")
    info = {i.name: i for i in list_presets()}["oops"]
    assert info.description.startswith("(invalid) Preset file")
    assert "fade_in is -1, out of range" in info.description
