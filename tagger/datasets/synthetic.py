"""The embedded default dataset: synthetic music in the MagnaTagATune layout.

    python -m tagger.commands.synthetic OUT_DIR [--clips N] [--seconds S] [--seed K]

writes, exactly like the real MagnaTagATune,

    OUT_DIR/annotations_final.csv   tab-separated, every field double-quoted:
                                    "clip_id", tag columns (0/1), "mp3_path"
    OUT_DIR/mp3/{0..f}/<artist>-<album>-<nn>-<title>-<start>-<end>.mp3
                                    16 kHz mono MP3, `seconds` long
    OUT_DIR/synthetic.json          marks the folder as synthetic (generator,
                                    seed, clips, seconds); builders record it

so every builder, reader and demo runs end to end without the 3 GB download.

How clips are made. Each track draws a latent genre (techno, classical,
rock, ambient, indian, opera, ...) with skewed probabilities; the genre picks
instruments, voice, tempo, dynamics, key and mode (a `ClipAttributes`), and
`render_clip` synthesises the audio from them. Tags are derived from the
same attributes, the way annotators would apply them: an instrument, voice,
tempo or loudness that is present is tagged with probability 0.85-0.97, and
the synonyms of a group (female / woman / female vocal / female voice, ...)
each favour some genres, so every tag has an audible signature and little
label noise. The 50 real top-50 names come out as the 50 most frequent
columns, in roughly the real order; the rarer real column names
(`EXTRA_TAGS`) stay below all of them. A few percent of clips (nature
sounds, and unlucky draws) carry no top-50 tag.

Layout details follow the real data: clip ids spread over 2..58908 and
increase with the row; one or two consecutive 29 s clips come from each
track (`...-0-29.mp3`, `...-29-58.mp3`, ...); tracks spread evenly over
the 16 folders, so the folder split (0-b train, c val, d-f test) gives about
75/6/19 %. Six files are always broken (`SyntheticSummary.broken`): the three
known broken MagnaTagATune files at their real paths and clip ids, one more
empty file, one MP3 truncated to about a second, and one text file named
.mp3. They count within `clips` and carry top-50 tags, so a builder has to
skip them for their audio, not their tags.

Deterministic: the same arguments give byte-identical files. Each track's
attributes, each clip's tags and each clip's audio come from their own
numpy Generator seeded by (seed, track, clip), so a clip does not depend on
the order of generation; genre, folder, sub-style and voice follow a
low-discrepancy sequence so that small datasets keep the intended
proportions (at 400 clips the top-50 set is right for each of the 100 seeds
tried; the rarest top-50 tag holds about 4 % of the clips, the rarer real
names below 1 %).

Library use:
    generate(out_dir, clips=400, seconds=29.1, seed=0) -> SyntheticSummary
    plan(clips, seconds, seed) -> the rows (ids, paths, tags, attributes)
        without writing anything
    render_clip(ClipAttributes(...), seconds, sample_rate, rng) -> audio of
        one clip from chosen attributes, e.g. drums only or piano only
    tag_probabilities(genre, style, attributes) -> how tags are applied

The command (tagger.commands.synthetic) also takes --overwrite (replace a
dataset already in OUT_DIR) and --no-progress (no progress bar). This
module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import typing

import numpy as np

from tagger import fileio
from tagger.datasets.mtt import ANNOTATIONS_FILE, AUDIO_DIR, KNOWN_BROKEN, MTT_TOP50
from tagger.datasets.origin import (
    ORIGIN_FILE,
    finish_synthetic,
    start_synthetic,
    write_synthetic_marker,
)
from tagger.datasets.sounds import SAMPLE_RATE, ClipAttributes, render_clip
from tagger.parallel import ordered_map

__all__ = [
    "BrokenFile", "ClipAttributes", "ClipPlan", "EXTRA_TAGS", "SAMPLE_RATE",
    "SyntheticSummary", "TAG_NAMES", "generate",
    "plan", "render_clip", "tag_probabilities",
]

# Rarer real MagnaTagATune columns, many of them synonyms of top-50 names
# (so a synonym merge changes the counts).
EXTRA_TAGS = (
    "acoustic", "baroque", "bells", "birds", "celtic", "chanting", "clapping",
    "drone", "drum", "electro", "electronica", "female singer", "folk",
    "hard rock", "harpsicord", "heavy metal", "instrumental", "male singer",
    "no singer", "operatic", "orchestra", "spacey", "synthesizer", "trance",
    "violins", "water",
)
TAG_NAMES = tuple(sorted(MTT_TOP50 + EXTRA_TAGS))

_KNOWN_TAGS = {
    35644: ("female", "pop", "soft", "vocal", "woman"),
    55753: ("classical", "guitar", "slow", "solo"),
    57881: ("classic", "classical", "harpsichord", "strings"),
}
_KNOWN_KIND = {35644: "empty", 55753: "garbage", 57881: "empty"}
_EXTRA_BROKEN = ((0.3, "empty"), (0.55, "truncated"), (0.8, "not_audio"))

MIN_CLIPS = 10
MAX_CLIPS = 25000
MIN_SECONDS = 1.0
MAX_SECONDS = 600.0
MAX_CLIP_ID = 58908
CSV_NAME = ANNOTATIONS_FILE
_FOLDERS = "0123456789abcdef"


@dataclasses.dataclass(frozen=True)
class BrokenFile:
    """A file of the dataset that a builder must skip; kind is one of
    "empty" (0 bytes), "garbage" (random bytes), "truncated" (an MP3 cut to
    about a second) or "not_audio" (text with an .mp3 name)."""

    clip_id: int
    mp3_path: str
    kind: str


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """One row of the dataset: its id, path, tags and how it sounds.

    attributes is None for the three known broken files (they have no
    audio); genre and style name the latent genre and its sub-style.
    """

    clip_id: int
    mp3_path: str
    tags: tuple[str, ...]
    attributes: ClipAttributes | None
    genre: str
    style: str
    broken: str | None = None
    track: int = -1
    part: int = 0


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
    """What `generate` wrote."""

    csv_path: str
    audio_root: str
    num_clips: int
    broken: tuple[BrokenFile, ...]
    tag_names: tuple[str, ...]
    seconds: float
    sample_rate: int
    seed: int


# ------------------------------------------------------------------- genres

# (genre, weight): the latent genre of a track. The weights make the tags
# come out in the real top-50 order of frequency.
_GENRES = (
    ("techno", 160), ("classical", 150), ("rock", 92), ("ambient", 82),
    ("indian", 85), ("opera", 78), ("new_age", 62), ("choral", 60),
    ("pop", 58), ("dance", 58), ("metal", 52), ("country", 50),
    ("weird", 50), ("folk", 38), ("nature", 25),
)
# Sub-styles with their weights; drawn with the low-discrepancy coordinate.
_STYLES = {
    "classical": (("piano_solo", 0.20), ("guitar_solo", 0.12), ("quartet", 0.18),
                  ("orchestral", 0.12), ("violin_piano", 0.04), ("solo_other", 0.09),
                  ("baroque", 0.25)),
    "techno": (("melodic", 0.42), ("minimal", 0.26), ("breakbeat", 0.32)),
    "indian": (("sitar", 0.65), ("vocal", 0.20), ("bansuri", 0.15)),
    "opera": (("orchestral", 0.5), ("piano", 0.2), ("baroque", 0.3)),
    "nature": (("birds", 0.35), ("water", 0.35), ("clapping", 0.30)),
}
_SOLO_STYLES = ("piano_solo", "guitar_solo", "solo_other")


def _pick(rng, options):
    """options: {value: probability}."""
    values = list(options)
    p = np.array([options[v] for v in values], float)
    return values[int(rng.choice(len(values), p=p / p.sum()))]


def _style(genre, u):
    styles = _STYLES.get(genre)
    if not styles:
        return "main"
    w = np.cumsum([s[1] for s in styles])
    return styles[int(np.searchsorted(w / w[-1], u, side="right"))][0]


def _attributes(genre, style, rng, u_voice=None):
    """The ClipAttributes of a track of `genre` / `style`.

    u_voice in [0, 1) picks the voice (by inverse CDF, so a low-discrepancy
    sequence keeps the voices' proportions in every genre); None draws it.
    """
    maybe = lambda p: rng.random() < p

    def vpick(options):
        if u_voice is None:
            return _pick(rng, options)
        w = np.cumsum(list(options.values()))
        return list(options)[int(np.searchsorted(w / w[-1], u_voice, side="right"))]

    inst, voice, vstyle = [], None, "pop"
    tempo, dyn, mode, render_genre = "mid", "normal", "major", genre
    key = int(rng.integers(45, 57))
    if genre == "classical":
        mode = _pick(rng, {"major": 0.6, "minor": 0.4})
        tempo = _pick(rng, {"slow": 0.1, "mid": 0.8, "fast": 0.1})
        dyn = _pick(rng, {"quiet": 0.08, "soft": 0.08, "normal": 0.84})
        if style == "piano_solo":
            inst = ["piano"]
        elif style == "guitar_solo":
            inst = ["acoustic_guitar"]
        elif style == "quartet":
            inst = ["violin", "cello", "strings"]
        elif style == "orchestral":
            inst = (["violin", "strings"] + (["flute"] if maybe(0.4) else [])
                    + (["harp"] if maybe(0.5) else []))
        elif style == "violin_piano":
            inst = ["violin", "piano"]
        elif style == "solo_other":
            inst = [_pick(rng, {"violin": 1, "cello": 1, "flute": 1, "harp": 1, "harpsichord": 2})]
        else:  # baroque
            inst = ["harpsichord", "strings", "cello" if maybe(0.6) else "flute"]
            render_genre = "baroque"
    elif genre == "opera":
        voice, vstyle = vpick({"female": 0.55, "male": 0.45}), "opera"
        tempo = _pick(rng, {"slow": 0.2, "mid": 0.8})
        dyn = _pick(rng, {"normal": 0.9, "soft": 0.1})
        mode = _pick(rng, {"major": 0.5, "minor": 0.5})
        if style == "orchestral":
            inst = (["strings"] + (["violin"] if maybe(0.3) else [])
                    + (["harp"] if maybe(0.4) else []) + (["flute"] if maybe(0.2) else []))
        elif style == "piano":
            inst = ["piano"]
        else:
            inst = ["harpsichord", "strings"]
    elif genre == "choral":
        voice = "choir"
        inst = _pick(rng, {(): 0.7, ("strings",): 0.2, ("piano",): 0.1})
        tempo = _pick(rng, {"slow": 0.4, "mid": 0.6})
        dyn = _pick(rng, {"quiet": 0.2, "soft": 0.15, "normal": 0.65})
    elif genre == "techno":
        mode, key = "minor", int(rng.integers(45, 53))
        tempo = _pick(rng, {"fast": 0.2, "mid": 0.8})
        inst = {"melodic": ["synth_lead", "drum_machine", "synth_bass", "synth_pad"],
                "minimal": ["drum_machine", "synth_bass"],
                "breakbeat": ["drum_machine", "synth_bass", "synth_pad"]}[style]
        render_genre = "breakbeat" if style == "breakbeat" else "techno"
    elif genre == "rock":
        mode = _pick(rng, {"major": 0.5, "minor": 0.5})
        inst = (["distorted_guitar", "bass", "drum_kit"]
                + (["electric_guitar"] if maybe(0.25) else []))
        voice = vpick({"male": 0.15, None: 0.85})
        tempo = _pick(rng, {"fast": 0.25, "mid": 0.7, "slow": 0.05})
        dyn = _pick(rng, {"loud": 0.27, "normal": 0.73})
    elif genre == "metal":
        mode = "minor"
        inst = ["distorted_guitar", "bass", "drum_kit"]
        voice = vpick({"male": 0.18, None: 0.82})
        tempo = _pick(rng, {"fast": 0.7, "mid": 0.3})
        dyn = _pick(rng, {"loud": 0.95, "normal": 0.05})
    elif genre == "pop":
        inst = ["piano" if maybe(0.6) else "electric_guitar", "drum_kit", "bass"]
        inst += ["synth_pad"] if maybe(0.3) else []
        voice = vpick({"female": 0.45, "male": 0.3, None: 0.25})
        tempo = _pick(rng, {"mid": 0.85, "fast": 0.15})
    elif genre == "dance":
        mode = _pick(rng, {"major": 0.5, "minor": 0.5})
        lead = maybe(0.6)
        inst = (["synth_lead"] if lead else []) + ["drum_machine", "synth_bass"]
        inst += ["synth_pad"] if (not lead or maybe(0.5)) else []
        voice = vpick({"female": 0.5, "male": 0.1, None: 0.4})
        tempo = _pick(rng, {"fast": 0.2, "mid": 0.8})
    elif genre == "country":
        inst = ["acoustic_guitar", "bass"] + (["violin"] if maybe(0.6) else [])
        voice = vpick({"male": 0.35, "female": 0.2, None: 0.45})
        tempo = _pick(rng, {"mid": 0.8, "fast": 0.2})
    elif genre == "folk":
        inst = ["acoustic_guitar"] + (["piano"] if maybe(0.2) else [])
        voice = vpick({"female": 0.3, "male": 0.3, None: 0.4})
        tempo = _pick(rng, {"slow": 0.2, "mid": 0.8})
        dyn = _pick(rng, {"soft": 0.3, "quiet": 0.15, "normal": 0.55})
    elif genre == "indian":
        mode, key = "raga", int(rng.integers(48, 53))
        tempo = _pick(rng, {"slow": 0.2, "mid": 0.75, "fast": 0.05})
        if style == "sitar":
            inst = ["sitar", "tanpura"]
        elif style == "vocal":
            inst = ["tanpura"]
            voice, vstyle = vpick({"male": 0.5, "female": 0.5}), "raga"
        else:
            inst = ["flute", "tanpura"]
    elif genre == "ambient":
        mode, tempo = "minor", "slow"
        inst = ["synth_pad"]
        for name, p in (("strings", 0.1), ("electric_guitar", 0.15), ("piano", 0.08),
                        ("bells", 0.1)):
            inst += [name] if maybe(p) else []
        voice = vpick({"female": 0.08, None: 0.92})
        dyn = _pick(rng, {"quiet": 0.2, "soft": 0.15, "normal": 0.65})
    elif genre == "new_age":
        mode, tempo = "pentatonic", "slow"
        inst = [_pick(rng, {"harp": 0.5, "flute": 0.35, "piano": 0.15}), "synth_pad", "bells"]
        voice = vpick({"female": 0.08, None: 0.92})
        dyn = _pick(rng, {"soft": 0.3, "quiet": 0.22, "normal": 0.48})
    elif genre == "weird":
        mode = _pick(rng, {"major": 0.3, "minor": 0.7})
        tempo = _pick(rng, {"slow": 0.2, "mid": 0.6, "fast": 0.2})
        inst = ["fx"] + [_pick(rng, {"synth_pad": 0.3, "piano": 0.1, "drum_machine": 0.2,
                                     "fx": 0.4})]
        inst = list(dict.fromkeys(inst))
    elif genre == "nature":
        inst = [style]
    else:
        raise ValueError(f"unknown genre {genre!r}")
    lo, hi = {"slow": (58.0, 70.0), "mid": (96.0, 116.0), "fast": (150.0, 168.0)}[tempo]
    return ClipAttributes(instruments=tuple(inst), voice=voice, voice_style=vstyle,
                          tempo=tempo, dynamics=dyn, genre=render_genre, key=key,
                          mode=mode, bpm=round(float(rng.uniform(lo, hi)), 2))


# Instruments tagged by their own name, with the probability an annotator does.
_INSTRUMENT_TAGS = tuple((name, name, prob) for name, prob in (
    ("piano", 0.95), ("harpsichord", 0.95), ("harp", 0.93), ("violin", 0.93),
    ("cello", 0.93), ("strings", 0.93), ("flute", 0.95), ("sitar", 0.95)))
# The tags every track of a genre may get, in the order they are drawn.
_GENRE_TAGS = {
    "classical": (("classical", 0.97),),
    "opera": (("classical", 0.85),),
    "choral": (("classical", 0.5),),
    "techno": (("techno", 0.97), ("electro", 0.025)),
    "rock": (("rock", 0.97),),
    "metal": (("metal", 0.92), ("rock", 0.8), ("heavy metal", 0.12)),
    "ambient": (("ambient", 0.95), ("spacey", 0.05)),
    "new_age": (("new age", 0.92), ("ambient", 0.4)),
    "pop": (("pop", 0.95),),
    "dance": (("dance", 0.95), ("pop", 0.2), ("electronic", 0.6), ("beat", 0.4),
              ("electronica", 0.03)),
    "indian": (("indian", 0.97),),
    "country": (("country", 0.95),),
    "weird": (("weird", 0.95),),
    "folk": (("folk", 0.12), ("celtic", 0.05)),
}
_DYNAMICS_TAGS = {"loud": 0.9, "quiet": 0.9, "soft": 0.88}


def tag_probabilities(genre: str, style: str, a: ClipAttributes) -> dict[str, float]:
    """The probability that an annotator applies each tag to a clip.

    Tags come from audible attributes only; synonyms of one group favour
    different genres (e.g. "woman" for pop, country and folk singers,
    "female vocal" for pop and dance) so that each stays learnable.
    """
    inst = set(a.instruments)
    v = a.voice
    solo_voice = v in ("female", "male")
    opera = a.voice_style == "opera"
    instrumental = v is None
    p: dict[str, float] = {}

    def tag(name, prob):
        p[name] = max(p.get(name, 0.0), prob)

    # instruments
    if inst & {"acoustic_guitar", "electric_guitar", "distorted_guitar"}:
        tag("guitar", 0.95)
    drums = 0.85 if genre in ("rock", "metal") else 0.35
    for instrument, name, prob in _INSTRUMENT_TAGS + (
            ("synth_lead", "synth", 0.92), ("synth_lead", "synthesizer", 0.02),
            ("synth_pad", "synthesizer", 0.01), ("drum_kit", "drums", drums),
            ("drum_kit", "drum", 0.02), ("harpsichord", "harpsicord", 0.06),
            ("violin", "violins", 0.04), ("bells", "bells", 0.08),
            ("acoustic_guitar", "acoustic", 0.05)):
        if instrument in inst:
            tag(name, prob)
    # genres: the genre's own tags first, then those its style or sound adds
    for name, prob in _GENRE_TAGS.get(genre, ()):
        tag(name, prob)
    if genre == "classical":
        tag("classic", {"orchestral": 0.5, "baroque": 0.95}.get(style, 0.03))
        if style in _SOLO_STYLES:
            tag("solo", 0.85)
        if style == "orchestral":
            tag("orchestra", 0.15)
        if style == "baroque":
            tag("baroque", 0.1)
    elif genre == "opera":
        if style == "baroque":
            tag("classic", 0.5)
        for name, prob in (("opera", 0.97), ("singing", 0.8), ("operatic", 0.06)):
            tag(name, prob)
    elif genre == "techno":
        if style in ("melodic", "breakbeat"):
            tag("electronic", 0.95)
        if style in ("minimal", "breakbeat"):
            tag("beat", 0.95)
        if style == "breakbeat":
            tag("beats", 0.95)
        if style == "melodic":
            tag("electronica", 0.03)
            tag("trance", 0.04)
    elif genre == "rock" and a.dynamics == "loud":
        tag("hard rock", 0.15)
    elif genre == "indian" and "sitar" in inst:
        tag("drone", 0.06)
    elif genre == "nature":
        tag(style, 0.5)
    # tempo and dynamics
    if a.tempo == "slow":
        tag("slow", 0.85 if genre in ("ambient", "new_age") else 0.92)
    elif a.tempo == "fast":
        tag("fast", 0.88)
    if a.dynamics in _DYNAMICS_TAGS:  # each dynamic but normal is its own tag
        tag(a.dynamics, _DYNAMICS_TAGS[a.dynamics])
    # voices
    if v == "female":
        tag("female", 0.1 if opera else 0.95)
        if genre in ("pop", "country", "folk", "rock", "ambient", "new_age", "indian"):
            tag("woman", 0.85)
        elif genre == "dance":
            tag("woman", 0.3)
        tag("female vocal", 0.85 if genre in ("pop", "dance") else 0.1 if not opera else 0.0)
        if genre in ("folk", "ambient", "new_age", "indian"):
            tag("female voice", 0.9)
        elif opera:
            tag("female voice", 0.5)
        if not opera:
            tag("female singer", 0.05)
    if v == "male":
        tag("male", 0.1 if opera else 0.95)
        if genre in ("rock", "metal", "country", "folk"):
            tag("man", 0.9)
        elif opera:
            tag("man", 0.1)
        if genre in ("pop", "rock", "metal", "dance", "country"):
            tag("male vocal", 0.9)
        if genre in ("folk", "indian", "opera"):
            tag("male voice", 0.9)
        if not opera:
            tag("male singer", 0.05)
    if solo_voice and genre in ("pop", "dance", "rock", "metal", "indian"):
        tag("vocal", 0.85)
    if solo_voice and genre in ("country", "folk", "rock"):
        tag("vocals", 0.9)
    elif solo_voice and genre == "pop":
        tag("vocals", 0.35)
    if solo_voice and genre == "country":
        tag("singing", 0.3)
    if solo_voice and genre in ("ambient", "new_age", "indian"):
        tag("voice", 0.6)
    if v == "choir":
        for name, prob in (("choir", 0.97), ("choral", 0.8), ("voice", 0.8), ("vocal", 0.1),
                           ("chanting", 0.08)):
            tag(name, prob)
    if genre == "indian" and v is not None:
        tag("chanting", 0.08)
    if instrumental and genre in ("indian", "folk"):
        tag("no vocals", 0.87)
    if instrumental and genre in ("metal", "pop", "dance"):
        tag("no vocal", 0.75)
    if instrumental and genre == "new_age":
        tag("no voice", 0.9)
    if instrumental and genre not in ("nature",):
        tag("instrumental", 0.006)
        tag("no singer", 0.005)
    return p


# --------------------------------------------------------------------- names

_FIRST = ("anna", "ben", "clara", "david", "elena", "frank", "grace", "henry",
          "iris", "jacob", "karen", "leo", "maria", "nils", "olga", "peter",
          "rosa", "sam", "tara", "viktor", "wendy", "yusuf", "june", "omar",
          "lucia", "ravi", "mei", "tomas", "ingrid", "pablo")
_LAST = ("abbott", "bauer", "castillo", "dunn", "eriksen", "fischer", "garcia",
         "hale", "ivanova", "jensen", "kowalski", "lind", "moreau", "novak",
         "okafor", "price", "quinn", "rossi", "sato", "tanaka", "urban",
         "vance", "weber", "young", "zeller", "shankar", "maddox", "holm")
_WORDS = ("morning", "light", "quiet", "rooms", "river", "glass", "shadow",
          "summer", "winter", "night", "city", "ocean", "dust", "gold", "echo",
          "garden", "mirror", "north", "silver", "storm", "velvet", "paper",
          "engine", "signal", "harbor", "lantern", "orbit", "prairie", "raga",
          "sonata", "fugue", "suite", "prelude", "dance", "song", "lullaby",
          "machine", "circuit", "fire", "stone", "wild", "blue", "last",
          "first", "little", "long", "road", "home", "sky", "heart", "waves")
_ENSEMBLES = ("quartet", "ensemble", "consort", "players", "orchestra",
              "chamber_choir", "soloists", "trio")


def _names(genre, rng):
    one_of = lambda names: names[int(rng.integers(len(names)))]
    word = lambda: one_of(_WORDS)
    form = rng.random()
    if genre in ("classical", "opera", "choral") and form < 0.4:
        artist = f"{one_of(_LAST)}_{one_of(_ENSEMBLES)}"
    elif form < 0.6:
        artist = f"{one_of(_FIRST)}_{one_of(_LAST)}"
    elif form < 0.8:
        artist = f"the_{word()}s"
    else:
        artist = f"{word()}_{word()}"
    album = "_".join(word() for _ in range(int(rng.integers(1, 4))))
    title = "_".join(word() for _ in range(int(rng.integers(1, 4))))
    if rng.random() < 0.1:  # punctuation becomes a double underscore, as in MTT
        title = f"{word()}__{title}"
    return artist, album, int(rng.integers(1, 16)), title


# ---------------------------------------------------------------------- plan

class _Track(typing.NamedTuple):
    index: int
    genre: str
    style: str
    attributes: ClipAttributes
    folder: str
    names: tuple
    first: int  # position of the first clip in the track (0 = 0-29 s)
    count: int
    gaps: np.ndarray
    lead: float


# Low-discrepancy (Kronecker) sequence for the genre, folder, sub-style and
# voice of track t: frac(offset + t * alpha) with badly approximable alphas
# (golden ratio, sqrt 2, sqrt 3, sqrt 7), so even a small dataset has the
# intended proportions of genres, folders, and styles and voices per genre.
_ALPHA = np.array([(np.sqrt(5.0) - 1) / 2, np.sqrt(2.0) - 1, np.sqrt(3.0) - 1, np.sqrt(7.0) - 2])


def _latent(genres, offsets, index: int, rng) -> tuple:
    """(u, genre, style, ClipAttributes) of track (or artist) `index`: the
    point u = frac(offsets + (index + 1) * _ALPHA) picks the genre by the
    weights of `genres` ((genre, weight) pairs), its style and the voice."""
    u = (offsets + (index + 1) * _ALPHA) % 1.0
    weights = np.cumsum([w for _, w in genres], dtype=float)
    genre = genres[int(np.searchsorted(weights / weights[-1], u[0], side="right"))][0]
    style = _style(genre, u[2])
    return u, genre, style, _attributes(genre, style, rng, u[3])


def _check_args(clips, seconds, seed):
    if isinstance(clips, bool) or not isinstance(clips, (int, np.integer)):
        raise ValueError(f"clips must be an integer, got {clips!r}")
    if not MIN_CLIPS <= clips <= MAX_CLIPS:
        raise ValueError(
            f"clips must be between {MIN_CLIPS} and {MAX_CLIPS} (the dataset always "
            f"holds {len(KNOWN_BROKEN) + len(_EXTRA_BROKEN)} broken files), got {clips}")
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number))
            or not MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise ValueError(f"seconds must be between {MIN_SECONDS:g} and {MAX_SECONDS:g}, "
                         f"got {seconds!r}")
    check_integer("seed", seed, 0, "a non-negative integer")


def check_integer(name: str, value, minimum: int, kind: str | None = None) -> None:
    """ValueError `<name> must be <kind>` unless `value` is an integer (not a
    bool) of at least `minimum`; `kind` defaults to `an integer >= minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be {kind or f'an integer >= {minimum}'}, got {value!r}")


def remove_paths(paths) -> None:
    """Removes each of `paths` that exists: a folder with all it holds, else
    the file or link."""
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def plan(clips: int = 400, seconds: float = 29.1, seed: int = 0) -> tuple[ClipPlan, ...]:
    """Every row of the dataset, sorted by clip id, without rendering audio."""
    _check_args(clips, seconds, seed)
    seed = int(seed)
    offsets = np.random.default_rng([seed, 0]).random(4)
    n_plan = clips - len(KNOWN_BROKEN)
    step = seconds + 0.1  # 29.1 s clips start at 0, 29, 58, 88, 117, ...

    tracks = []
    total, t = 0, 0
    while total < n_plan:
        rng = np.random.default_rng([seed, 1, t])
        u, genre, style, attributes = _latent(_GENRES, offsets, t, rng)
        count = int(min(1 + rng.binomial(1, 0.35), n_plan - total))
        tracks.append(_Track(
            index=t, genre=genre, style=style, attributes=attributes,
            folder=_FOLDERS[int(u[1] * 16)], names=_names(genre, rng),
            first=int(rng.integers(0, 4)), count=count,
            gaps=rng.integers(1, 4, size=count),  # id steps inside the track
            lead=float(rng.uniform(0.3, 1.7))))  # share of the id gap before it
        total += count
        t += 1

    # Spread the ids over 2..MAX_CLIP_ID, skipping the known broken ids.
    span = MAX_CLIP_ID - 2 - len(KNOWN_BROKEN)
    inside = sum(int(tr.gaps[1:].sum()) for tr in tracks)
    free = max(span - inside, 0)
    leads = np.array([tr.lead for tr in tracks])
    lead_gaps = np.floor(free * leads / leads.sum() * 0.98).astype(int)
    lead_gaps[0] = 1  # the first clip id is 2, as in MagnaTagATune
    known = sorted(KNOWN_BROKEN)

    def real_id(v):
        for k in known:
            if v >= k:
                v += 1
        return v

    rows, used_paths = [], set(KNOWN_BROKEN.values())
    virtual = 1
    for tr, lead_gap in zip(tracks, lead_gaps):
        virtual += max(int(lead_gap), 1)
        artist, album, number, title = tr.names
        probs = tag_probabilities(tr.genre, tr.style, tr.attributes)
        for part in range(tr.count):
            if part:
                virtual += int(tr.gaps[part])
            start = int(round((tr.first + part) * step))
            end = start + int(seconds)
            path = f"{tr.folder}/{artist}-{album}-{number:02d}-{title}-{start}-{end}.mp3"
            while path in used_paths:  # the same names drawn twice: renumber
                number = number % 99 + 1
                path = f"{tr.folder}/{artist}-{album}-{number:02d}-{title}-{start}-{end}.mp3"
            used_paths.add(path)
            trng = np.random.default_rng([seed, 3, tr.index, part])
            tags = tuple(sorted(name for name, pr in probs.items() if trng.random() < pr))
            rows.append(ClipPlan(real_id(virtual), path, tags, tr.attributes, tr.genre,
                                 tr.style, None, tr.index, part))

    # Turn a few planned clips into broken files (they keep their tags).
    top50 = set(MTT_TOP50)
    taken = set()
    for q, kind in _EXTRA_BROKEN:
        j = int(q * len(rows))
        for _ in range(len(rows)):
            if j not in taken and top50 & set(rows[j].tags):
                break
            j = (j + 1) % len(rows)
        else:
            j = next(i for i in range(len(rows)) if i not in taken)
            rows[j] = dataclasses.replace(
                rows[j], tags=tuple(sorted(set(rows[j].tags) | {"guitar"})))
        taken.add(j)
        rows[j] = dataclasses.replace(rows[j], broken=kind)
    for clip_id, path in KNOWN_BROKEN.items():
        rows.append(ClipPlan(clip_id, path, _KNOWN_TAGS[clip_id], None, "unknown",
                             "unknown", _KNOWN_KIND[clip_id]))
    rows.sort(key=lambda r: r.clip_id)
    return tuple(rows)


# ------------------------------------------------------------------ writing

_NOT_AUDIO = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
              b"<body><h1>Not Found</h1><p>The requested URL was not found on this "
              b"server.</p></body></html>\n")


def _write_clip(job):
    """Writes the file of one row, whole or not at all (a file already
    there is one an unfinished run wrote); job: (ClipPlan, root, seconds, seed)."""
    row, root, seconds, seed = job
    path = os.path.join(root, AUDIO_DIR, row.mp3_path)
    if os.path.exists(path):
        return
    if row.broken in ("empty", "garbage", "not_audio"):
        data = {"empty": b"", "not_audio": _NOT_AUDIO}.get(row.broken)
        if data is None:  # garbage: random bytes without 0xFF, no MP3 frame sync
            data = np.random.default_rng([seed, 4, row.clip_id]).integers(
                0, 255, 4096, dtype=np.uint8).tobytes()
        fileio.write_atomic(path, data, durable=False)  # a kill: whole or absent
        return
    audio = render_clip(row.attributes, seconds, SAMPLE_RATE,
                        np.random.default_rng([seed, 2, row.track, row.part]))
    data = encode_mp3(audio, SAMPLE_RATE)
    if row.broken == "truncated":  # keep about one second of the stream
        data = data[:int(len(data) * min(1.0, seconds / 3.0) / seconds)]
    fileio.write_atomic(path, data, durable=False)  # a kill: whole or absent


def encode_mp3(audio, sample_rate: int) -> bytes:
    """The MP3 bytes of `audio` (float samples), as soundfile (libsndfile) encodes them."""
    import io

    import soundfile as sf  # imported here: plan() and the CLI's checks need no audio stack

    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def _write_csv(rows, path: str, tag_names=TAG_NAMES):
    """annotations_final.csv: tab-separated, every field double-quoted."""
    lines = ["\t".join(f'"{c}"' for c in ("clip_id",) + tuple(tag_names) + ("mp3_path",))]
    for r in rows:
        tags = set(r.tags)
        values = [str(r.clip_id)] + ["1" if t in tags else "0" for t in tag_names] + [r.mp3_path]
        lines.append("\t".join(f'"{v}"' for v in values))
    fileio.write_atomic(path, "\n".join(lines) + "\n")


def generate(out_dir, clips: int = 400, seconds: float = 29.1, seed: int = 0,
             progress: bool = True, overwrite: bool = False,
             workers: int = 1) -> SyntheticSummary:
    """Write the synthetic dataset under out_dir and return what was written.

    out_dir must not hold annotations_final.csv or mp3/ already, unless
    overwrite=True (then those two are replaced). The CSV is written last,
    so a directory with a CSV holds a complete dataset. `workers` processes
    synthesise and encode clips in parallel; the files do not depend on it.
    """
    _check_args(clips, seconds, seed)
    check_integer("workers", workers, 1)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"OUT_DIR {out_dir!r} is an existing file; expected a directory "
                         "to write the dataset into (it is created if missing)")
    csv_path = os.path.join(out_dir, CSV_NAME)
    audio_root = os.path.join(out_dir, AUDIO_DIR)
    present = [name for name in (CSV_NAME, AUDIO_DIR, ORIGIN_FILE)
               if os.path.lexists(os.path.join(out_dir, name))]
    start_synthetic(out_dir, present, overwrite, remove_paths, "tagger.datasets.synthetic",
                    seed=int(seed), clips=int(clips), seconds=float(seconds))
    rows = plan(clips, seconds, seed)
    from tagger.folder_lock import remove_stale_temporaries

    for folder in _FOLDERS:
        os.makedirs(os.path.join(audio_root, folder), exist_ok=True)
        remove_stale_temporaries(os.path.join(audio_root, folder))  # a killed run's
    from tqdm import tqdm

    jobs = ((row, out_dir, float(seconds), int(seed)) for row in rows)
    written = ordered_map(_write_clip, jobs, workers)
    for _ in tqdm(written, total=len(rows), desc="synthesising clips", unit="clip",
                  disable=not progress):
        pass
    write_synthetic_marker(out_dir, "tagger.datasets.synthetic", seed=int(seed), clips=len(rows),
                           seconds=float(seconds))
    _write_csv(rows, csv_path)
    finish_synthetic(out_dir)
    broken = tuple(BrokenFile(r.clip_id, r.mp3_path, r.broken) for r in rows if r.broken)
    return SyntheticSummary(csv_path=csv_path, audio_root=audio_root, num_clips=len(rows),
                            broken=broken, tag_names=TAG_NAMES, seconds=float(seconds),
                            sample_rate=SAMPLE_RATE, seed=int(seed))
