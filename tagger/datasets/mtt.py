"""MagnaTagATune as a dataset source (`SOURCE`): annotations, top-k tags,
synonym merge, splits, broken clips, and the dataset's facts (its top-50
tags, the three broken MP3s).

Input layout: `annotations_final.csv` (tab-separated, quoted; clip_id, tag
columns of 0/1, mp3_path; also as a spreadsheet saves it, `user_table`) and
`mp3/0 .. mp3/f/*.mp3`. The annotations and split lists are UTF-8, except
that a path may hold the bytes of a file name that is not
(`fileio.names_text`): such a clip is read like the others.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from tagger import fileio, safe_pickle
from tagger.config import join_path
from tagger.datasets.origin import read_origin
from tagger.datasets.source import DatasetSource, setting, unsafe_path_reason
from tagger.datasets.user_table import parse_table
from tagger.errors import UserError
from tagger.records.plan import SPLITS, STUDENT_SPLIT, Clip, DatasetPlan

ANNOTATIONS_FILE = "annotations_final.csv"
AUDIO_DIR = "mp3"

# The real MagnaTagATune top-50, most frequent first.
MTT_TOP50 = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic",
    "rock", "fast", "piano", "ambient", "beat", "violin", "vocal", "synth",
    "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal",
    "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)

# The three MP3s of MagnaTagATune that are known to be broken (Won 2020's
# "clean" split removes them): clip id -> path.
KNOWN_BROKEN = {
    35644: "6/norine_braun-now_and_zen-08-gently-117-146.mp3",
    55753: ("8/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster-"
            "204-233.mp3"),
    57881: ("9/american_baroque-dances_and_suites_of_rameau_and_couperin-25-"
            "le_petit_rien_xiveme_ordre_couperin-88-117.mp3"),
}

# Synonym groups (keunwoochoi/magnatagatune-list, used by the multi-scale
# paper); each group merges into its first name.
SYNONYMS = {
    "beat": ["beats"],
    "chant": ["chanting"],
    "choir": ["choral"],
    "classical": ["clasical", "classic"],
    "drum": ["drums"],
    "electro": ["electronic", "electronica", "electric"],
    "fast": ["fast beat", "quick"],
    "female": ["female singer", "female singing", "female vocals",
               "female voice", "woman", "woman singing", "women"],
    "flute": ["flutes"],
    "guitar": ["guitars"],
    "hard": ["hard rock"],
    "harpsichord": ["harpsicord"],
    "heavy": ["heavy metal", "metal"],
    "horn": ["horns"],
    "india": ["indian"],
    "jazz": ["jazzy"],
    "male": ["male singer", "male vocal", "male vocals", "male voice", "man",
             "man singing", "men"],
    "no beat": ["no drums"],
    "no singer": ["no singing", "no vocal", "no vocals", "no voice",
                  "no voices", "instrumental"],
    "opera": ["operatic"],
    "orchestra": ["orchestral"],
    "quiet": ["silence"],
    "singer": ["singing"],
    "space": ["spacey"],
    "string": ["strings"],
    "synth": ["synthesizer"],
    "violin": ["violins"],
    "vocal": ["vocals", "voice", "voices"],
    "strange": ["weird"],
}

# Default split by the first character of the path (0-b / c / d-f).
DIRECTORY_SPLIT = {"train": "0123456789ab", "val": "c", "test": "def"}

# Split list files, per split, in the order they are looked for.
SPLIT_LIST_FILES = {
    "train": ("train_list_pub.cP", "train.txt"),
    "val": ("valid_list_pub.cP", "valid.txt", "val.txt"),
    "test": ("test_list_pub.cP", "test.txt"),
}
# An optional list of clips used without their labels (noisy-student training).
UNLABELLED_LIST_FILES = ("student.txt", "unlabelled.txt")


@dataclasses.dataclass(frozen=True)
class Annotations:
    """`labels` is (clips, tags) uint8, rows in CSV order."""

    clip_ids: np.ndarray
    paths: tuple
    tag_names: tuple
    labels: np.ndarray


def read_annotations(data_dir: str) -> Annotations:
    """Reads `<data_dir>/annotations_final.csv`."""
    if not fileio.isdir(data_dir):
        raise UserError(
            f"data dir {data_dir!r} does not exist; point --data-dir at a "
            "MagnaTagATune folder, or make the synthetic one with "
            f"`python -m tagger.commands.synthetic {data_dir}`")
    csv_path = join_path(data_dir, ANNOTATIONS_FILE)
    if not fileio.exists(csv_path):
        raise UserError(
            f"{csv_path!r} is missing; a MagnaTagATune data dir holds "
            f"{ANNOTATIONS_FILE} and the mp3/ folder")
    if fileio.isdir(csv_path):
        raise UserError(f"{csv_path!r} is a folder; expected the annotations file")
    data = fileio.read_bytes(csv_path)
    text = fileio.names_text(data)  # an mp3_path may hold any bytes, as its file's name does
    if not text.strip():
        raise UserError(f"{csv_path!r} is empty ({len(data)} bytes); expected a "
                        "header (clip_id, tag columns, mp3_path) and one row per clip: "
                        "download or copy the file again")
    if not fileio.is_utf8(text.partition("\n")[0]):  # the header names tags: text
        raise UserError(f"{csv_path!r} is not a text file; expected the tab-separated "
                        "MagnaTagATune annotations")
    table = parse_table(text, repr(csv_path))
    numbered = [(line, row) for line, row in zip(table.lines, table.rows) if row]
    header = numbered[0][1]
    lines, rows = [line for line, _ in numbered[1:]], [row for _, row in numbered[1:]]
    for line, row in zip(lines, rows):
        if len(row) != len(header):
            raise UserError(f"{csv_path!r} is not a {table.dialect} annotations file: line "
                            f"{line} has {len(row)} fields, the header {len(header)}")
    missing = [c for c in ("clip_id", "mp3_path") if c not in header]
    if missing:
        raise UserError(
            f"{csv_path!r} has no column {', '.join(map(repr, missing))}; expected "
            f"a header with clip_id, the tag columns and mp3_path, got "
            f"{header[:5]}..., read as {table.dialect}")
    _check_unique(csv_path, "column", header)
    tag_names = tuple(c for c in header if c not in ("clip_id", "mp3_path"))
    if not tag_names:
        raise UserError(f"{csv_path!r} has no tag columns")
    if not rows:
        raise UserError(f"{csv_path!r} has a header but no clips; expected one row per "
                        "clip: download or copy the file again")
    cells = np.array(rows, dtype=object).reshape(len(rows), len(header))
    column = {name: i for i, name in enumerate(header)}
    values = cells[:, [column[name] for name in tag_names]]
    bad = (values != "0") & (values != "1")
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise UserError(
            f"{csv_path!r}: tag values must be 0 or 1, got {values[row, col]!r} "
            f"in column {tag_names[col]!r} (line {lines[row]})")
    try:
        clip_ids = cells[:, column["clip_id"]].astype(np.int64)
    except ValueError:
        raise UserError(f"{csv_path!r}: clip_id values must be integers") from None
    paths = tuple(cells[:, column["mp3_path"]])
    _check_unique(csv_path, "clip_id", clip_ids, lines)
    _check_unique(csv_path, "mp3_path", paths, lines)
    for clip_id, path in zip(clip_ids, paths):
        problem = unsafe_path_reason(path)
        if problem:
            raise UserError(f"{csv_path!r}: clip {clip_id} has mp3_path {path!r}, which "
                            f"{problem}; paths must be relative and stay inside the "
                            f"{AUDIO_DIR}/ folder")
    return Annotations(clip_ids=clip_ids, paths=paths, tag_names=tag_names,
                       labels=(values == "1").astype(np.uint8))


def _check_unique(csv_path: str, column: str, values, lines=None) -> None:
    """A UserError for a value of `values` (a column's, on the file's
    `lines`; or the header's names where `lines` is None) that appears twice."""
    seen = {}
    for row, value in enumerate(values):
        if value in seen:
            where = (f"(columns {seen[value] + 1} and {row + 1}); each tag must have one "
                     "column" if lines is None else f"(lines {lines[seen[value]]} and "
                     f"{lines[row]}); each clip must appear once")
            raise UserError(f"{csv_path!r}: {column} {value} appears twice {where}")
        seen[value] = row


def merge_synonyms(annotations: Annotations) -> Annotations:
    """ORs each synonym group into its first name; columns absent from the
    file are ignored, a group with no column present adds nothing."""
    columns = {name: annotations.labels[:, i] for i, name in enumerate(annotations.tag_names)}
    merged_away = {s for group in SYNONYMS.values() for s in group}
    out = {name: columns[name] for name in annotations.tag_names if name not in merged_away}
    for head, group in SYNONYMS.items():
        present = [columns[n] for n in (head, *group) if n in columns]
        if present:
            out[head] = np.bitwise_or.reduce(present, axis=0)
    names = tuple(out)
    labels = np.stack([out[n] for n in names], axis=1).astype(np.uint8)
    return dataclasses.replace(annotations, tag_names=names, labels=labels)


def top_tags(annotations: Annotations, k: int) -> Annotations:
    """Keeps the `k` most frequent tags, ordered by descending frequency
    (ties keep the file's column order)."""
    available = len(annotations.tag_names)
    if k < 1:
        raise UserError(f"--top-k must be at least 1, got {k}")
    if k > available:
        raise UserError(f"--top-k {k} asks for more tags than the annotations have "
                        f"({available}); use --top-k {available} or fewer")
    counts = annotations.labels.sum(axis=0, dtype=np.int64)
    order = np.argsort(-counts, kind="stable")[:k]
    return dataclasses.replace(
        annotations, tag_names=tuple(annotations.tag_names[i] for i in order),
        labels=annotations.labels[:, order])


def directory_split(paths) -> dict:
    """Split name -> row indices, by the first character of each path."""
    folder_to_split = {c: s for s, chars in DIRECTORY_SPLIT.items() for c in chars}
    rows = {s: [] for s in SPLITS}
    for i, path in enumerate(paths):
        split = folder_to_split.get(path[:1])
        if split is not None:
            rows[split].append(i)
    return rows


def load_split_lists(folder: str) -> dict:
    """Split name -> list of relative .mp3 paths, from a folder of split lists.

    Accepts the jongpillee lists (`train_list_pub.cP`, `valid_list_pub.cP`,
    `test_list_pub.cP`: latin-1 pickles of paths ending in .npy) or plain
    text files (`train.txt`, `valid.txt`/`val.txt`, `test.txt`, one path a
    line). Paths are mapped to the audio files' `.mp3` names. An optional
    `student.txt` (or `unlabelled.txt`) lists clips whose labels are not
    used: they form the unlabelled `student` split. (`plan_mtt` refuses a
    clip listed twice.)
    """
    return {split: [_as_mp3(p) for p in _read_list(join_path(folder, name))]
            for split, name in split_list_files(folder).items()}


def split_list_files(folder: str) -> dict:
    """Split name -> the name of its list in `folder` (`load_split_lists`)."""
    if not fileio.isdir(folder):
        raise UserError(f"--split {folder!r}: expected 'directory' or a folder of "
                        "split lists, and no such folder exists")
    files = {}
    for split, names in SPLIT_LIST_FILES.items():
        found = [n for n in names if fileio.exists(join_path(folder, n))]
        if not found:
            raise UserError(f"split folder {folder!r} has no list for {split!r}; "
                            f"expected one of {', '.join(names)}")
        files[split] = found[0]
    found = [n for n in UNLABELLED_LIST_FILES if fileio.exists(join_path(folder, n))]
    if found:
        files[STUDENT_SPLIT] = found[0]
    return files


def _check_each_clip_once(folder: str, lists: dict) -> None:
    """A UserError naming the first list of `folder` (`lists`: split ->
    paths) that lists a clip twice (its records would be written twice),
    or the first two lists that share a clip (a test clip must not be
    trained on)."""
    splits = list(lists)
    for split in splits:
        repeated = [p for p, n in collections.Counter(lists[split]).items() if n > 1]
        if repeated:
            raise UserError(
                f"split folder {folder!r}: {split_list_files(folder)[split]} lists "
                f"{len(repeated)} clip(s) more than once, e.g. {repeated[0]!r}; list each "
                "clip once")
    for i, split in enumerate(splits):
        earlier = set(lists[split])
        for other in splits[i + 1:]:
            shared = [p for p in dict.fromkeys(lists[other]) if p in earlier]
            if shared:
                files = split_list_files(folder)
                raise UserError(
                    f"split folder {folder!r}: {files[split]} and {files[other]} both list "
                    f"{len(shared)} clip(s), e.g. {shared[0]!r}; a clip belongs to one "
                    "split: remove it from one of the two lists")


def _read_list(path: str) -> list:
    kind = fileio.not_a_file(path)
    if kind:
        raise UserError(f"split list {path!r} is {kind}; expected a file of clip paths")
    try:
        if path.endswith(".cP"):
            items = safe_pickle.load_file(path, "a split list (a list of paths)")
        else:
            data = fileio.read_bytes(path)
    except OSError as error:
        raise UserError(f"cannot read split list {path!r}: "
                        f"{fileio.os_error_reason(error)}") from None
    if path.endswith(".cP"):
        if not isinstance(items, (list, tuple)):
            raise UserError(f"split list {path!r} holds a {type(items).__name__}, "
                            "expected a list of paths")
        return [str(p) for p in items]
    text = fileio.names_text(data)  # a path may hold any bytes
    return [line.strip() for line in text.splitlines() if line.strip()]


def _as_mp3(path: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.mp3" if dot and ext in ("npy", "mp3", "wav") else path


@dataclasses.dataclass(frozen=True)
class MttSettings:
    """What decides a MagnaTagATune plan (beyond the data folder): `split`
    ("directory": 0-b train, c val, d-f test; or a folder of split lists),
    `merge_synonyms` before choosing the `top_k` tags, the `seed` of the
    train order, and `unlabelled_fraction`, the share of train clips moved,
    labels dropped, into an unlabelled `student` split."""

    split: str = setting("directory", "'directory' (0-b train, c val, d-f test) or a "
                         "folder of split lists", metavar="SPLIT")
    merge_synonyms: bool = setting(False, "merge synonym tags before choosing the top k")
    top_k: int = setting(50, "number of tags, >= 1", low=1)
    seed: int = setting(0, "shuffles the train shards", low=0)
    unlabelled_fraction: float = setting(
        0.0, "move this share of the train clips, labels dropped, into an unlabelled "
             "'student' split for noisy-student training, in [0, 1)", low=0, high=1,
        metavar="F")

    def __post_init__(self):
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k (--top-k) must be an integer >= 1, got {self.top_k!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed (--seed) must be an integer >= 0, got {self.seed!r}")
        if not 0.0 <= self.unlabelled_fraction < 1.0:
            raise ValueError("unlabelled_fraction (--unlabelled-fraction) must lie in "
                             f"[0, 1), got {self.unlabelled_fraction}")


def plan_mtt(data_dir: str, settings: MttSettings = MttSettings(),
             progress: bool = True) -> DatasetPlan:
    """Reads the annotations and decides what every split holds.

    Clips with none of the top-k tags are dropped from the labelled splits;
    train clips are shuffled with the seed so each shard mixes tracks (val
    and test keep file order). A split-list folder may name an unlabelled
    split itself, with `student.txt`. (`progress` is unused: reading the
    annotations takes a second.)
    """
    split, top_k, seed = settings.split, settings.top_k, settings.seed
    unlabelled_fraction = settings.unlabelled_fraction
    annotations = read_annotations(data_dir)
    if settings.merge_synonyms:
        annotations = merge_synonyms(annotations)
    annotations = top_tags(annotations, top_k)
    if split == "directory":
        rows = directory_split(annotations.paths)
        outside = len(annotations.paths) - sum(len(r) for r in rows.values())
    else:
        rows, outside = _rows_from_lists(annotations, load_split_lists(split), split)
        if STUDENT_SPLIT in rows and unlabelled_fraction:
            raise UserError(f"split folder {split!r} lists its own unlabelled clips; "
                            "drop --unlabelled-fraction or the student list")
    has_tag = annotations.labels.any(axis=1)
    if not has_tag.any():
        raise UserError(f"no clip of {join_path(data_dir, ANNOTATIONS_FILE)!r} has any of "
                        f"the top {top_k} tags (every tag value is 0); check the file")
    splits, no_tag = {}, 0
    for name in SPLITS:
        keep = [i for i in rows[name] if has_tag[i]]
        no_tag += len(rows[name]) - len(keep)
        if name == "train":
            keep = list(np.random.default_rng(seed).permutation(keep))
        splits[name] = keep
    if unlabelled_fraction:
        cut = len(splits["train"]) - round(unlabelled_fraction * len(splits["train"]))
        splits["train"], rows[STUDENT_SPLIT] = splits["train"][:cut], splits["train"][cut:]
    if STUDENT_SPLIT in rows:
        splits[STUDENT_SPLIT] = rows[STUDENT_SPLIT]
    if not any(len(keep) for keep in splits.values()):
        raise UserError(
            f"none of the {len(annotations.paths)} clips of the annotations is in a split "
            f"and has one of the top {top_k} tags ({outside} outside the splits, {no_tag} "
            "without those tags); check the paths and the split lists")
    clips = {name: tuple(Clip(int(annotations.clip_ids[i]), annotations.paths[i],
                              None if name == STUDENT_SPLIT else
                              tuple(int(v) for v in annotations.labels[i]))
                         for i in keep) for name, keep in splits.items()}
    known = {path: "known broken MagnaTagATune MP3" for path in KNOWN_BROKEN.values()}
    return DatasetPlan(
        name="magnatagatune", audio_root=join_path(data_dir, AUDIO_DIR),
        tag_names=annotations.tag_names, splits=clips, known_broken=known,
        notes={"clips_in_annotations": len(annotations.paths),
               "dropped_without_top_tags": no_tag,
               "outside_split": outside},
        unlabelled=(STUDENT_SPLIT,) if STUDENT_SPLIT in clips else (),
        origin=read_origin(data_dir, "magnatagatune"),
        settings=SOURCE.describe_settings(settings))


def _rows_from_lists(annotations: Annotations, lists: dict, folder: str):
    row_of = {p: i for i, p in enumerate(annotations.paths)}
    rows, seen = {}, set()
    for split, paths in lists.items():
        unknown = [p for p in paths if p not in row_of]
        if unknown:
            raise UserError(
                f"split folder {folder!r}: {len(unknown)} {split} clip(s) are not in "
                f"the annotations, e.g. {unknown[0]!r}; use split lists made for "
                "this dataset")
        rows[split] = [row_of[p] for p in paths]
        seen.update(rows[split])
    _check_each_clip_once(folder, lists)
    return rows, len(annotations.paths) - len(seen)


SOURCE = DatasetSource(
    name="mtt", version="1.0", settings_type=MttSettings, plan=plan_mtt,
    title="MagnaTagATune (or the synthetic dataset in its layout)",
    data_dir_help="folder with annotations_final.csv and mp3/",
    manual_download=(
        "MagnaTagATune is published by its authors at "
        "https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset: download "
        "annotations_final.csv and mp3.zip.001-003, join and unpack them "
        "(cat mp3.zip.* > mp3.zip && unzip mp3.zip -d DATA_DIR/mp3) and put the CSV "
        "beside mp3/; or make the synthetic dataset in its layout with "
        "python -m tagger.commands.synthetic DATA_DIR"))
