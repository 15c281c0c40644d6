"""Where presets live, and how a name becomes a preset: searching, reading, inheriting.

Kept apart from the settings themselves (``preset_schema``) because this is the part that
knows about folders, environment variables and files; callers still import everything,
schema included, from here, so "a preset" stays one import.

Where presets are found, first match wins:

1. a path (``--preset my.toml``, anything ending in ``.toml`` or containing a slash);
2. the folders in ``AUTOSCORE_PRESETS`` (``os.pathsep``-separated), in order;
3. the user folder ``platformdirs.user_config_dir("autoscore")/presets``;
4. the built-in library (``autoscore/_presets`` in a wheel, ``presets/`` in a checkout).

So a user's ``vlog.toml`` replaces the built-in ``vlog``; it may even say
``extends = "vlog"`` to tweak the built-in rather than copy it (a preset that names itself
builds on the next preset of that name further down the list).

``extends`` merges table by table: the child's keys replace the parent's, keys it does not
name are inherited, lists are replaced whole.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import platformdirs

from ..errors import PresetError
from .preset_schema import (
    DEFAULT_PRESET,
    FORMATS,
    PRESET_FIELDS,
    TABLES,
    FieldSpec,
    GenerationSettings,
    MixSettings,
    MusicSettings,
    Preset,
    StructureSettings,
    build_preset,
    override,
    preset_to_toml,
    validate_file,
)
from .preset_schema import TOP_LEVEL_KEYS as TOP_LEVEL_KEYS

__all__ = [
    "DEFAULT_PRESET",
    "FORMATS",
    "PRESET_FIELDS",
    "TABLES",
    "FieldSpec",
    "GenerationSettings",
    "MixSettings",
    "MusicSettings",
    "Preset",
    "PresetInfo",
    "StructureSettings",
    "builtin_dir",
    "list_presets",
    "load_preset",
    "override",
    "preset_dirs",
    "preset_to_toml",
]


class PresetInfo(NamedTuple):
    name: str
    description: str
    path: Path
    origin: str
    """'built-in', 'user', 'AUTOSCORE_PRESETS' or 'path'."""


def builtin_dir() -> Path | None:
    """The shipped library: inside the wheel, else the checkout's top-level presets/."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_presets", package.parent / "presets"):
        if candidate.is_dir():
            return candidate
    return None


def user_dir() -> Path:
    return Path(platformdirs.user_config_dir("autoscore")) / "presets"


def preset_dirs() -> list[tuple[str, Path]]:
    """(origin, folder) pairs, highest priority first; folders that do not exist are left out."""
    dirs: list[tuple[str, Path]] = []
    for part in os.environ.get("AUTOSCORE_PRESETS", "").split(os.pathsep):
        if part.strip():
            dirs.append(("AUTOSCORE_PRESETS", Path(part.strip()).expanduser()))
    dirs.append(("user", user_dir()))
    builtin = builtin_dir()
    if builtin is not None:
        dirs.append(("built-in", builtin))
    seen: set[Path] = set()
    unique = []
    for origin, folder in dirs:
        key = folder.resolve()
        if folder.is_dir() and key not in seen:
            seen.add(key)
            unique.append((origin, folder))
    return unique


def _candidates(name: str) -> list[tuple[str, Path]]:
    """Every file named ``name``.toml on the search path, highest priority first."""
    found = []
    for origin, folder in preset_dirs():
        path = folder / f"{name}.toml"
        if path.is_file():
            found.append((origin, path))
    return found


def _available() -> list[str]:
    names: set[str] = set()
    for _, folder in preset_dirs():
        names.update(p.stem for p in folder.glob("*.toml") if p.is_file())
    return sorted(names)


def _looks_like_path(value: str | Path) -> bool:
    if isinstance(value, Path):
        return True
    return value.endswith(".toml") or "/" in value or os.sep in value


def _not_found(name: str) -> PresetError:
    available = _available()
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return PresetError(
        f"Preset {name!r} not found. Available: {', '.join(available) or '(none)'}.{hint} "
        f"Give a path to a .toml file, or put {name}.toml in {user_dir()}."
    )


def _find(name: str) -> Path:
    found = _candidates(name)
    if not found:
        raise _not_found(name)
    return found[0][1]


# --------------------------------------------------------------------------------------
# Loading: read, validate per file, merge along `extends`, build the dataclasses.


def load_preset(name_or_path: str | Path | None = None) -> Preset:
    """The preset called ``name_or_path`` (or at that path), inheritance applied.

    None means ``default``. Raises PresetError naming the file and key for anything wrong.
    """
    if name_or_path is None or (isinstance(name_or_path, str) and not name_or_path.strip()):
        name_or_path = DEFAULT_PRESET
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise PresetError(f"Preset file {str(path)!r} does not exist: check the path.")
    else:
        path = _find(str(name_or_path).strip())
    raw, parents = _load_chain(path, ())
    return build_preset(raw, path, parents)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"Preset file {path} is not valid TOML: {exc}. Fix the syntax.") from None
    except OSError as exc:
        raise PresetError(f"Preset file {path} cannot be read: {exc.strerror or exc}.") from None
    validate_file(data, path)
    return data


def _load_chain(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The merged raw data of ``path`` and its ancestors, plus the ancestors' names."""
    resolved = path.resolve()
    data = _read(path)
    parent_ref = data.get("extends")
    if not parent_ref:
        return data, ()
    parent = _resolve_parent(parent_ref, path)
    if parent.resolve() in (*chain, resolved):
        names = " -> ".join(p.stem for p in (*chain, resolved, parent.resolve()))
        raise PresetError(
            f"Preset file {path}: extends {parent_ref!r}, which leads back to itself ({names}). "
            "Remove one of the extends."
        )
    parent_data, grand = _load_chain(parent, (*chain, resolved))
    return _merge(parent_data, data), (parent.stem, *grand)


def _resolve_parent(ref: str, child: Path) -> Path:
    if _looks_like_path(ref):
        parent = (child.parent / Path(ref).expanduser()).resolve()
        if not parent.is_file():
            raise PresetError(f"Preset file {child}: extends {ref!r}, but {parent} does not exist.")
        return parent
    found = [p for _, p in _candidates(ref)]
    if ref == child.stem:
        # A preset named like its parent builds on the next one of that name down the path.
        here = child.resolve()
        positions = [i for i, p in enumerate(found) if p.resolve() == here]
        found = found[positions[0] + 1:] if positions else found
        if not found:
            raise PresetError(
                f"Preset file {child}: extends itself ({ref!r}) and there is no other preset of that "
                "name further down the search path to build on. Name another preset."
            )
    if not found:
        raise PresetError(f"Preset file {child}: extends {ref!r}, which is missing. " + str(_not_found(ref)))
    return found[0]


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in parent.items() if k not in ("name",)}
    for key, value in child.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    merged.pop("extends", None)
    return merged


# --------------------------------------------------------------------------------------
# Listing.


def list_presets() -> list[PresetInfo]:
    """Every preset name on the search path, resolved to the file that wins, sorted by name.

    A broken preset is listed with its error as the description, so `presets list` still
    works and shows what to fix.
    """
    result = []
    for name in _available():
        origin, path = _candidates(name)[0]
        try:
            description = load_preset(path).description
        except PresetError as exc:
            description = f"(invalid) {exc}"
        result.append(PresetInfo(name, description, path, origin))
    return result
