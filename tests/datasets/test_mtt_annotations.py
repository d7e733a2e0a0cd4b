import re

import numpy as np
import pytest

from tagger.datasets import mtt
from tagger.errors import UserError
from tests.checks import reference_dir

REFERENCE_SPLIT = reference_dir() / "mtat_split"
needs_reference = pytest.mark.skipif(
    not REFERENCE_SPLIT.is_dir(),
    reason=f"reference split lists not found at {REFERENCE_SPLIT} (set TAGGER_REFERENCE_DIR)")


def write_csv(folder, header, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mp3").mkdir(exist_ok=True)
    lines = ["\t".join(f'"{c}"' for c in header)]
    lines += ["\t".join(f'"{c}"' for c in row) for row in rows]
    (folder / mtt.ANNOTATIONS_FILE).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def small_csv(tmp_path):
    header = ["clip_id", "woman", "guitar", "female", "rock", "classic", "classical", "mp3_path"]
    rows = [
        [2, 1, 1, 0, 0, 0, 0, "0/a-b-01-c-0-29.mp3"],
        [5, 0, 1, 1, 1, 0, 0, "c/a-b-02-c-0-29.mp3"],
        [9, 0, 0, 0, 0, 1, 1, "d/a-b-03-c-0-29.mp3"],
        [11, 0, 1, 0, 1, 0, 1, "f/a-b-04-c-0-29.mp3"],
        [12, 0, 0, 0, 0, 0, 0, "1/a-b-05-c-0-29.mp3"],
    ]
    return write_csv(tmp_path / "mtt", header, rows)


def test_read_annotations(small_csv):
    ann = mtt.read_annotations(str(small_csv))
    assert list(ann.clip_ids) == [2, 5, 9, 11, 12]
    assert ann.tag_names == ("woman", "guitar", "female", "rock", "classic", "classical")
    assert ann.paths[1] == "c/a-b-02-c-0-29.mp3"
    assert ann.labels.shape == (5, 6) and ann.labels[3].tolist() == [0, 1, 0, 1, 0, 1]


def test_top_tags_by_descending_frequency_with_stable_ties(small_csv):
    top = mtt.top_tags(mtt.read_annotations(str(small_csv)), 3)
    assert top.tag_names == ("guitar", "rock", "classical")  # 3, 2, 2 (rock first in file)
    assert top.labels[:, 0].tolist() == [1, 1, 0, 1, 0]
    with pytest.raises(UserError, match="--top-k 7"):
        mtt.top_tags(mtt.read_annotations(str(small_csv)), 7)


def test_synonym_merge_ors_each_group_into_its_first_name(small_csv):
    merged = mtt.merge_synonyms(mtt.read_annotations(str(small_csv)))
    assert "woman" not in merged.tag_names and "classic" not in merged.tag_names
    female = merged.labels[:, merged.tag_names.index("female")]
    assert female.tolist() == [1, 1, 0, 0, 0]  # woman OR female
    classical = merged.labels[:, merged.tag_names.index("classical")]
    assert classical.tolist() == [0, 0, 1, 1, 0]
    # rock has no group and stays; guitar's group (guitars) is absent from the file.
    assert merged.labels[:, merged.tag_names.index("rock")].tolist() == [0, 1, 0, 1, 0]
    assert merged.tag_names.count("guitar") == 1


def test_synonym_table_matches_the_design():
    assert mtt.SYNONYMS["female"][:2] == ["female singer", "female singing"]
    assert mtt.SYNONYMS["no singer"][-1] == "instrumental"
    assert len(mtt.SYNONYMS) == 29
    names = [n for group in mtt.SYNONYMS.values() for n in group]
    assert len(names) == len(set(names))


def test_plan_drops_clips_without_tags_and_splits_by_folder(small_csv):
    plan = mtt.plan_mtt(str(small_csv), mtt.MttSettings(top_k=2))  # guitar, rock
    assert [c.clip_id for c in plan.splits["val"]] == [5]
    assert [c.clip_id for c in plan.splits["test"]] == [11]  # clip 9 has neither tag
    assert [c.clip_id for c in plan.splits["train"]] == [2]  # clip 12 has no tag
    assert plan.notes["dropped_without_top_tags"] == 2
    assert plan.tag_names == ("guitar", "rock")
    assert plan.splits["test"][0].labels == (1, 1)


def test_directory_split_rule():
    rows = mtt.directory_split(["0/x", "b/x", "c/x", "d/x", "f/x", "z/x"])
    assert rows == {"train": [0, 1], "val": [2], "test": [3, 4]}


@needs_reference
def test_reference_split_lists_parse_to_mp3_paths():
    lists = mtt.load_split_lists(str(REFERENCE_SPLIT))
    assert {k: len(v) for k, v in lists.items()} == {"train": 15244, "val": 1529,
                                                      "test": 4332}
    assert all(p.endswith(".mp3") for v in lists.values() for p in v)
    assert lists["val"][0] == "c/atomic_opera-alpha_and_oranges-01-rain_parade-117-146.mp3"
    known = set(mtt.KNOWN_BROKEN.values())
    assert not known & set(lists["train"])  # the lists already leave them out


@needs_reference
def test_split_lists_naming_unknown_clips_are_rejected(small_csv):
    with pytest.raises(UserError, match="not in the annotations"):
        mtt.plan_mtt(str(small_csv),
                     mtt.MttSettings(split=str(REFERENCE_SPLIT), top_k=2))


def test_text_split_lists(small_csv, tmp_path):
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "train.txt").write_text("0/a-b-01-c-0-29.npy\nf/a-b-04-c-0-29.npy\n")
    (folder / "valid.txt").write_text("c/a-b-02-c-0-29.mp3\n")
    (folder / "test.txt").write_text("")
    plan = mtt.plan_mtt(str(small_csv), mtt.MttSettings(split=str(folder), top_k=2))
    assert sorted(c.clip_id for c in plan.splits["train"]) == [2, 11]
    assert [c.clip_id for c in plan.splits["val"]] == [5]
    assert plan.splits["test"] == ()
    assert plan.notes["outside_split"] == 2


