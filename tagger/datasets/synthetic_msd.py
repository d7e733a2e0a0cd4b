"""A synthetic Million Song Dataset in the real file layouts.

    python -m tagger.commands.synthetic_msd OUT [--tracks N] [--seed S]
        [--seconds S] [--workers N] [--metadata-only] [--no-progress]

writes, consistent with each other,

    OUT/track_metadata.db        SQLite, table `songs` (track_id, title,
                                 song_id, release, artist_id, artist_mbid,
                                 artist_name, duration, artist_familiarity,
                                 artist_hotttnesss, year, track_7digitalid,
                                 shs_perf, shs_work), as the MSD ships it
    OUT/lastfm_tags.db           SQLite, tables tids(tid), tags(tag),
                                 tid_tag(tid, tag, val): tid and tag are
                                 ROWIDs, val 0-100 (a tag counts when > 50)
    OUT/audio/{d[0]}/{d[1]}/{d}.clip.mp3
                                 7digital previews, d = track_7digitalid
    OUT/cals/{train,valid,test,student}_ids.npy, {train,valid,test}_binaries.npy
                                 the CALS split format: `<U18` ids, N x 50
                                 uint8 labels in the CALS tag order; split
                                 by artist, student = tracks of untagged artists
    OUT/classic/filtered_list_train.cP, filtered_list_test.cP,
                msd_id_to_tag_vector.cP, 50tagList.txt,
                MSD_id_to_7D_id.pkl, 7D_id_to_path.pkl
                                 the classic split: Python 2 pickles (protocol
                                 2, byte-string ids); a track-level random split
                                 (artists leak between its splits, as in the
                                 original); the first round(len * 201680 /
                                 213454) ids of the train list are train
    OUT/synthetic.json           marks the folder as synthetic

Ids look like the MSD's: `TR` + 16 characters for tracks, `AR...` for
artists, `SO...` for songs, 2- to 7-digit 7digital ids.

How tracks sound. Each artist draws a genre and a fixed timbre (instruments,
voice, key, mode, tempo: the synthetic MagnaTagATune generator's
`ClipAttributes`); every track of the artist is rendered from those with its
own random melody. Tags come from the audible attributes (genre,
instruments, voice) and from artist "flavour" tags (a decade, a sub-genre)
that only the artist's timbre reveals, so a split that puts an artist in
train and test scores visibly higher than an artist-level split.

Deliberate defects: two tracks carry ids from the 55 known broken MSD ids,
one preview is empty, one is too short (1 s), one is missing, and one track
has no 7digital id (-1). About a quarter of the artists are untagged (the
student tracks); some tracks of tagged artists have no tag above 50.

Deterministic: the same arguments give byte-identical files, whatever the
number of workers. No TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3

import numpy as np

from tagger import fileio
from tagger.datasets import synthetic as mtt_synthetic
from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS, KNOWN_BROKEN_IDS
from tagger.datasets.origin import (
    ORIGIN_FILE,
    finish_synthetic,
    start_synthetic,
    write_synthetic_marker,
)
from tagger.datasets.pickle2 import dump_py2
from tagger.datasets.sounds import render_clip
from tagger.parallel import ordered_map

SAMPLE_RATE = 22050
MIN_TRACKS = 40
METADATA_DB = "track_metadata.db"
TAGS_DB = "lastfm_tags.db"
AUDIO_DIR = "audio"
CALS_DIR = "cals"
CLASSIC_DIR = "classic"
CLASSIC_TRAIN_SHARE = 201680 / 213454  # train share of filtered_list_train.cP

# Tag names as they appear in lastfm_tags.db: the classic list's spelling,
# lower case otherwise; plus tags no split uses.
_DB_SPELLING = {t.lower(): t for t in CLASSIC_TAGS}
_NOISE_TAGS = ("favorites", "Love", "seen live", "awesome", "my radio")

# Tags a listener applies from what is heard: genre -> {tag: probability}.
_GENRE_TAGS = {
    "techno": {"electronic": 0.9, "electro": 0.5, "electronica": 0.4},
    "classical": {"instrumental": 0.6, "beautiful": 0.4, "mellow": 0.3},
    "rock": {"rock": 0.95, "alternative": 0.5, "indie": 0.4},
    "metal": {"metal": 0.95, "heavy metal": 0.6, "rock": 0.5},
    "ambient": {"ambient": 0.9, "chillout": 0.6, "chill": 0.5, "experimental": 0.3},
    "new_age": {"ambient": 0.6, "chillout": 0.5, "easy listening": 0.5, "mellow": 0.5},
    "pop": {"pop": 0.95, "catchy": 0.4, "happy": 0.3},
    "dance": {"dance": 0.9, "electronic": 0.6, "house": 0.5, "party": 0.4},
    "country": {"country": 0.9, "acoustic": 0.5},
    "folk": {"folk": 0.9, "acoustic": 0.6, "mellow": 0.5},
    "indian": {"world": 0.9, "psychedelic": 0.3},
    "opera": {"beautiful": 0.5, "sad": 0.3},
    "choral": {"christian": 0.6, "beautiful": 0.4},
    "weird": {"experimental": 0.9, "psychedelic": 0.5},
}
# Artist flavour: each artist takes one or two of its genre's family, tagged
# on most of its tracks; nothing in the audio marks them but the artist.
_FAMILY = {
    "rock": ("indie rock", "alternative rock", "british", "punk", "progressive rock",
             "classic rock", "hard rock", "punk rock", "indie pop"),
    "metal": ("death metal", "metalcore", "progressive metal", "hardcore", "hard rock"),
    "pop": ("soul", "rnb", "funk", "hip-hop", "reggae", "sexy", "latin", "indie pop"),
    "dance": ("hip-hop", "sexy", "latin", "spanish", "house"),
    "techno": ("trance", "house", "experimental"),
    "ambient": ("trance", "electronica", "beautiful"),
    "country": ("blues", "british", "sad", "christian"),
    "folk": ("blues", "british", "sad", "spanish"),
}
_OTHER_FAMILY = ("jazz", "blues", "sad", "spanish", "beautiful")
_DECADES = ("60s", "70s", "80s", "90s", "00s", "oldies")
_GENRES = tuple(g for g in mtt_synthetic._GENRES if g[0] != "nature")

_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_HEX = np.array(list("0123456789ABCDEF"))


@dataclasses.dataclass(frozen=True)
class Summary:
    """What `generate` wrote: counts, and the ids with defects on purpose."""

    out_dir: str
    tracks: int
    artists: int
    labelled_tracks: int  # tracks with a tag above 50
    defects: dict  # track id -> "known_broken" | "empty" | "short" | "missing" | "no_7digital_id"
    cals_sizes: dict
    classic_sizes: dict
    seed: int
    seconds: float


# ---------------------------------------------------------------------- plan

class _Catalogue:
    """Every track as column arrays (no per-track Python objects but tags)."""

    def __init__(self, tracks: int, seed: int, seconds: float):
        rng = np.random.default_rng([seed, 100])
        sizes = []
        while sum(sizes) < tracks:
            sizes.append(int(min(1 + rng.poisson(3.0), 12)))
        sizes[-1] -= sum(sizes) - tracks
        self.artists = len(sizes)
        self.artist_of = np.repeat(np.arange(self.artists), sizes)  # (tracks,)
        offsets = rng.random(4)
        self.attributes, self.genre, self.tag_probs, self.tagged = [], [], [], []
        for a in range(self.artists):
            arng = np.random.default_rng([seed, 101, a])
            u, genre, _, attributes = mtt_synthetic._latent(_GENRES, offsets, a, arng)
            self.attributes.append(attributes)
            self.genre.append(genre)
            self.tag_probs.append(_artist_tag_probs(genre, attributes, arng))
            self.tagged.append(bool(u[1] >= 0.25))  # a quarter of artists untagged
        self.track_ids = _ids(rng, "TR", tracks, "128F")
        self.song_ids = _ids(rng, "SO", tracks, "12A8C")
        self.artist_ids = _ids(rng, "AR", self.artists, "1187B")
        digital = rng.choice(np.arange(10, 9_999_999), size=tracks, replace=False)
        self.digital_ids = digital.astype(np.int64)
        self.seconds = np.full(tracks, float(seconds))
        self.defects = {}
        tagged_tracks = np.flatnonzero(np.array(self.tagged)[self.artist_of])
        picks = tagged_tracks[np.linspace(0, len(tagged_tracks) - 1, 8).round().astype(int)[1:-1]]
        known = sorted(KNOWN_BROKEN_IDS)
        for i, kind in zip(picks, ("known_broken", "empty", "short", "missing",
                                   "known_broken", "no_7digital_id")):
            if kind == "known_broken":
                pick = known[int(rng.integers(len(known)))]
                while pick in self.defects:  # two different known ids
                    pick = known[int(rng.integers(len(known)))]
                self.track_ids[i] = pick
            elif kind == "short":
                self.seconds[i] = 1.0
            elif kind == "no_7digital_id":
                self.digital_ids[i] = -1
            self.defects[str(self.track_ids[i])] = kind
        # Tags of every track: val > 50 for applied tags, a few weak values.
        self.tag_rows = [_track_tags(self, t, seed) for t in range(tracks)]


def _ids(rng, prefix: str, n: int, middle: str) -> np.ndarray:
    """n unique 18-character ids: prefix, 5 letters, `middle`, hex digits."""
    tail = 18 - len(prefix) - 5 - len(middle)
    letters = _LETTERS[rng.integers(0, 26, size=(n, 5))]
    hexes = _HEX[rng.integers(0, 16, size=(n, tail))]
    ids = np.array([prefix + "".join(a) + middle + "".join(b)
                    for a, b in zip(letters, hexes)], dtype="<U18")
    _, first = np.unique(ids, return_index=True)
    if len(first) != n:
        raise ValueError("internal: duplicate ids drawn; try another seed")
    return ids


def _artist_tag_probs(genre: str, attributes, rng) -> dict:
    """{tag (lower case): probability a track of this artist carries it}."""
    p = dict(_GENRE_TAGS.get(genre, {}))
    inst = set(attributes.instruments)
    if inst & {"acoustic_guitar", "electric_guitar", "distorted_guitar"}:
        p["guitar"] = 0.5
    if "piano" in inst:
        p["piano"] = 0.8
    if attributes.voice == "female":
        p["female vocalists"] = 0.9
        p["female vocalist"] = 0.3
    elif attributes.voice == "male":
        p["male vocalists"] = 0.85
    elif attributes.voice is None:
        p["instrumental"] = max(p.get("instrumental", 0.0), 0.4)
    family = _FAMILY.get(genre, _OTHER_FAMILY)
    for k in rng.choice(len(family), size=int(rng.integers(1, 3)), replace=False):
        p[family[int(k)]] = max(p.get(family[int(k)], 0.0), 0.8)
    if rng.random() < 0.7:
        p[_DECADES[int(rng.integers(len(_DECADES)))]] = 0.75
    return p


def _track_tags(cat: _Catalogue, t: int, seed: int) -> list:
    """[(tag name as in the db, val)] of track t; [] for untagged tracks."""
    a = int(cat.artist_of[t])
    if not cat.tagged[a]:
        return []
    rng = np.random.default_rng([seed, 102, t])
    if rng.random() < 0.1:  # a tagged artist's track without tags
        return []
    rows = []
    for tag, prob in sorted(cat.tag_probs[a].items()):
        draw = rng.random()
        val = int(rng.integers(51, 101)) if draw < prob else (
            int(rng.integers(1, 51)) if draw < prob + 0.1 else 0)
        if val:
            rows.append((_DB_SPELLING.get(tag, tag), val))
    if rng.random() < 0.3:
        rows.append((_NOISE_TAGS[int(rng.integers(len(_NOISE_TAGS)))],
                     int(rng.integers(1, 101))))
    return rows


# ------------------------------------------------------------------ writing

def _preview_path(digital_id: int) -> str:
    d = str(int(digital_id))
    return f"{d[0]}/{d[1]}/{d}.clip.mp3"


def _write_preview(job):
    root, path, attributes, seconds, kind, seed, t = job
    full = os.path.join(root, path)
    if os.path.exists(full):  # an unfinished run's, written whole
        return
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if kind in ("empty", "known_broken"):
        fileio.write_atomic(full, b"", durable=False)
        return
    audio = render_clip(attributes, seconds, SAMPLE_RATE, np.random.default_rng([seed, 103, t]))
    fileio.write_atomic(full, mtt_synthetic.encode_mp3(audio, SAMPLE_RATE),
                        durable=False)  # a kill: whole or absent


def _write_db(path: str, statements, rows_by_table, indexes=()) -> None:
    """A new SQLite file: `statements`, then the rows (one transaction),
    then each of `indexes` in a transaction of its own."""
    with fileio.replacing(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            for sql in statements:
                con.execute(sql)
            for insert, rows in rows_by_table:
                con.executemany(insert, rows)
            con.commit()
            for sql in indexes:
                con.execute(sql)
                con.commit()
        finally:
            con.close()


def _write_metadata_db(cat: _Catalogue, path: str, seed: int) -> None:
    rng = np.random.default_rng([seed, 104])
    words = mtt_synthetic._WORDS
    familiarity = rng.random(cat.artists).round(6)
    hotness = (rng.random(cat.artists) * 0.8).round(6)
    years = rng.integers(1960, 2011, size=cat.artists)

    def rows():
        for t in range(len(cat.track_ids)):
            a = int(cat.artist_of[t])
            title = " ".join(words[(t * 7 + k * 13) % len(words)] for k in range(1 + t % 3))
            yield (str(cat.track_ids[t]), title.title(), str(cat.song_ids[t]),
                   f"Release {a}-{t % 4}", str(cat.artist_ids[a]), "",
                   f"Artist {a:05d}", float(cat.seconds[t]), float(familiarity[a]),
                   float(hotness[a]), int(years[a]) if t % 5 else 0,
                   int(cat.digital_ids[t]), 0, 0)

    _write_db(path, [
        "CREATE TABLE songs (track_id text PRIMARY KEY, title text, song_id text, "
        "release text, artist_id text, artist_mbid text, artist_name text, "
        "duration real, artist_familiarity real, artist_hotttnesss real, year int, "
        "track_7digitalid int, shs_perf int, shs_work int)"],
        [("INSERT INTO songs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())])


def _write_tags_db(cat: _Catalogue, path: str) -> None:
    names = sorted({name for rows in cat.tag_rows for name, _ in rows})
    tag_rowid = {name: i + 1 for i, name in enumerate(names)}
    # Tracks Last.fm matched: every tagged track and most untagged ones.
    matched = [t for t in range(len(cat.track_ids)) if cat.tag_rows[t] or t % 4]
    tid_rowid = {t: i + 1 for i, t in enumerate(matched)}

    def pairs():
        for t in matched:
            for name, val in cat.tag_rows[t]:
                yield tid_rowid[t], tag_rowid[name], float(val)

    _write_db(path, [
        "CREATE TABLE tids (tid TEXT)", "CREATE TABLE tags (tag TEXT)",
        "CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT)"],
        [("INSERT INTO tids VALUES (?)", ((str(cat.track_ids[t]),) for t in matched)),
         ("INSERT INTO tags VALUES (?)", ((n,) for n in names)),
         ("INSERT INTO tid_tag VALUES (?,?,?)", pairs())],
        ["CREATE INDEX idx_tids ON tids ('tid')", "CREATE INDEX idx_tags ON tags ('tag')",
         "CREATE INDEX idx_tid_tag_tid ON tid_tag ('tid')",
         "CREATE INDEX idx_tid_tag_tag ON tid_tag ('tag')"])


def _binaries(cat: _Catalogue, tracks, vocabulary) -> np.ndarray:
    """(len(tracks), len(vocabulary)) uint8: tag applied with val > 50."""
    column = {t.lower(): i for i, t in enumerate(vocabulary)}
    out = np.zeros((len(tracks), len(vocabulary)), np.uint8)
    for row, t in enumerate(tracks):
        for name, val in cat.tag_rows[t]:
            if val > 50 and name.lower() in column:
                out[row, column[name.lower()]] = 1
    return out


def _save_npy(path: str, array: np.ndarray) -> None:
    with fileio.replacing(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _write_cals(cat: _Catalogue, folder: str, seed: int) -> dict:
    """Artist-level split: 70/15/15 % of tagged artists; student = every
    track of the untagged artists. Tracks without a CALS tag are left out."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng([seed, 105])
    tagged = [a for a in range(cat.artists) if cat.tagged[a]]
    order = rng.permutation(tagged)
    n_val = max(1, round(0.15 * len(order)))
    groups = {"valid": set(order[:n_val].tolist()),
              "test": set(order[n_val:2 * n_val].tolist()),
              "train": set(order[2 * n_val:].tolist())}
    every = np.arange(len(cat.track_ids))
    sizes = {}
    for split, artists in groups.items():
        tracks = [t for t in every if int(cat.artist_of[t]) in artists]
        labels = _binaries(cat, tracks, CALS_TAGS)
        keep = labels.any(axis=1)
        tracks = [t for t, k in zip(tracks, keep) if k]
        tracks = [tracks[i] for i in rng.permutation(len(tracks))]  # CALS ids are unsorted
        _save_npy(os.path.join(folder, f"{split}_ids.npy"), cat.track_ids[tracks].astype("<U18"))
        _save_npy(os.path.join(folder, f"{split}_binaries.npy"), _binaries(cat, tracks, CALS_TAGS))
        sizes[split] = len(tracks)
    student = [t for t in every if not cat.tagged[int(cat.artist_of[t])]]
    _save_npy(os.path.join(folder, "student_ids.npy"), cat.track_ids[student].astype("<U18"))
    sizes["student"] = len(student)
    return sizes


