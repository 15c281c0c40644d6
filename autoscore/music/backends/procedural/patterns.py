"""The composer's material as data: scales, chord progressions, drum grids, comping and bass
rhythms, motif rhythms and stereo positions.

Kept apart from ``arrange`` so that adding a groove or a progression is an edit to a
table, not to the code that writes the notes.
"""

from __future__ import annotations

__all__ = [
    "BASS_LINES", "COMP_RHYTHMS", "DRUM_GRIDS", "DRUM_PAN", "MOTIF_RHYTHMS", "PAN", "PROGRESSIONS",
    "SCALES", "SLOW_MOTIF",
]

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {
    ("major", "A"): ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 5, 4), (0, 3, 0, 4), (0, 4, 0, 3), (0, 3, 1, 4)),
    ("major", "B"): ((3, 4, 0, 5), (5, 3, 0, 4), (3, 0, 4, 0), (1, 4, 0, 0)),
    ("minor", "A"): ((0, 5, 2, 6), (0, 3, 5, 4), (0, 6, 5, 6), (0, 3, 0, 4), (0, 5, 3, 4), (0, 5, 6, 0)),
    ("minor", "B"): ((5, 6, 0, 0), (3, 4, 0, 0), (5, 2, 6, 0), (3, 0, 6, 4)),
}
# Drum grids: (kit piece, lowest level, highest level, 16 steps, gain). x = hit, o = ghost.
DRUM_GRIDS: dict[str, tuple[tuple[str, int, int, str, float], ...]] = {
    "triphop": (
        ("kick", 0, 1, "x.........x.....", 1.0), ("kick", 2, 3, "x......x..x.....", 1.0),
        ("rim", 0, 0, "....x.......x...", 0.5), ("snare", 1, 3, "....x.......x...", 0.9),
        ("snare", 2, 3, ".......o......o.", 0.35), ("hat", 1, 2, "x.x.x.x.x.x.x.x.", 0.35),
        ("hat", 3, 3, "xoxoxoxoxoxoxoxo", 0.4), ("openhat", 3, 3, "..............x.", 0.3),
    ),
    "lofi": (
        ("kick", 0, 3, "x......x..x.....", 0.9), ("rim", 0, 0, "....x.......x...", 0.45),
        ("snare", 1, 3, "....x.......x...", 0.75), ("hat", 1, 3, "x.xox.x.x.xox.x.", 0.3),
        ("snare", 3, 3, "..........o....o", 0.25), ("shaker", 2, 3, "..x...x...x...x.", 0.25),
    ),
    "house": (
        ("kick", 0, 3, "x...x...x...x...", 1.0), ("clap", 1, 3, "....x.......x...", 0.7),
        ("openhat", 1, 3, "..x...x...x...x.", 0.3), ("hat", 2, 2, "x.x.x.x.x.x.x.x.", 0.25),
        ("hat", 3, 3, "xoxoxoxoxoxoxoxo", 0.3), ("shaker", 3, 3, ".x.x.x.x.x.x.x.x", 0.2),
    ),
    "rock": (
        ("kick", 0, 2, "x.......x.x.....", 1.0), ("kick", 3, 3, "x.x.....x.x..x..", 1.0),
        ("snare", 0, 3, "....x.......x...", 0.95), ("hat", 0, 2, "x.x.x.x.x.x.x.x.", 0.4),
        ("openhat", 3, 3, "x.x.x.x.x.x.x.x.", 0.3),
    ),
    "pop": (
        ("kick", 0, 1, "x.......x.......", 0.95), ("kick", 2, 3, "x......x..x.....", 0.95),
        ("rim", 0, 0, "....x.......x...", 0.4), ("clap", 1, 3, "....x.......x...", 0.7),
        ("hat", 1, 3, "x.x.x.x.x.x.x.x.", 0.3), ("shaker", 2, 3, "xoxoxoxoxoxoxoxo", 0.22),
    ),
    "cinematic": (
        ("boom", 0, 3, "x...............", 0.9), ("taiko", 1, 1, "........x.......", 0.8),
        ("taiko", 2, 3, "x..x..x.x..x..x.", 0.8), ("tom", 2, 3, "........x.x.x..x", 0.5),
        ("snare", 3, 3, "....x.......x...", 0.8), ("hat", 3, 3, "x.x.x.x.x.x.x.x.", 0.2),
    ),
}
COMP_RHYTHMS: dict[str, tuple[tuple[tuple[int, int], ...], ...]] = {
    "triphop": (((0, 10), (10, 6)), ((0, 6), (6, 4), (12, 4))),
    "lofi": (((0, 7), (7, 9)), ((0, 3), (3, 5), (10, 6))),
    "house": (((2, 2), (6, 2), (10, 2), (14, 2)), ((0, 2), (3, 2), (6, 3), (10, 2), (13, 3))),
    "rock": (tuple((i * 2, 2) for i in range(8)),),
    "pop": (((0, 4), (4, 4), (8, 4), (12, 4)), ((0, 6), (6, 6), (12, 4))),
    "cinematic": (((0, 16),),),
    "none": (((0, 16),), ((0, 8), (8, 8))),
}
BASS_LINES: dict[str, tuple[tuple[int, int, str], ...]] = {
    "triphop": ((0, 6, "R"), (7, 3, "R"), (10, 4, "F"), (14, 2, "A")),
    "lofi": ((0, 6, "R"), (7, 2, "R"), (10, 4, "F"), (14, 2, "A")),
    "house": ((2, 2, "R"), (6, 2, "R"), (10, 2, "O"), (14, 2, "R")),
    "rock": tuple((i * 2, 2, "R") for i in range(8)),
    "pop": ((0, 3, "R"), (3, 3, "R"), (6, 2, "F"), (8, 4, "R"), (12, 2, "F"), (14, 2, "A")),
    "cinematic": ((0, 16, "R"),),
    "none": ((0, 8, "R"), (8, 8, "F")),
}
MOTIF_RHYTHMS = (
    ((0, 4), (4, 2), (6, 2), (8, 6), (16, 4), (20, 4), (24, 8)),
    ((0, 3), (3, 3), (6, 2), (8, 8), (16, 3), (19, 3), (22, 2), (24, 8)),
    ((2, 2), (4, 2), (6, 4), (12, 4), (18, 2), (20, 2), (22, 4), (28, 4)),
    ((0, 2), (2, 2), (4, 4), (10, 2), (12, 4), (16, 2), (18, 2), (20, 4), (26, 6)),
)
SLOW_MOTIF = ((0, 8), (8, 4), (12, 4), (16, 12))
PAN = {"piano": -0.1, "epiano": -0.25, "pluck": 0.35, "tremolo_guitar": 0.4, "synth": 0.3, "bells": 0.45,
       "brass": -0.3, "strings": 0.0, "pad": 0.0, "choir": 0.0, "bass": 0.0}
DRUM_PAN = {"kick": 0.0, "snare": 0.05, "clap": 0.0, "rim": -0.2, "hat": 0.3, "openhat": 0.3,
            "shaker": -0.35, "crash": -0.25, "boom": 0.0, "taiko": -0.15, "tom": 0.3}
