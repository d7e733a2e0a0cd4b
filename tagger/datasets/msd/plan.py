"""The Million Song Dataset as a dataset source (`SOURCE`): label source +
audio layout -> the DatasetPlan's clips per split.

Clip ids are the tracks' ROWIDs in track_metadata.db's `songs` table (the
records store int64 ids; `SELECT track_id FROM songs WHERE ROWID = ?` gives
the MSD id back); paths are relative to the audio folder. Splits are stored
as columns (`ClipColumns`), so a million tracks are a few numpy arrays.
The known broken MSD ids are planned as known broken: the writer skips
them and lists each with its reason. Tracks without an audio file (or
without a 7digital id) are left out of the plan, counted per split in the
notes, the first few named with their reason.

Every folder may be local or any tf.io.gfile path (gs://, ...): the audio
is read where it lies, split files are read through tf.io.gfile, and a
remote SQLite file is first copied to a local temporary file (SQLite
reads local files only; see sqlite.connect).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from tqdm import tqdm

from tagger import fileio
from tagger.config import join_path
from tagger.datasets.msd import labels as label_sources
from tagger.datasets.msd import layout as layouts
from tagger.datasets.msd.sqlite import read_songs
from tagger.datasets.msd.tags import KNOWN_BROKEN_IDS
from tagger.datasets.origin import read_origin
from tagger.datasets.source import DatasetSource, setting
from tagger.errors import UserError
from tagger.records.plan import STUDENT_SPLIT, ClipColumns, DatasetPlan

AUDIO_DIR = "audio"
KNOWN_BROKEN_REASON = "known broken or short MSD audio (skipped by sota-music-tagging-models)"
MISSING_EXAMPLES = 20  # tracks without audio named in the notes


class SplitAction(argparse.Action):
    """--split lastfm | --split cals DIR | --split classic DIR: sets the
    settings `source` and `source_dir`."""

    def __call__(self, parser, namespace, values, option_string=None):
        source, *rest = values
        if source not in ("lastfm", "cals", "classic"):
            parser.error(f"--split: expected lastfm, cals DIR or classic DIR, got {source!r}")
        if source == "lastfm" and rest:
            parser.error("--split lastfm takes no folder (its split is made from "
                         "lastfm_tags.db)")
        if source != "lastfm" and len(rest) != 1:
            parser.error(f"--split {source} needs the folder of its split files, "
                         f"e.g. --split {source} msd/{source}")
        namespace.source, namespace.source_dir = source, rest[0] if rest else None


_LASTFM_ONLY = dict(only_with=("source", "lastfm",
                               "the {source} split files fix the tags and the split"))


@dataclasses.dataclass(frozen=True)
class MsdSettings:
    """What decides an MSD plan (beyond the data folder)."""

    source: str = setting(  # lastfm | cals | classic; --split sets source_dir too
        "lastfm", "label source: 'lastfm' (top-k Last.fm tags, our artist-level split), "
                  "'cals DIR' (CALS .npy files) or 'classic DIR' (the classic pickles) "
                  "(default: lastfm)", flag="--split", nargs="+", action=SplitAction,
        metavar="SOURCE [DIR]")
    source_dir: str | None = None  # the CALS or classic folder
    audio_dir: str | None = setting(None, "root of the audio files (default: <data-dir>/audio)")
    layout: str = setting(
        "auto", "audio layout: 7digital ({d0}/{d1}/{d}.clip.mp3), msd "
                "({tid[2]}/{tid[3]}/{tid[4]}/{tid}.ext) or auto (default: auto)",
        choices=["auto", *layouts.LAYOUTS])
    top_k: int = setting(50, "--split lastfm: number of tags (default: 50)", **_LASTFM_ONLY)
    min_tag_value: float = setting(
        50.0, "--split lastfm: a tag counts when its val (0-100) is above this (default: 50)",
        **_LASTFM_ONLY)
    seed: int = setting(0, "--split lastfm: seeds the artist-level split and the train "
                           "shuffle (default: 0)", **_LASTFM_ONLY)
    check_audio: bool = True  # stat every file; tracks without one are skipped

    def __post_init__(self):
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")
        if not 0 <= self.min_tag_value < 100:
            raise ValueError(f"--min-tag-value must lie in [0, 100), got {self.min_tag_value}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be non-negative, got {self.seed}")


def plan_msd(data_dir: str, settings: MsdSettings = MsdSettings(),
             progress: bool = True) -> DatasetPlan:
    if settings.source not in label_sources.LABEL_SOURCES:
        raise UserError(f"unknown label source {settings.source!r}; expected one of "
                        f"{', '.join(label_sources.LABEL_SOURCES)}")
    if (settings.source == "lastfm") == (settings.source_dir is not None):
        raise UserError("--split lastfm takes no folder; --split cals and --split classic "
                        "need the folder of their split files")
    if settings.source_dir is not None and not fileio.isdir(settings.source_dir):
        raise UserError(f"split folder {settings.source_dir!r} does not exist")
    if not fileio.isdir(data_dir):
        raise UserError(f"--data-dir {data_dir!r} does not exist; it must hold "
                        "track_metadata.db (and lastfm_tags.db for --split lastfm)")
    audio_root = settings.audio_dir or join_path(data_dir, AUDIO_DIR)
    if settings.layout == "auto":
        layout, ext = layouts.detect(audio_root)
    elif settings.layout in layouts.LAYOUTS:
        layouts.check_root(audio_root)
        layout, ext = settings.layout, "mp3" if settings.layout == "7digital" else None
        if ext is None:
            ext = layouts.detect(audio_root)[1]
    else:
        raise UserError(f"unknown layout {settings.layout!r}; expected auto or "
                        f"{' or '.join(layouts.LAYOUTS)}")

    with tqdm(desc="reading track_metadata.db", unit="track", disable=not progress) as bar:
        songs = read_songs(data_dir, progress=bar)
    if settings.source == "lastfm":
        found = label_sources.from_lastfm(data_dir, songs, settings.top_k,
                                          settings.min_tag_value, settings.seed,
                                          progress=progress)
    elif settings.source == "cals":
        found = label_sources.from_cals(settings.source_dir, songs)
    else:
        found = label_sources.from_classic(settings.source_dir, songs)

    paths = layouts.relative_paths(layout, ext, songs.track_ids, songs.digital)
    used = np.zeros(len(songs), bool)
    for pos in found.positions.values():
        used[pos] = True
    no_path = used & (paths == b"")
    paths[no_path] = [b"no-7digital-id/" + t for t in songs.track_ids[no_path]]
    known_broken, absent_mask = {}, no_path.copy()
    broken_ids = np.isin(songs.track_ids, np.array(sorted(KNOWN_BROKEN_IDS), dtype="S18"))
    for i in np.flatnonzero(used & broken_ids):
        known_broken[paths[i].decode()] = KNOWN_BROKEN_REASON
    if settings.check_audio:
        todo = np.flatnonzero(used & ~broken_ids & ~no_path)
        local = fileio.is_local(audio_root)
        with tqdm(total=len(todo) if local else None, unit="track" if local else "file",
                  desc="looking for audio files" if local else f"listing {audio_root}",
                  disable=not progress) as bar:
            absent = layouts.missing(audio_root, paths[todo], progress=bar.update)
        absent_mask[todo[absent]] = True
    # Tracks without audio leave the plan: counted per split, a few named.
    no_audio, examples, splits, artists = {}, [], {}, {}
    for split, pos in found.positions.items():
        gone = absent_mask[pos]
        no_audio[split] = int(gone.sum())
        for i in pos[gone][:max(0, MISSING_EXAMPLES - len(examples))]:
            reason = ("no 7digital id in track_metadata.db" if no_path[i]
                      else f"no audio file {paths[i].decode()}")
            examples.append(f"{songs.track_ids[i].decode()}: {reason}")
        keep = pos[~gone]
        labels = found.labels[split]
        splits[split] = ClipColumns(songs.rowid[keep], paths[keep],
                                    None if labels is None else labels[~gone])
        artists[split] = int(len(np.unique(songs.artist[keep])))
    _refuse_empty_splits(found.source, splits, artists, no_audio)
    notes = {"label_source": found.source, "layout": layout, "audio_extension": ext,
             "tracks_in_metadata": len(songs), "tracks_without_audio": no_audio,
             "tracks_without_audio_examples": examples, "artists": artists,
             "clip_id": "ROWID of the track in track_metadata.db songs", **found.notes}
    return DatasetPlan(
        name="msd", audio_root=audio_root, tag_names=tuple(found.tag_names), splits=splits,
        known_broken=known_broken, notes=notes,
        unlabelled=tuple(s for s in splits if found.labels[s] is None and s == STUDENT_SPLIT),
        origin=read_origin(data_dir, "msd"), settings=SOURCE.describe_settings(settings))


def _refuse_empty_splits(source: str, splits: dict, artists: dict, no_audio: dict) -> None:
    """A UserError naming the counts when train, val or test has no track."""
    labelled = ("train", "val", "test")
    empty = [s for s in labelled if not len(splits.get(s, ()))]
    if not empty:
        return
    counts = ", ".join(f"{s} {len(splits.get(s, ()))}" + (
        f" (+{no_audio[s]} without audio)" if no_audio.get(s) else "") for s in labelled)
    if source == "lastfm":
        tagged = sum(artists.get(s, 0) for s in labelled)
        advice = ("an artist-level split gives all of an artist's tracks to one split, so "
                  f"it needs three or more tagged artists with audio (found {tagged}): use "
                  "more data or lower --min-tag-value")
    else:
        advice = (f"the {source} split files list no {' or '.join(empty)} track that is in "
                  "track_metadata.db with audio; use split files made for this data")
    raise UserError(f"the {source} split leaves {' and '.join(empty)} empty (tracks: "
                    f"{counts}); {advice}")


SOURCE = DatasetSource(
    name="msd", version="1.0", settings_type=MsdSettings, plan=plan_msd,
    located=("source_dir", "audio_dir"),
    title="the Million Song Dataset (or the synthetic MSD)",
    data_dir_help="folder with track_metadata.db and lastfm_tags.db", data_dir_default="msd",
    max_seconds=30.0,  # the MSD's audio is 30 s previews: longer files are cut there
    manual_download=(
        "The Million Song Dataset's metadata (track_metadata.db, lastfm_tags.db), "
        "split files and 30 s previews are not downloadable from one place: "
        "docs/msd.md lists each file, where it is published and where it goes; "
        "python -m tagger.commands.synthetic_msd DATA_DIR makes a synthetic MSD in "
        "the same layout"))
