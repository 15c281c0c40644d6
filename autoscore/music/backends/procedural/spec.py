"""Prompt reading: turn free text into the handful of musical decisions the composer makes.

The reader is a phrase table, not a language model: it looks for words it knows (genres,
moods, instruments, tempo and key), lets "no X" / the negative prompt remove things, and
reports every word it did not use so ``explain`` can show the user what was ignored.

Tempo and key come only from the words (explicit values, else a hash of the genre and
mode words), never from the seed: the chunks of one long track are generated separately
and must agree on both to crossfade cleanly.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

__all__ = ["INSTRUMENTS", "NOTE_NAMES", "Spec", "parse_prompt"]

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
INSTRUMENTS = (
    "piano", "epiano", "strings", "pad", "choir", "pluck", "tremolo_guitar",
    "synth", "bells", "brass", "bass", "drums",
)
DRUM_STYLES = ("triphop", "lofi", "house", "rock", "pop", "cinematic", "none")


@dataclass(frozen=True)
class Genre:
    tempo: tuple[int, int]
    mode: str | None
    instruments: tuple[str, ...]
    drums: str
    energy: float
    swing: float = 0.0
    sevenths: bool = False
    brightness: float = 0.5


GENRES: dict[str, Genre] = {
    "background": Genre((92, 108), None, ("piano", "pad", "bass", "drums"), "pop", 0.45),
    "triphop": Genre((80, 92), "minor", ("epiano", "pad", "bass", "drums"), "triphop", 0.5,
                     swing=0.12, sevenths=True, brightness=0.35),
    "lofi": Genre((72, 86), None, ("epiano", "pad", "bass", "drums"), "lofi", 0.45,
                  swing=0.22, sevenths=True, brightness=0.3),
    "hiphop": Genre((86, 96), "minor", ("piano", "pad", "bass", "drums"), "lofi", 0.6,
                    swing=0.15, sevenths=True, brightness=0.4),
    "house": Genre((120, 126), "minor", ("synth", "pad", "piano", "bass", "drums"), "house", 0.75,
                   brightness=0.65),
    "rock": Genre((112, 136), None, ("pluck", "bass", "drums"), "rock", 0.75, brightness=0.6),
    "pop": Genre((100, 118), "major", ("piano", "pluck", "pad", "bass", "drums"), "pop", 0.6,
                 brightness=0.65),
    "acoustic": Genre((96, 116), "major", ("pluck", "piano", "bass", "drums"), "pop", 0.5,
                      brightness=0.6),
    "cinematic": Genre((70, 96), "minor", ("strings", "brass", "pad", "bass", "drums"), "cinematic", 0.6,
                       brightness=0.45),
    "ambient": Genre((60, 76), None, ("pad", "bells"), "none", 0.2, brightness=0.4),
    "jazz": Genre((84, 112), None, ("piano", "bass", "drums"), "lofi", 0.45, swing=0.3,
                  sevenths=True, brightness=0.45),
    "synthwave": Genre((96, 116), "minor", ("synth", "pad", "bass", "drums"), "pop", 0.65,
                       brightness=0.7),
    "classical": Genre((70, 96), None, ("piano", "strings"), "none", 0.4, brightness=0.5),
}

# Phrase -> list of (kind, value). Longest phrase wins; hyphens are read as spaces.
_PHRASES: dict[str, list[tuple[str, str]]] = {}


def _add(kind: str, value: str, *phrases: str) -> None:
    for p in phrases:
        _PHRASES.setdefault(p, []).append((kind, value))


_add("genre", "triphop", "trip hop", "triphop", "downtempo")
_add("genre", "lofi", "lo fi", "lofi", "chillhop", "study beat", "study beats")
_add("genre", "hiphop", "hip hop", "hiphop", "boom bap", "rap beat")
_add("genre", "house", "house", "deep house", "edm", "dance", "techno", "club", "four on the floor")
_add("genre", "rock", "rock", "indie rock", "punk", "grunge", "garage rock")
_add("genre", "pop", "pop", "corporate", "commercial", "advertising")
_add("genre", "acoustic", "acoustic", "folk", "vlog", "travel vlog", "singer songwriter")
_add("genre", "cinematic", "cinematic", "trailer", "orchestral", "film score", "soundtrack", "score", "epic")
_add("genre", "ambient", "ambient", "drone", "atmospheric", "soundscape", "new age")
_add("genre", "jazz", "jazz", "jazzy", "swing", "bebop", "lounge")
_add("genre", "synthwave", "synthwave", "retrowave", "80s", "retro", "electronic", "electro", "chiptune")
_add("genre", "classical", "classical", "baroque", "chamber")

_add("inst", "epiano", "electric piano", "rhodes", "wurlitzer", "wurli", "e piano", "epiano", "fender rhodes")
_add("inst", "piano", "piano", "grand piano", "keys", "upright piano", "felt piano", "keyboard")
_add("inst", "strings", "strings", "string", "violin", "violins", "cello", "cellos", "viola",
     "orchestra", "string section", "string ensemble")
_add("inst", "pad", "pad", "pads", "synth pad", "synth pads", "warm pads", "texture", "textures")
_add("inst", "choir", "choir", "choir pads", "choral", "voices", "ooh", "aah")
_add("inst", "tremolo_guitar", "tremolo guitar", "surf guitar", "twangy guitar", "twang", "reverb guitar",
     "baritone guitar", "tremolo")
_add("inst", "pluck", "guitar", "guitars", "acoustic guitar", "nylon guitar", "electric guitar", "ukulele",
     "uke", "pluck", "plucked", "plucks", "harp", "banjo", "mandolin", "clean guitar")
_add("inst", "synth", "synth", "synths", "synthesizer", "arpeggio", "arpeggios", "arp", "arpeggiated",
     "lead synth", "analog synth")
_add("inst", "bells", "bells", "bell", "glockenspiel", "celesta", "chimes", "music box", "mallets",
     "vibraphone", "marimba", "kalimba")
_add("inst", "brass", "brass", "horns", "horn", "french horn", "trumpet", "trumpets", "trombone")
_add("inst", "bass", "bass", "bassline", "bass line", "sub bass", "sub", "808", "upright bass", "double bass")
_add("inst", "drums", "drums", "drum", "beat", "beats", "percussion", "kit", "breakbeat", "groove",
     "drum kit", "hi hats", "hats")
_add("drums", "cinematic", "cinematic percussion", "taiko", "taikos", "timpani", "war drums", "toms")
_add("drums", "triphop", "breakbeat")
_add("drums", "house", "four on the floor")

_add("mode", "major", "bright", "happy", "uplifting", "cheerful", "joyful", "playful", "hopeful", "sunny",
     "positive", "optimistic", "triumphant", "heroic", "inspiring", "inspirational", "fun", "warm",
     "feel good", "summery", "carefree", "whimsical", "light hearted", "lighthearted")
_add("mode", "minor", "dark", "noir", "sad", "melancholic", "melancholy", "moody", "tense", "mysterious",
     "somber", "sombre", "ominous", "suspense", "suspenseful", "eerie", "haunting", "brooding", "gritty",
     "dramatic", "sinister", "mystery", "cold", "bittersweet", "lonely", "nostalgic", "serious")
_add("energy", "low", "calm", "gentle", "soft", "peaceful", "relaxed", "relaxing", "quiet", "sparse",
     "minimal", "mellow", "chill", "dreamy", "meditative", "serene", "tranquil", "laid back",
     "low energy", "subtle", "understated", "intimate", "delicate", "still")
_add("energy", "high", "energetic", "intense", "driving", "powerful", "aggressive", "pumping", "big",
     "massive", "full", "high energy", "epic", "peak", "climax", "climactic", "euphoric", "anthemic", "huge",
     "heavy", "loud")
_add("energy", "build", "build", "building", "builds", "rising", "crescendo", "swelling", "growing",
     "build up", "buildup", "rise", "escalating")
_add("tempo", "slow", "slow", "slower", "ballad", "lazy", "downbeat")
_add("tempo", "fast", "fast", "faster", "upbeat", "uptempo", "up tempo", "quick", "lively", "bouncy")
_add("tempo", "mid", "mid tempo", "midtempo", "medium tempo", "moderate")
_add("form", "ending", "ending", "outro", "finale", "closing", "end", "conclusion", "resolve", "resolution",
     "final")
_add("form", "fadeout", "fade out", "fadeout", "fade")
_add("form", "intro", "intro", "introduction", "opening")
_add("vocal", "vocals", "vocals", "vocal", "singing", "singer", "speech", "voice", "lyrics", "rap",
     "spoken word", "talking", "narration")
_add("color", "dark", "dark", "noir", "warm", "muffled", "dusty", "vinyl", "tape", "lo fi")
_add("color", "bright", "bright", "crisp", "sparkling", "shimmering", "airy")
_add("color", "crackle", "vinyl", "dusty", "crackle", "tape", "lo fi", "lofi")

_STOP = {
    "a", "an", "the", "with", "and", "of", "in", "for", "music", "track", "background", "style", "feel",
    "vibe", "vibes", "song", "tune", "instrumental", "sound", "sounds", "some", "very", "bit", "little",
    "bpm", "key", "tempo", "major", "minor", "plus", "on", "to", "at", "by", "as", "like", "that", "this",
    "is", "it", "its", "mood", "feeling", "piece", "loop", "bed", "under", "over", "&", "+", "or", "but",
    "more", "less", "slightly", "quite", "mostly", "light", "lots", "lot", "used", "using", "featuring",
    "from", "into", "x", "mix", "section", "part",
}
_TEMPO_RE = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b|\btempo\s*(?:of\s*)?(\d{2,3})\b")
_KEY_RE = re.compile(
    r"\b(?:in\s+|key\s+of\s+)?([a-g])\s*(#|♯|b|♭|\s+sharp|\s+flat)?\s*(major|minor|maj|min)\b"
)
_NEG_RE = re.compile(
    r"\b(?:no|without|minus|avoid|zero)\s+([a-z0-9# \-]+?)(?=[,.;:!]|$|\s+(?:but|with|and then)\b)"
)
_ROOT = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class Spec:
    """Everything the composer needs to know, decided before any note is written."""

    genre: str
    tempo: float
    tempo_source: str
    root: int
    mode: str
    key_source: str
    instruments: tuple[str, ...]
    drums: str
    energy_start: float
    energy_end: float
    intro: bool
    ending: bool
    strong_ending: bool
    swing: float
    sevenths: bool
    brightness: float
    crackle: bool
    style_hash: int
    moods: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    not_produced: tuple[str, ...] = ()
    named: tuple[str, ...] = field(default=())

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.root]} {self.mode}"


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=[a-z])-(?=[a-z0-9])", " ", text)
    return text


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9#♯♭&+]+", text)


def _match(tokens: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Greedy longest-phrase matching; returns (kind, value, phrase) hits and unused tokens."""
    hits: list[tuple[str, str, str]] = []
    unused: list[str] = []
    i = 0
    while i < len(tokens):
        for n in (4, 3, 2, 1):
            phrase = " ".join(tokens[i:i + n])
            if len(tokens[i:i + n]) < n:
                continue
            found = _PHRASES.get(phrase)
            if not found and n == 1 and phrase.endswith("s"):
                found = _PHRASES.get(phrase[:-1])
            if found:
                hits.extend((k, v, phrase) for k, v in found)
                i += n
                break
        else:
            unused.append(tokens[i])
            i += 1
    return hits, unused