def _write_classic(cat: _Catalogue, folder: str, seed: int) -> dict:
    """Track-level random split of the tracks with a classic tag; the pickles
    as Python 2 wrote them."""
    os.makedirs(folder, exist_ok=True)
    every = np.arange(len(cat.track_ids))
    labels = _binaries(cat, every, CLASSIC_TAGS)
    tracks = every[labels.any(axis=1)]
    order = np.random.default_rng([seed, 106]).permutation(tracks)
    n_test = max(1, round(0.12 * len(order)))
    test = sorted(order[:n_test].tolist(), key=lambda t: cat.track_ids[t])
    train_valid = order[n_test:].tolist()
    n_train = round(len(train_valid) * CLASSIC_TRAIN_SHARE)
    ids = lambda ts: [str(cat.track_ids[t]).encode() for t in ts]
    fileio.write_atomic(os.path.join(folder, "filtered_list_train.cP"),
                        dump_py2(ids(train_valid)))
    fileio.write_atomic(os.path.join(folder, "filtered_list_test.cP"), dump_py2(ids(test)))
    vectors = {str(cat.track_ids[t]).encode(): labels[t].astype(np.int64).reshape(50, 1)
               for t in sorted(train_valid + test, key=lambda t: cat.track_ids[t])}
    fileio.write_atomic(os.path.join(folder, "msd_id_to_tag_vector.cP"), dump_py2(vectors))
    has_7d = [t for t in every if cat.digital_ids[t] > 0]
    fileio.write_atomic(os.path.join(folder, "MSD_id_to_7D_id.pkl"), dump_py2(
        {str(cat.track_ids[t]).encode(): int(cat.digital_ids[t]) for t in has_7d}))
    fileio.write_atomic(os.path.join(folder, "7D_id_to_path.pkl"), dump_py2(
        {int(cat.digital_ids[t]): _preview_path(cat.digital_ids[t]).encode() for t in has_7d}))
    fileio.write_atomic(os.path.join(folder, "50tagList.txt"), "\n".join(CLASSIC_TAGS) + "\n")
    return {"train": n_train, "valid": len(train_valid) - n_train, "test": len(test)}


