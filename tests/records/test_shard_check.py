"""The shards checked before either reader reads them (records/shard_check):
on a remote file system a reader's start asks a few things of each shard
however many records it holds (its framing index, its size, its ends),
another build's shard or a changed record is still refused naming the
shard, and a dataset_info.json edited since the build is refused by both
readers in the same line before a record is read."""

import collections
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tagger import fileio
from tagger.errors import UserError
from tagger.records import plain_reader, reader, shard_check
from tagger.records.info import load_info
from tagger.records.schema import serialize_example
from tagger.records.shard_index import index_path, walked, write_index
from tagger.records.tfrecord import frame
from tests.records.test_plain_reader import long_clips


def indexed_clips(folder, info, lengths, per_shard):
    """`test_plain_reader.long_clips`'s records with each shard's framing
    index beside it, as the build writes them: (folder, DatasetInfo)."""
    records_dir, info = long_clips(folder, info, lengths, per_shard)
    for name in info.splits["train"]["shards"]:
        path = os.path.join(records_dir, name)
        write_index(path, walked(path).framing)
    return records_dir, info


def to_ram(records_dir, name):
    """The records folder copied to tf.io.gfile's ram:// file system."""
    folder = f"ram://shard_check_test/{name}"
    tf.io.gfile.makedirs(folder)  # a folder rmtree finds
    for file in os.listdir(records_dir):
        tf.io.gfile.copy(os.path.join(records_dir, file), f"{folder}/{file}", overwrite=True)
    return folder


class CountedFile:
    """A file whose reads are counted in `counts`."""

    def __init__(self, file, counts):
        self.file, self.counts = file, counts

    def read(self, *size):
        self.counts["read"] += 1
        return self.file.read(*size)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        self.file.__enter__()
        return self

    def __exit__(self, *exc):
        return self.file.__exit__(*exc)


@pytest.fixture
def requests(monkeypatch):
    """What the readers ask of the file system through `tagger.fileio`
    (opens, reads, existence checks) and tf.io.gfile's stat, counted."""
    counts = collections.Counter()
    open_file, exists, stat = fileio.open_file, fileio.exists, tf.io.gfile.stat

    def counted(name, call):
        def ask(*args, **kwargs):
            counts[name] += 1
            return call(*args, **kwargs)
        return ask

    monkeypatch.setattr(fileio, "open_file", lambda path, mode="r": CountedFile(
        counted("open", open_file)(path, mode), counts))
    monkeypatch.setattr(fileio, "exists", counted("exists", exists))
    monkeypatch.setattr(tf.io.gfile, "stat", counted("stat", stat))
    return counts


def start(readers, folder, info):
    """What a training run's start asks for, in a fresh process: the
    training batches of `readers`, made, not read (validation's windows
    are checked alike)."""
    if readers == "tf.data":
        reader.train_dataset(folder, 2, info=info, seed=0)
    else:
        plain_reader.train_batches(folder, 2, info=info, seed=0, workers=0, prefetch=0).close()


@pytest.mark.parametrize("readers", ["tf.data", "plain"])
def test_a_start_on_a_remote_file_system_asks_a_few_things_a_shard(raw_records, tmp_path,
                                                                   requests, monkeypatch,
                                                                   readers):
    """Two shards of 3 clips and two of 16, on ram://: the same requests
    at the start, a few a shard (not two a record, as a walk of each
    shard's framing at every start of every worker would ask of gs://)."""
    asked = {}
    try:
        for clips in (3, 16):
            records_dir, _ = indexed_clips(tmp_path / f"{clips}", raw_records[1],
                                           (1,) * (2 * clips), clips)
            folder = to_ram(records_dir, f"{readers}-{clips}-clips")
            info = load_info(folder)
            monkeypatch.setattr(shard_check, "_CHECKED", {})  # a fresh process's
            monkeypatch.setattr(shard_check, "_CLIPS_CHECKED", set())
            requests.clear()
            start(readers, folder, info)
            asked[clips] = dict(requests)
    finally:
        tf.io.gfile.rmtree("ram://shard_check_test")
    assert asked[3] == asked[16]
    shards = 2
    assert asked[16]["read"] <= 5 * shards + 1  # its index, its ends; one clip parsed
    assert sum(asked[16].values()) <= 12 * shards


def equal_shards(folder, info):
    """Records of two shards of 3 clips of the same size: (folder, info,
    path of the first shard, of the second)."""
    records_dir, info = indexed_clips(folder, info, (2,) * 6, 3)
    first, second = (os.path.join(records_dir, name) for name in info.splits["train"]["shards"])
    assert os.path.getsize(first) == os.path.getsize(second)
    return records_dir, info, first, second


