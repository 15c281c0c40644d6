"""Style presets: what the music should be and how it sits under the voice.

SKELETON during the foundation work: the dataclasses below are the contract other
stages read; loading, validation, inheritance and the search path arrive with issue 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GenerationSettings",
    "MixSettings",
    "MusicSettings",
    "Preset",
    "StructureSettings",
    "load_preset",
]


@dataclass(frozen=True)
class GenerationSettings:
    steps: int = 8
    guidance: float = 1.0
    format: str = "wav"
    """Format asked of the generator; lossless by default since we re-encode anyway."""


@dataclass(frozen=True)
class MusicSettings:
    style: str = "warm modern background music, piano and soft pads, gentle drums"
    negative: str = "vocals, singing, speech"
    tempo: int | None = None
    """BPM shared by every section so chunks and sections join cleanly; None: from style."""
    key: str = ""
    """Key or mode words shared by every section, e.g. "D minor", "bright major"."""
    energy: float = 0.5
    instruments: tuple[str, ...] = ()


@dataclass(frozen=True)
class MixSettings:
    duck_depth_db: float = 12.0
    """How far the music dips under speech."""
    attack_ms: float = 120.0
    release_ms: float = 500.0
    lookahead_ms: float = 200.0
    """The dip starts this long before speech so it is complete when the first word lands."""
    hold_ms: float = 400.0
    """Gaps in speech shorter than this stay ducked (no pumping between words)."""
    min_speech_ms: float = 150.0
    """Detected speech shorter than this is ignored (coughs, clicks)."""
    duck_on: str = "speech"
    """'speech' (voice activity) or 'loud' (any sound above the floor)."""
    music_level_db: float = -14.0
    """Unducked music loudness relative to the dialogue's, in LU."""
    target_lufs: float = -14.0
    true_peak_db: float = -1.0
    fade_in: float = 1.0
    fade_out: float = 3.0
    crossfade: float = 4.0
    """Overlap between neighbouring generated chunks, in seconds."""


@dataclass(frozen=True)
class StructureSettings:
    mode: str = "full"
    """'full' scores the whole input; 'beds' lays an intro and an outro bed (podcasts)."""
    intro: float = 0.0
    outro: float = 0.0
    min_section: float = 8.0
    """Sections shorter than this merge into a neighbour."""


@dataclass(frozen=True)
class Preset:
    name: str = "default"
    description: str = "Balanced background music for talking-head video."
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    music: MusicSettings = field(default_factory=MusicSettings)
    mix: MixSettings = field(default_factory=MixSettings)
    structure: StructureSettings = field(default_factory=StructureSettings)
    source: Path | None = None


def load_preset(name: str | Path | None = None) -> Preset:
    return Preset()