def _removals(hits: list[tuple[str, str, str]]) -> tuple[set[str], set[str], set[str]]:
    """What a negative phrase takes away: instruments, form parts, and vocal words."""
    insts = {v for k, v, _ in hits if k == "inst"}
    if any(k == "drums" for k, _, _ in hits):
        insts.add("drums")
    form = {v for k, v, _ in hits if k == "form"}
    vocal = {p for k, _, p in hits if k == "vocal"}
    return insts, form, vocal


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def parse_prompt(prompt: str, negative_prompt: str = "", guidance: float = 1.0) -> Spec:
    """Read the prompt; ``guidance`` above 1.5 plays only named instruments (see composer docstring)."""
    text = _normalise(prompt)
    neg_text = _normalise(negative_prompt)

    tempo_m = _TEMPO_RE.search(text)
    key_m = _KEY_RE.search(text)
    stripped = _TEMPO_RE.sub(" ", text)
    stripped = _KEY_RE.sub(" ", stripped)

    inline_neg = [m.group(1) for m in _NEG_RE.finditer(stripped)]
    stripped = _NEG_RE.sub(" ", stripped)
    stripped = re.sub(r"\b(?:no|without|minus|avoid)\b", " ", stripped)

    hits, unused = _match(_tokens(stripped))
    neg_hits: list[tuple[str, str, str]] = []
    neg_unused: list[str] = []
    for chunk in [*inline_neg, *re.split(r"[,;/]| and ", neg_text)]:
        h, u = _match(_tokens(chunk))
        neg_hits.extend(h)
        neg_unused.extend(u)
    removed_insts, removed_form, neg_vocal = _removals(neg_hits)

    genres = [v for k, v, _ in hits if k == "genre"]
    genre_name = genres[0] if genres else "background"
    if genre_name == "cinematic" and len(genres) > 1 and genres[0] == "cinematic":
        genre_name = next((g for g in genres if g != "cinematic"), "cinematic")
    genre = GENRES[genre_name]

    moods = [p for k, _, p in hits if k in ("mode", "energy")]
    mode_votes = [v for k, v, _ in hits if k == "mode"]
    energy_words = [v for k, v, _ in hits if k == "energy"]
    tempo_words = [v for k, v, _ in hits if k == "tempo"]
    forms = {v for k, v, _ in hits if k == "form"}
    colors = {v for k, v, _ in hits if k == "color"}

    # Key: explicit, else mood majority, else genre, else hash. Root: explicit else hash of style words.
    style_words = " ".join(sorted(set(genres))) or "background"
    if key_m:
        root = (_ROOT[key_m.group(1)] + _accidental(key_m.group(2))) % 12
        mode = "minor" if key_m.group(3).startswith("min") else "major"
        key_source = "named in the prompt"
    else:
        minor, major = mode_votes.count("minor"), mode_votes.count("major")
        if minor != major:
            mode, key_source = ("minor" if minor > major else "major"), "from mood words"
        elif genre.mode:
            mode, key_source = genre.mode, f"usual for {genre_name}"
        else:
            mode = "minor" if _stable_hash(style_words) % 2 else "major"
            key_source = "from the style words"
        root = _stable_hash(f"{style_words}|{mode}") % 12

    if tempo_m:
        tempo = float(tempo_m.group(1) or tempo_m.group(2))
        tempo = min(max(tempo, 40.0), 220.0)
        tempo_source = "named in the prompt"
    else:
        lo, hi = genre.tempo
        frac = (_stable_hash(style_words + "|tempo") % 1000) / 999
        if "slow" in tempo_words:
            frac, scale = frac * 0.3, 0.88
        elif "fast" in tempo_words:
            frac, scale = 0.7 + frac * 0.3, 1.1
        elif "mid" in tempo_words:
            frac, scale = 0.5, 1.0
        else:
            scale = 1.0
        tempo = float(round((lo + (hi - lo) * frac) * scale))
        tempo_source = f"usual for {genre_name}" + (f", {tempo_words[0]}" if tempo_words else "")

    named = [v for k, v, _ in hits if k == "inst"]
    drum_style = next((v for k, v, _ in hits if k == "drums"), None)
    if drum_style:
        named.append("drums")
    instruments: list[str]
    if named and guidance > 1.5:
        instruments = list(dict.fromkeys(named))
    elif named:
        # Named instruments lead; the genre keeps its rhythm section and one bed layer.
        support = [i for i in genre.instruments if i in ("bass", "drums")]
        bed = [i for i in genre.instruments if i in ("pad", "strings", "choir")][:1]
        # Only bed layers named ("pads"): the genre's first melodic voice carries the motif.
        voice = [] if set(named) - {"pad", "strings", "choir", "bass", "drums"} else [
            i for i in genre.instruments if i not in ("pad", "strings", "choir", "bass", "drums")][:1]
        instruments = list(dict.fromkeys([*named, *voice, *support, *bed]))
    else:
        instruments = list(genre.instruments)
    if drum_style is None:
        drum_style = genre.drums if genre.drums != "none" else ("lofi" if genre.tempo[1] < 95 else "pop")

    removed = sorted(removed_insts & set(INSTRUMENTS))
    if "pad" in removed_insts:
        removed_insts.add("choir")
    if "pluck" in removed_insts:
        removed_insts.add("tremolo_guitar")
    instruments = [i for i in instruments if i not in removed_insts]
    if not [i for i in instruments if i not in ("bass", "drums")]:
        fallback = next(i for i in ("piano", "pad", "strings", "pluck") if i not in removed_insts)
        instruments.insert(0, fallback)
    drums = drum_style if "drums" in instruments else "none"

    energy = genre.energy
    low, high, build = "low" in energy_words, "high" in energy_words, "build" in energy_words
    if low and not high:
        energy = min(energy, 0.25)
    elif high and not low:
        energy = max(energy, 0.9)
    if build:
        e0, e1 = max(0.15, energy - 0.35), min(1.0, max(energy + 0.3, 0.8))
    else:
        e0 = e1 = energy

    not_produced = sorted({p for k, _, p in hits if k == "vocal"} | neg_vocal)
    ignored = [w for w in [*unused, *neg_unused] if w not in _STOP and not w.isdigit()]
    brightness = genre.brightness + (0.15 if "bright" in colors else 0) - (0.15 if "dark" in colors else 0)

    return Spec(
        genre=genre_name,
        tempo=tempo,
        tempo_source=tempo_source,
        root=root,
        mode=mode,
        key_source=key_source,
        instruments=tuple(instruments),
        drums=drums,
        energy_start=round(e0, 3),
        energy_end=round(e1, 3),
        intro="intro" not in removed_form,
        ending=not (removed_form & {"ending", "fadeout"}),
        strong_ending="ending" in forms,
        swing=genre.swing,
        sevenths=genre.sevenths,
        brightness=min(max(brightness, 0.1), 0.9),
        crackle="crackle" in colors or genre_name == "lofi",
        style_hash=_stable_hash(f"{style_words}|{mode}|{root}"),
        moods=tuple(dict.fromkeys(moods)),
        removed=tuple(removed) + tuple(sorted(f"the {f}" for f in removed_form)),
        ignored=tuple(dict.fromkeys(ignored)),
        not_produced=tuple(not_produced),
        named=tuple(dict.fromkeys(named)),
    )


def _accidental(text: str | None) -> int:
    if not text:
        return 0
    text = text.strip()
    return 1 if text in ("#", "♯", "sharp") else -1