def test_a_clip_in_two_split_lists_is_refused(small_csv, tmp_path):
    """A test clip that a train list also names would be trained on; a
    clip listed twice in one list, written twice."""
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "train.txt").write_text("0/a-b-01-c-0-29.npy\nf/a-b-04-c-0-29.npy\n"
                                      "d/a-b-03-c-0-29.mp3\n")
    (folder / "valid.txt").write_text("c/a-b-02-c-0-29.mp3\n")
    (folder / "test.txt").write_text("d/a-b-03-c-0-29.mp3\nf/a-b-04-c-0-29.mp3\n")
    settings = mtt.MttSettings(split=str(folder), top_k=2)
    with pytest.raises(UserError) as error:
        mtt.plan_mtt(str(small_csv), settings)
    assert str(error.value) == (
        f"split folder {str(folder)!r}: train.txt and test.txt both list 2 clip(s), e.g. "
        "'d/a-b-03-c-0-29.mp3'; a clip belongs to one split: remove it from one of the "
        "two lists")
    (folder / "test.txt").write_text("d/a-b-03-c-0-29.mp3\n")
    (folder / "train.txt").write_text("0/a-b-01-c-0-29.npy\n")
    (folder / "student.txt").write_text("1/a-b-05-c-0-29.mp3\nc/a-b-02-c-0-29.mp3\n")
    with pytest.raises(UserError, match=r"valid.txt and student.txt both list 1 clip\(s\), "
                                        r"e.g. 'c/a-b-02-c-0-29.mp3'"):
        mtt.plan_mtt(str(small_csv), settings)
    (folder / "student.txt").write_text("1/a-b-05-c-0-29.mp3\n")
    plan = mtt.plan_mtt(str(small_csv), settings)
    assert [[c.clip_id for c in plan.splits[s]] for s in ("train", "val", "student")] == [
        [2], [5], [12]]
    # the same clip twice in one list (as .npy and .mp3): its records would be written twice
    (folder / "train.txt").write_text("0/a-b-01-c-0-29.npy\n0/a-b-01-c-0-29.mp3\n")
    with pytest.raises(UserError) as error:
        mtt.plan_mtt(str(small_csv), settings)
    assert str(error.value) == (
        f"split folder {str(folder)!r}: train.txt lists 1 clip(s) more than once, e.g. "
        "'0/a-b-01-c-0-29.mp3'; list each clip once")


@pytest.mark.parametrize("name", ["train.txt", "train_list_pub.cP", "student.txt"])
def test_a_split_list_that_is_a_folder_is_refused(small_csv, tmp_path, name):
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / name).mkdir()
    for list_name in ("train.txt", "valid.txt", "test.txt"):
        if list_name != name:
            (folder / list_name).write_text("")
    with pytest.raises(UserError) as error:
        mtt.plan_mtt(str(small_csv), mtt.MttSettings(split=str(folder), top_k=2))
    assert str(error.value) == (f"split list {str(folder / name)!r} is a folder; expected a "
                                "file of clip paths")