def refusal(read):
    with pytest.raises(UserError) as error:
        read()
    return str(error.value)


def read_both(records_dir, info):
    """Each reader's one line for the records: (tf.data's, ours)."""
    return (refusal(lambda: list(reader.train_dataset(records_dir, 2, info=info, seed=0,
                                                      repeat=False).as_numpy_iterator())),
            refusal(lambda: plain_reader.clip_labels(records_dir, "train", info)))


def other_records(path):
    return (f"shard {path!r} of the train split does not hold the records its "
            "dataset_info.json lists (their lengths and CRC32Cs differ: the shard was replaced, "
            "by another build's say, or cut short); rebuild the dataset (delete that shard and "
            "rerun build_mtt.py with the same settings, or build anew with --overwrite)")


@pytest.mark.parametrize("with_index", [False, True])
def test_another_shard_of_the_same_size_is_refused_by_both_readers(raw_records, tmp_path,
                                                                   with_index):
    """The second shard in the first's place, the size the first's index
    says, alone or with its own index: each reader refuses it naming it."""
    records_dir, info, first, second = equal_shards(tmp_path / "records", raw_records[1])
    shutil.copyfile(second, first)
    if with_index:
        shutil.copyfile(index_path(second), index_path(first))
    assert read_both(records_dir, info) == (other_records(first),) * 2


def test_a_record_changed_within_a_shard_is_refused_as_the_plain_reader_reads_it(
        raw_records, tmp_path):
    """The middle clip of a shard replaced by another of its length: the
    shard's size and ends are the index's, so it is read, and the record
    whose framing is not the index's is refused naming the shard."""
    records_dir, info, first, _ = equal_shards(tmp_path / "records", raw_records[1])
    data = bytearray(open(first, "rb").read())
    tags = np.zeros(info.num_tags, np.int64)
    other = b"".join(frame([serialize_example(1, "1.wav", tags, np.ones((2, 4), np.int16))]))
    at = 16 + int.from_bytes(data[:8], "little")  # where the second record starts
    assert len(other) == 16 + int.from_bytes(data[at:at + 8], "little")
    data[at:at + len(other)] = other
    open(first, "wb").write(bytes(data))
    assert refusal(lambda: list(plain_reader.eval_batches(
        records_dir, "train", 1, 2, info=info, workers=0, prefetch=0))) == other_records(first)


@pytest.fixture
def edited_records(raw_records, tmp_path):
    """`edit(change)`: the raw records copied, their dataset_info.json
    changed by `change(stored)`: (folder, DatasetInfo)."""
    def edit(change):
        folder = tmp_path / "records"
        shutil.copytree(raw_records[0], folder)
        stored = json.loads((folder / "dataset_info.json").read_text())
        change(stored)
        (folder / "dataset_info.json").write_text(json.dumps(stored))
        return str(folder), load_info(str(folder))
    return edit


@pytest.mark.parametrize("change,problem", [
    (lambda stored: stored.update(num_tags=stored["num_tags"] + 1),
     "it holds 50 tags, the dataset 51"),
    (lambda stored: stored["features"].update(dtype="float32"),
     "it holds int16 segments, the dataset float32")])
def test_a_dataset_info_edited_since_the_build_is_one_line_of_both_readers(edited_records,
                                                                           change, problem):
    """num_tags or the features' dtype changed in dataset_info.json: each
    reader's training batches and labels (train.py's and eval.py's) are
    refused with the same line naming the shard, before a record is read
    (not a tf.data InvalidArgumentError)."""
    records_dir, info = edited_records(change)
    shard = os.path.join(records_dir, info.splits["train"]["shards"][0])
    expected = (f"shard {shard!r} of the train split does not hold the clips its "
                f"dataset_info.json describes (its first record: {problem}); put back the "
                "dataset_info.json the build wrote, or rebuild the dataset")
    readings = [
        lambda: next(reader.train_dataset(records_dir, 2, info=info, seed=0)
                     .as_numpy_iterator()),
        lambda: reader.clip_labels(records_dir, "train", info),
        lambda: next(plain_reader.train_batches(records_dir, 2, info=info, seed=0, workers=0,
                                                prefetch=0)),
        lambda: plain_reader.clip_labels(records_dir, "train", info)]
    if "dtype" in problem:  # the windows alone, without their tags: eval.py's scores
        readings += [lambda: next(reader.padded_eval_windows(records_dir, "train", 1, 2, info)
                                  .as_numpy_iterator()),
                     lambda: next(plain_reader.eval_batches(records_dir, "train", 1, 2,
                                                            info=info, workers=0, prefetch=0))]
    assert [refusal(read) for read in readings] == [expected] * len(readings)