def generate(out_dir, tracks: int = 300, seed: int = 0, seconds: float = 30.0,
             workers: int = 1, progress: bool = True, metadata_only: bool = False,
             overwrite: bool = False) -> Summary:
    """Writes the synthetic MSD under `out_dir` (see the module docstring).
    `metadata_only` writes the databases and split files without audio."""
    mtt_synthetic.check_integer("tracks", tracks, MIN_TRACKS)
    if not 1.0 <= float(seconds) <= 120.0:
        raise ValueError(f"seconds must lie in [1, 120], got {seconds!r}")
    mtt_synthetic.check_integer("seed", seed, 0, "a non-negative integer")
    mtt_synthetic.check_integer("workers", workers, 1)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"OUT {out_dir!r} is a file; name a folder (created if missing)")
    ours = (METADATA_DB, TAGS_DB, AUDIO_DIR, CALS_DIR, CLASSIC_DIR, ORIGIN_FILE)
    present = [n for n in ours if os.path.lexists(os.path.join(out_dir, n))]
    start_synthetic(out_dir, present, overwrite, mtt_synthetic.remove_paths,
                    "tagger.datasets.synthetic_msd", seed=int(seed), tracks=int(tracks),
                    seconds=float(seconds), audio=not metadata_only)
    seed, tracks = int(seed), int(tracks)
    cat = _Catalogue(tracks, seed, float(seconds))
    if not metadata_only:
        from tqdm import tqdm

        from tagger.folder_lock import remove_stale_temporaries

        root = os.path.join(out_dir, AUDIO_DIR)
        for folder, _, _ in os.walk(root):  # a killed run's previews in progress
            remove_stale_temporaries(folder)
        jobs = ((root, _preview_path(cat.digital_ids[t]), cat.attributes[int(cat.artist_of[t])],
                 float(cat.seconds[t]), cat.defects.get(str(cat.track_ids[t])), seed, t)
                for t in range(tracks)
                if cat.defects.get(str(cat.track_ids[t])) not in ("missing", "no_7digital_id"))
        count = tracks - sum(k in ("missing", "no_7digital_id") for k in cat.defects.values())
        for _ in tqdm(ordered_map(_write_preview, jobs, workers), total=count,
                      desc="synthesising previews", unit="track", disable=not progress):
            pass
    cals = _write_cals(cat, os.path.join(out_dir, CALS_DIR), seed)
    classic = _write_classic(cat, os.path.join(out_dir, CLASSIC_DIR), seed)
    _write_tags_db(cat, os.path.join(out_dir, TAGS_DB))
    write_synthetic_marker(out_dir, "tagger.datasets.synthetic_msd", seed=seed, tracks=tracks,
                           seconds=float(seconds), audio=not metadata_only)
    _write_metadata_db(cat, os.path.join(out_dir, METADATA_DB), seed)  # last: marks completion
    finish_synthetic(out_dir)
    labelled = sum(any(v > 50 for _, v in rows) for rows in cat.tag_rows)
    return Summary(out_dir, tracks, cat.artists, labelled, dict(cat.defects), cals, classic,
                   seed, float(seconds))