def test_annotations_and_split_lists_saved_with_a_byte_order_mark_and_windows_line_ends(
        small_csv, tmp_path):
    """As a spreadsheet saves them ("CSV UTF-8", or Unicode text)."""
    import csv

    annotations = small_csv / mtt.ANNOTATIONS_FILE
    rows = list(csv.reader(annotations.open(newline=""), delimiter="\t"))
    with open(annotations, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, delimiter="\t", quoting=csv.QUOTE_ALL).writerows(rows)
    assert annotations.read_bytes().startswith(b'\xef\xbb\xbf"clip_id"\t')
    read = mtt.read_annotations(str(small_csv))
    assert list(read.clip_ids) == [2, 5, 9, 11, 12] and read.tag_names[0] == "woman"
    assert read.paths[-1] == "1/a-b-05-c-0-29.mp3"
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "train.txt").write_bytes(
        "0/a-b-01-c-0-29.npy\r\nf/a-b-04-c-0-29.npy\r\n".encode("utf-8-sig"))
    (folder / "valid.txt").write_bytes("c/a-b-02-c-0-29.mp3\r\n".encode("utf-16"))
    (folder / "test.txt").write_text("")
    plan = mtt.plan_mtt(str(small_csv), mtt.MttSettings(split=str(folder), top_k=2))
    assert sorted(c.clip_id for c in plan.splits["train"]) == [2, 11]
    assert [c.clip_id for c in plan.splits["val"]] == [5]


@pytest.mark.parametrize("header,message", [
    (["clip_id", "guitar"], "no column 'mp3_path'"),
    (["guitar", "mp3_path"], "no column 'clip_id'"),
])
def test_missing_columns(tmp_path, header, message):
    folder = write_csv(tmp_path / "bad", header, [[1] * len(header)])
    with pytest.raises(UserError, match=message):
        mtt.read_annotations(str(folder))


def test_non_binary_tag_values(tmp_path):
    folder = write_csv(tmp_path / "bad", ["clip_id", "guitar", "mp3_path"],
                       [[1, 2, "0/x.mp3"]])
    with pytest.raises(UserError, match="must be 0 or 1, got '2'"):
        mtt.read_annotations(str(folder))


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        mtt.read_annotations(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="annotations_final.csv"):
        mtt.read_annotations(str(tmp_path / "empty"))


def test_labels_matrix_of_a_plan(small_csv):
    plan = mtt.plan_mtt(str(small_csv), mtt.MttSettings(top_k=2))
    np.testing.assert_array_equal(plan.label_matrix("val"), [[1, 1]])


@pytest.mark.parametrize("header, rows, message", [
    (["clip_id", "guitar", "mp3_path"], [[1, "0/x.mp3"]],
     "is not a tab-separated annotations file: line 2 has 2 fields, the header 3"),
    (["clip_id", "guitar", "guitar", "mp3_path"], [[1, 0, 1, "0/x.mp3"]],
     "column guitar appears twice (columns 2 and 3); each tag must have one column"),
])
def test_rows_of_another_width_and_a_tag_twice_are_refused(tmp_path, header, rows, message):
    folder = write_csv(tmp_path / "bad", header, rows)
    with pytest.raises(UserError, match=re.escape(message)):
        mtt.read_annotations(str(folder))


BLANK_ROWS = '"clip_id"\t"guitar"\t"mp3_path"\n\n"1"\t"0"\t"0/a.mp3"\n\n\n\n'


@pytest.mark.parametrize("bad_row, message", [
    ('"2"\t"0/b.mp3"\n', "line 7 has 2 fields, the header 3"),
    ('"2"\t"x"\t"0/b.mp3"\n', "got 'x' in column 'guitar' (line 7)"),
    ('"1"\t"1"\t"0/b.mp3"\n', "clip_id 1 appears twice (lines 3 and 7)"),
    ('"2"\t"1"\t"0/a.mp3"\n', "mp3_path 0/a.mp3 appears twice (lines 3 and 7)"),
    ('"2"\t"1"\t"0/b\n.mp3"\n"3"\t"1"\t"0/a.mp3"\n',  # a quoted cell of two lines
     "mp3_path 0/a.mp3 appears twice (lines 3 and 9)"),
])
def test_a_bad_row_is_named_by_its_line_in_the_file(tmp_path, bad_row, message):
    """Blank lines and a quoted cell's line break count: the number is the
    line an editor shows."""
    folder = tmp_path / "bad"
    (folder / "mp3").mkdir(parents=True)
    (folder / mtt.ANNOTATIONS_FILE).write_text(BLANK_ROWS + bad_row)
    with pytest.raises(UserError, match=re.escape(message)):
        mtt.read_annotations(str(folder))
