"""plain_reader, the records read without TensorFlow: training batches
(every window of a pass, with its clip's tags, in the storage dtype; the
seed fixes the order, whatever the number of workers; one host's share),
evaluation batches and clip labels equal to the tf.data path's, a damaged
shard named in one line, and all of it in a process where TensorFlow
cannot be imported."""

import collections
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tagger.errors import UserError
from tagger.records import plain_reader, reader
from tagger.records.info import load_info
from tagger.records.schema import serialize_example
from tagger.records.tfrecord import frame, read_records
from tests.checks import ROOT, without_tensorflow_env


def window_table(records_dir, info, split="train"):
    """{segment bytes (int16): (clip_id, tags)} of every segment of `split`,
    read by the tf.data reader."""
    table = {}
    for clip in reader.clip_dataset(records_dir, split, info, as_stored=True).as_numpy_iterator():
        for segment in clip["segments"]:
            table[segment.tobytes()] = (int(clip["clip_id"]), clip["tags"])
    return table


def take(batches, count):
    with batches:
        return [next(batches) for _ in range(count)]


def train(raw_records, count, **kwargs):
    records_dir, info = raw_records
    settings = dict(info=info, workers=0, prefetch=0, seed=3) | kwargs
    return take(plain_reader.train_batches(records_dir, settings.pop("batch_size", 5),
                                           **settings), count)


@pytest.mark.parametrize("shuffle_segments, batch_size", [(10, 5), (230, 2)])
def test_every_window_of_each_pass_once_with_its_clips_tags(raw_records, shuffle_segments,
                                                            batch_size):
    """46 segments a pass: 230 windows are 5 passes, in blocks of 10
    windows or of 46 (230 segments asked, no more than a pass's windows
    in whole batches held), each segment 5 times."""
    records_dir, info = raw_records
    table = window_table(records_dir, info)
    assert len(table) == info.splits["train"]["segments"] == 46
    batches = train(raw_records, 230 // batch_size, shuffle_segments=shuffle_segments,
                    batch_size=batch_size)
    counts = collections.Counter()
    for x, y in batches:
        assert x.shape == (batch_size, 59049) and x.dtype == np.int16  # the storage dtype
        assert y.shape == (batch_size, info.num_tags) and y.dtype == np.float32
        for window, tags in zip(x, y):
            clip_id, clip_tags = table[window.tobytes()]
            np.testing.assert_array_equal(tags, clip_tags)
            counts[window.tobytes()] += 1
    assert set(counts) == set(table) and set(counts.values()) == {5}


def test_two_segment_windows_each_clip_once_a_pass(raw_records):
    """k = 2 on clips of two segments: one window a clip, its segments in
    order; 23 windows a pass, 23 batches of 5 are 5 passes (23 blocks of
    one batch)."""
    records_dir, info = raw_records
    table = window_table(records_dir, info)
    counts = collections.Counter()
    for x, _y in train(raw_records, 23, window_segments=2, shuffle_segments=10):
        assert x.shape == (5, 2 * 59049) and x.dtype == np.int16
        for window in x:
            first, second = table[window[:59049].tobytes()], table[window[59049:].tobytes()]
            assert first[0] == second[0]
            counts[first[0]] += 1
    assert len(counts) == info.splits["train"]["clips"] == 23
    assert set(counts.values()) == {5}


def test_the_seed_fixes_the_order_and_another_changes_it(raw_records):
    first = train(raw_records, 12, seed=(7, 0), shuffle_segments=45)
    again = train(raw_records, 12, seed=(7, 0), shuffle_segments=45, prefetch=3)
    other = train(raw_records, 12, seed=(7, 1), shuffle_segments=45)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert sum(np.array_equal(a[0], b[0]) for a, b in zip(first, other)) < 3
    # the same windows in another order: the first block (9 batches) holds
    # 45 of the pass's 46 segments
    ours = {w.tobytes() for x, _ in first[:9] for w in x}
    theirs = {w.tobytes() for x, _ in other[:9] for w in x}
    assert len(ours) == len(theirs) == 45 and len(ours & theirs) >= 44


def test_the_shards_read_side_by_side_are_part_of_the_order(raw_records):
    """`cycle` (train.py's --num-read-threads) changes which clips come
    first, as tf.data's interleave cycle does: with one shard at a time the
    first batch holds one shard's clips."""
    one = train(raw_records, 3, seed=(7, 0), cycle=1, shuffle_segments=4)
    four = train(raw_records, 3, seed=(7, 0), cycle=4, shuffle_segments=4)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(one, four))
    with pytest.raises(ValueError, match="cycle and block must be at least 1"):
        train(raw_records, 1, cycle=0)


@pytest.mark.parametrize("shard", [None, (2, 1), (100, 7)])
def test_the_clips_are_the_tf_data_readers_in_order(raw_records, shard):
    """`clips` (train.py --from's embeddings, the records' paths) gives
    `reader.clip_dataset`'s clips, tags left out: the same ids, paths and
    float32 segments, in order; a share of whole shards, or of every
    count-th clip when there are fewer shards than shares."""
    records_dir, info = raw_records
    ours = list(plain_reader.clips(records_dir, "train", info, shard=shard))
    theirs = list(reader.clip_dataset(records_dir, "train", info, shard=shard,
                                      with_tags=False).as_numpy_iterator())
    assert len(ours) == len(theirs) > 0
    for mine, tf_clip in zip(ours, theirs):
        assert mine["clip_id"] == tf_clip["clip_id"] and mine["path"] == tf_clip["path"]
        assert mine["segments"].dtype == np.float32
        np.testing.assert_array_equal(mine["segments"], tf_clip["segments"])


def test_a_closed_reader_stops_and_is_ended(raw_records):
    """After close() the reader's thread has stopped, and asking for a
    batch ends the iteration rather than waiting for one."""
    records_dir, info = raw_records
    batches = plain_reader.train_batches(records_dir, 5, info=info, workers=0, prefetch=2,
                                         seed=1)
    next(batches)
    batches.close()
    with pytest.raises(StopIteration):
        next(batches)


def test_a_small_shuffle_block_mixes_only_its_own_clips(raw_records):
    """Blocks of about 10 segments (5 clips): each batch of the first block
    holds windows of its 5 clips only, read from READ_CYCLE shards side by side."""
    records_dir, info = raw_records
    table = window_table(records_dir, info)
    batches = train(raw_records, 2, shuffle_segments=10, batch_size=5)
    clips = {table[w.tobytes()][0] for x, _ in batches for w in x}
    assert len(clips) == 5


def test_a_split_smaller_than_a_block_is_shuffled_a_pass_at_a_time(raw_records):
    """The default block (2000 segments) holds no more than a pass's 46
    windows rounded up to whole batches: the first 10 batches of 5 hold
    the whole first pass (a block of 2000 would draw them from 43 passes)."""
    records_dir, info = raw_records
    table = window_table(records_dir, info)
    batches = train(raw_records, 10)
    assert {w.tobytes() for x, _ in batches for w in x} == set(table)


def test_a_pass_bounds_its_windows_by_the_records_lengths(raw_records):
    """`pass_windows_bound` from the shards' framing alone: 46 segments in
    23 clips of two give 46 windows of one segment, 23 of two, and 23 of
    three (a clip shorter than a window gives one, padded)."""
    from tagger.records.order import block_windows
    from tagger.records.windows import pass_windows_bound

    records_dir, info = raw_records
    lengths = [span[2] for spans in plain_reader.split_spans(records_dir, info, "train")
               for span in spans]
    assert [pass_windows_bound(lengths, info, k) for k in (1, 2, 3)] == [46, 23, 23]
    assert block_windows(2000, 1, 5) == 2000 and block_windows(2000, 1, 5, 46) == 50
    assert block_windows(10, 1, 5, 46) == 10 and block_windows(2000, 2, 64, 0) == 64


def test_the_labels_are_left_unread_without_tags(student_records):
    records_dir, info = student_records
    (batch,) = take(plain_reader.train_batches(records_dir, 4, split="student", info=info,
                                               with_tags=False, workers=0, prefetch=0), 1)
    assert len(batch) == 1 and batch[0].shape == (4, 59049) and batch[0].dtype == np.int16


def test_log_mel_windows_keep_their_frames_and_dtype(logmel_records):
    records_dir, info = logmel_records
    frames, mels = info.segment_shape
    (x, y), = take(plain_reader.train_batches(records_dir, 3, info=info, window_segments=2,
                                              seed=0, workers=0, prefetch=0), 1)
    assert x.shape == (3, 2 * frames, mels) and x.dtype == np.float32


@pytest.mark.parametrize("count", [2, 3, 10])
def test_the_shares_of_hosts_partition_the_split(raw_records, count):
    """8 shard files: 2 or 3 shares of whole files (share i: files i, i +
    count, ...); 10 shares (more than the files): every 10th clip of each
    pass's clips. One pass of each share (blocks of one window: the order
    read) holds each of its clips' two segments once."""
    records_dir, info = raw_records
    table = window_table(records_dir, info)
    ids = [int(c) for c in reader.clip_labels(records_dir, "train", info)[0]]
    spans = plain_reader.split_spans(records_dir, info, "train")
    shard_of = dict(zip(ids, [i for i, shard in enumerate(spans) for _ in shard]))
    assert len(spans) == 8
    shares = []
    for index in range(count):
        if count <= len(spans):
            expected = {c for c in ids if shard_of[c] % count == index}
        else:
            expected = ids[index::count]
        batches = take(plain_reader.train_batches(records_dir, 1, info=info, seed=1, workers=0,
                                                  prefetch=0, shard=(count, index),
                                                  shuffle_segments=1),
                       2 * len(expected))  # one pass: two segments a clip
        windows = [x[0].tobytes() for x, _ in batches]
        assert len(set(windows)) == len(windows)
        shares.append({table[w][0] for w in windows})
        if count <= len(spans):
            assert shares[-1] == expected
        else:
            assert len(shares[-1]) == len(expected)
    assert sum(map(len, shares)) == len(set().union(*shares)) == len(ids) == 23


def long_clips(folder, info, lengths=(5, 3, 7, 4, 6, 5, 2, 9), per_shard=3):
    """(records folder, DatasetInfo) of clips of `lengths` segments of 4
    int16 samples (each sample its clip's and position's number), in
    shards of `per_shard` clips, as a build writes them (digests included)."""
    from tagger.records.tfrecord import framing_sha256

    folder.mkdir()
    clips = [np.arange(n * 4, dtype=np.int16).reshape(n, 4) + 1000 * i
             for i, n in enumerate(lengths)]
    groups = [clips[i:i + per_shard] for i in range(0, len(clips), per_shard)]
    names = [f"train-{i:04d}-of-{len(groups):04d}.tfrecord" for i in range(len(groups))]
    first = 0
    for name, group in zip(names, groups):
        with open(folder / name, "wb") as file:
            for i, clip in enumerate(group, first):
                tags = np.zeros(info.num_tags, np.int64)
                tags[i % info.num_tags] = 1
                for part in frame([serialize_example(i, f"{i}.wav", tags, clip)]):
                    file.write(part)
        first += len(group)
    entry = {"clips": len(clips), "segments": sum(lengths), "shards": names, "labelled": True,
             "shard_framing_sha256": [framing_sha256(str(folder / n)) for n in names]}
    import dataclasses

    long = dataclasses.replace(info, segment_length=4, segment_shape=(4,), splits={
        "train": entry})
    (folder / "dataset_info.json").write_text(json.dumps(long.to_json()))
    return str(folder), load_info(str(folder))


def both_readers(records_dir, info, count, batch_size, **settings):
    """`count` batches of the train split from each reader, (tf.data's, ours)."""
    cycle = settings.pop("cycle", None)
    theirs = reader.train_dataset(records_dir, batch_size, info=info, as_stored=True,
                                  num_read_threads=cycle, **settings)
    theirs = [batch if isinstance(batch, tuple) else (batch,)
              for batch in theirs.take(count).as_numpy_iterator()]
    ours = take(plain_reader.train_batches(records_dir, batch_size, info=info, workers=0,
                                           prefetch=0, cycle=cycle or 4, **settings), count)
    return theirs, ours


@pytest.mark.parametrize("settings", [
    dict(batch_size=5, seed=3, shuffle_segments=10),
    dict(batch_size=4, seed=7, cycle=2),
    dict(batch_size=3, seed=1, window_segments=2, shuffle_segments=12),
    dict(batch_size=2, seed=1, shard=(3, 1), shuffle_segments=10),
    dict(batch_size=2, seed=5, shard=(10, 7), shuffle_segments=6, window_segments=2),
    dict(batch_size=2, seed=5, shuffle_segments=8, global_batch=4),
    dict(batch_size=4, seed=2, shuffle_segments=8, with_tags=False)])
def test_both_readers_serve_one_order(raw_records, settings):
    """tf.data's reader and ours give the same batches, in order, for a
    seed: one order (`records.order`), whichever reader serves it, so a run
    continued where the other reader serves it trains on its stream."""
    theirs, ours = both_readers(*raw_records, 30, **settings)
    assert len(ours) == len(theirs) == 30
    for mine, tf_batch in zip(ours, theirs):
        assert len(mine) == len(tf_batch) == (2 if settings.get("with_tags", True) else 1)
        for x, tx in zip(mine, tf_batch):
            assert x.dtype == tx.dtype and x.shape == tx.shape
            np.testing.assert_array_equal(x, tx)


def test_both_readers_refuse_a_share_without_clips(raw_records):
    """23 clips in 8 shard files, 30 shares: share 25 holds none, and each
    reader says so in one line rather than read empty passes for ever."""
    records_dir, info = raw_records
    for read in (lambda: reader.train_dataset(records_dir, 2, info=info, shard=(30, 25)),
                 lambda: plain_reader.train_batches(records_dir, 2, info=info,
                                                    shard=(30, 25))):
        with pytest.raises(UserError, match=r"holds no clips to train on in share \(30, 25\)"):
            read()


def test_both_readers_draw_each_clips_offset_alike(raw_records, tmp_path):
    """Clips of 2 to 9 segments in windows of 3, read side by side from 3
    shards: the same windows from the same offsets (over passes, every
    offset a clip's spare segments allow), in the same order."""
    records_dir, info = long_clips(tmp_path / "long", raw_records[1])
    theirs, ours = both_readers(records_dir, info, 40, 2, seed=4, window_segments=3,
                                shuffle_segments=6, cycle=2)
    starts = collections.defaultdict(set)
    for (x, y), (tx, ty) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)
        for window in x:
            clip, first = divmod(int(window[0]), 1000)
            starts[clip].add(first // 4)
    lengths = (5, 3, 7, 4, 6, 5, 2, 9)
    assert set(starts) == set(range(8))
    for clip, found in starts.items():  # the offsets 0 .. spare, windows of 3 from each
        n = lengths[clip]
        spare = n % 3 if n >= 3 else 0
        assert found <= {o + 3 * w for o in range(spare + 1) for w in range(n // 3 or 1)}
    assert any(len({s % 3 for s in found}) > 1 for found in starts.values())


@pytest.mark.parametrize("lengths,cycle", [([3, 1, 2, 0, 4, 2], 4), ([3, 1, 2], 2),
                                           ([2, 0, 0, 3, 1], 2), ([4, 1, 1, 1], 2),
                                           ([2, 2], 4), ([], 4)])
def test_interleave_reads_as_tf_datas_interleave(lengths, cycle):
    sources = [[10 * i + j for j in range(n)] for i, n in enumerate(lengths)]
    theirs = tf.data.Dataset.range(len(lengths)).interleave(
        lambda i: tf.data.Dataset.range(10 * i, 10 * i + tf.constant(lengths, tf.int64)[i]),
        cycle_length=cycle, block_length=1) if lengths else []
    from tagger.records.order import interleave

    assert interleave(sources, cycle) == [int(v) for v in theirs]


def test_windows_of_longer_clips_start_at_a_random_offset(tmp_path):
    """Clips of 5 segments in windows of 2: two windows a clip, from offset
    0 or 1 (the one spare segment), each clip's by its draw."""
    from tagger.records.order import TrainOrder, window_offset

    segments = np.arange(3 * 5 * 4, dtype=np.int16).reshape(3, 5, 4)
    path = str(tmp_path / "train-0000-of-0001.tfrecord")
    with open(path, "wb") as file:
        for i, clip in enumerate(segments):
            for part in frame([serialize_example(i, f"{i}.wav", np.array([i % 2]), clip)]):
                file.write(part)
    with open(path, "rb") as file:
        clips = tuple((path, r.offset, r.length, r.framing)
                      for r in read_records(file, data=False))
    layout = plain_reader.Layout("train", 1, (4,), "int16", 2, True)
    offsets = collections.Counter()
    for seed in range(20):
        draws = tuple(int(d) for d in TrainOrder((seed,)).offset_draws(0, 0)[:3])
        ids, counts, tags, chunks, starts = plain_reader.read_part(
            plain_reader.Part(clips, draws, layout))
        assert list(ids) == [0, 1, 2] and list(counts) == [2, 2, 2]
        assert list(starts) == [draw % 2 for draw in draws]
        np.testing.assert_array_equal(tags, [[0], [1], [0]])
        for clip, part, draw in zip(segments, chunks.parts, draws):
            windows = np.frombuffer(part, np.int16).reshape(2, 8)
            start = int(np.flatnonzero(clip.reshape(-1) == windows[0, 0])[0]) // 4
            assert start == window_offset(draw, 5, 2) == draw % 2
            np.testing.assert_array_equal(windows.reshape(4, 4), clip[start:start + 4])
            offsets[start] += 1
    assert set(offsets) == {0, 1} and min(offsets.values()) > 10


def tensorflow_eval_batches(records_dir, info, split, k, batch_size):
    return list(reader.padded_eval_windows(records_dir, split, k, batch_size,
                                           info).as_numpy_iterator())


@pytest.mark.parametrize("records,split,k,batch_size", [
    ("raw_records", "test", 1, 5), ("raw_records", "test", 3, 3), ("raw_records", "val", 3, 1),
    ("logmel_records", "test", 2, 3)])
def test_eval_batches_equal_the_tf_data_paths(records, split, k, batch_size, request):
    records_dir, info = request.getfixturevalue(records)
    ours = list(plain_reader.eval_batches(records_dir, split, k, batch_size, info=info,
                                          workers=0, prefetch=0))
    theirs = tensorflow_eval_batches(records_dir, info, split, k, batch_size)
    assert len(ours) == len(theirs) > 1
    for (x, clips), (tx, tclips) in zip(ours, theirs):
        assert x.dtype == np.float32 and x.shape == tx.shape
        np.testing.assert_array_equal(x, tx)
        assert set(clips) == set(tclips) == {"clip", "clip_id", "windows"}
        for key in clips:
            assert clips[key].dtype == np.int64
            np.testing.assert_array_equal(clips[key], tclips[key])
    windows = sum(int((clips["clip"] >= 0).sum()) for _, clips in ours)
    padded = (ours[-1][1]["clip"] == -1).sum()  # the last batch is filled up
    assert padded == (-windows) % batch_size


@pytest.mark.parametrize("records,split", [("raw_records", "test"),
                                           ("student_records", "student")])
def test_clip_labels_equal_the_tf_data_readers(records, split, request):
    records_dir, info = request.getfixturevalue(records)
    ids, tags = plain_reader.clip_labels(records_dir, split, info)
    their_ids, their_tags = reader.clip_labels(records_dir, split, info)
    assert ids.dtype == np.int64 and tags.dtype == np.float32
    assert tags.shape == (info.splits[split]["clips"], info.num_tags)
    np.testing.assert_array_equal(ids, their_ids)
    np.testing.assert_array_equal(tags, their_tags)


def test_clip_paths_without_tensorflow_are_tf_datas_and_decode_no_audio(raw_records,
                                                                       monkeypatch):
    """`batches.clip_paths` where TensorFlow is not installed: the ids and
    paths tf.data's reader gives, without the clips' audio decoded (never
    through `clips`, which makes each clip's float32 segments)."""
    from tagger.records import batches

    records_dir, info = raw_records
    their_ids, their_paths = reader.clip_paths(records_dir, "test", info)
    monkeypatch.setattr(batches, "_tensorflow", lambda: None)

    def decoded(*args, **kwargs):
        raise AssertionError("the clips' audio was decoded to list their paths")

    monkeypatch.setattr(plain_reader, "clips", decoded)
    ids, paths = batches.clip_paths(records_dir, "test", info)
    assert len(paths) == info.splits["test"]["clips"] == 8
    assert ids.dtype == np.int64 and ids.tolist() == their_ids.tolist()
    assert paths == their_paths and all(path.endswith(".mp3") for path in paths)


def test_records_on_a_tf_io_gfile_path_read_as_the_local_ones(raw_records):
    """A records folder read through tf.io.gfile (ram:// here, gs:// for a
    user): the same batches and labels as the local folder."""
    records_dir, info = raw_records
    folder = "ram://plain_reader_test/records"
    for name in info.splits["test"]["shards"]:
        tf.io.gfile.copy(os.path.join(records_dir, name), f"{folder}/{name}", overwrite=True)

    def read(records):
        return (list(plain_reader.eval_batches(records, "test", 1, 4, info=info, workers=0,
                                               prefetch=0)),
                plain_reader.clip_labels(records, "test", info))

    (batches, labels), (local_batches, local_labels) = read(folder), read(records_dir)
    assert len(batches) == len(local_batches) > 1
    for (x, clips), (local_x, local_clips) in zip(batches, local_batches):
        np.testing.assert_array_equal(x, local_x)
        np.testing.assert_array_equal(clips["clip_id"], local_clips["clip_id"])
    for ours, local in zip(labels, local_labels, strict=True):
        np.testing.assert_array_equal(ours, local)


@pytest.fixture
def copied_records(raw_records, tmp_path):
    """A copy of the raw records that a test may damage: (folder, info)."""
    folder = tmp_path / "records"
    shutil.copytree(raw_records[0], folder)
    return str(folder), load_info(str(folder))


def damage(records_dir, info, split, how):
    """Damages the first shard of `split` (`how`: flip a data byte, flip a
    length byte, cut it in a record, cut it between records, remove it);
    returns its path."""
    path = os.path.join(records_dir, info.splits[split]["shards"][0])
    data = bytearray(open(path, "rb").read())
    first = 16 + int.from_bytes(data[:8], "little")  # where the second record starts
    if how == "remove":
        os.remove(path)
        return path
    if how == "data":
        data[first + 12 + 1000] ^= 0x10
    elif how == "length":
        data[first + 2] ^= 0x01
    elif how == "cut":
        data = data[:first + 5000]
    elif how == "cut between":
        data = data[:first]
    open(path, "wb").write(bytes(data))
    return path


def read_all(records_dir, info, split, reading, workers=0):
    if reading == "train":
        return take(plain_reader.train_batches(records_dir, 4, split=split, info=info, seed=0,
                                               workers=workers, prefetch=2), 30)
    if reading == "eval":
        return list(plain_reader.eval_batches(records_dir, split, 1, 4, info=info,
                                              workers=workers, prefetch=0))
    return plain_reader.clip_labels(records_dir, split, info)


@pytest.mark.parametrize("how,problem", [
    ("data", "is damaged (the data of its record at byte {first} does not match its CRC32C)"),
    ("length", "is damaged (the length of its record at byte {first} does not match its "
               "CRC32C)"),
    ("cut", "is damaged (its record at byte {first} is cut short: the file ends at byte "
            "{cut})"),
    ("remove", "is missing")])
@pytest.mark.parametrize("reading", ["train", "eval", "labels"])
def test_a_damaged_shard_is_one_line_naming_it(copied_records, how, problem, reading):
    records_dir, info = copied_records
    split = "train" if reading == "train" else "test"
    path = damage(records_dir, info, split, how)
    first = 16 + int.from_bytes(open(path, "rb").read(8), "little") if how != "remove" else 0
    with pytest.raises(UserError) as error:
        read_all(records_dir, info, split, reading)
    message = str(error.value)
    assert message.startswith(f"shard {path!r} of the {split} split "
                              + problem.format(first=first, cut=first + 5000)), message
    assert "rebuild the dataset" in message and "\n" not in message


def without_digests(records_dir):
    """dataset_info.json rewritten as a build before the framing digests
    wrote it; its DatasetInfo."""
    path = os.path.join(records_dir, "dataset_info.json")
    data = json.loads(open(path).read())
    for entry in data["splits"].values():
        del entry["shard_framing_sha256"]
    open(path, "w").write(json.dumps(data))
    return load_info(records_dir)


@pytest.mark.parametrize("reading", ["train", "eval", "labels"])
def test_a_shard_cut_between_records_is_named_or_caught_by_the_clip_count(copied_records,
                                                                         reading):
    """Its framing is not the one the build recorded: the shard is named;
    records built before the build recorded it: the split's clip count."""
    records_dir, info = copied_records
    split = "train" if reading == "train" else "test"
    path = damage(records_dir, info, split, "cut between")
    with pytest.raises(UserError, match=f"^shard {re.escape(repr(path))} of the {split} split "
                                        "does not hold the records its dataset_info.json "
                                        "lists"):
        read_all(records_dir, info, split, reading)
    info = without_digests(records_dir)
    expected = info.splits[split]["clips"]
    with pytest.raises(UserError, match=f"holds {expected - 3} clips but its "
                                        f"dataset_info.json lists {expected}"):
        read_all(records_dir, info, split, reading)


def tensorflow_read_all(records_dir, info, split, reading):
    if reading == "train":
        return list(reader.train_dataset(records_dir, 4, split=split, info=info, seed=0,
                                         repeat=False).as_numpy_iterator())
    if reading == "eval":
        return tensorflow_eval_batches(records_dir, info, split, 1, 4)
    return reader.clip_labels(records_dir, split, info)


@pytest.mark.parametrize("read", [read_all, tensorflow_read_all])
@pytest.mark.parametrize("reading", ["train", "eval", "labels"])
def test_a_shard_of_another_build_is_refused_naming_it(copied_records, reading, read):
    """A valid shard of the same name and clip count, another build's (here
    the split's second shard in the first's place), is refused by either
    reader in one line naming it, not read: dataset_info.json holds the
    framing digest of each shard the build wrote."""
    records_dir, info = copied_records
    split = "train" if reading == "train" else "test"
    first, second = (os.path.join(records_dir, name)
                     for name in info.splits[split]["shards"][:2])
    shutil.copyfile(second, first)
    with pytest.raises(UserError) as error:
        read(records_dir, info, split, reading)
    assert str(error.value) == (
        f"shard {first!r} of the {split} split does not hold the records its "
        "dataset_info.json lists (their lengths and CRC32Cs differ: the shard was replaced, "
        "by another build's say, or cut short); rebuild the dataset (delete that shard and "
        "rerun build_mtt.py with the same settings, or build anew with --overwrite)")


@pytest.mark.slow
def test_the_workers_give_the_batches_of_this_process(raw_records, copied_records):
    """The order does not depend on the number of worker processes; closing
    stops the reading; a damaged shard read by a worker is the same one
    line."""
    records_dir, info = raw_records
    alone = train(raw_records, 20, shuffle_segments=10, window_segments=1)
    pooled = train(raw_records, 20, shuffle_segments=10, window_segments=1, workers=2,
                   prefetch=4)
    for (x1, y1), (x2, y2) in zip(alone, pooled, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    ours = list(plain_reader.eval_batches(records_dir, "test", 3, 4, info=info, workers=2))
    theirs = tensorflow_eval_batches(records_dir, info, "test", 3, 4)
    assert len(ours) == len(theirs)
    for (x, clips), (tx, tclips) in zip(ours, theirs):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(clips["clip_id"], tclips["clip_id"])
    batches = plain_reader.train_batches(records_dir, 4, info=info, workers=2, prefetch=2)
    next(batches)
    batches.close()
    assert not batches._thread.is_alive()  # its thread (and with it its workers) stopped
    damaged_dir, damaged_info = copied_records
    path = damage(damaged_dir, damaged_info, "train", "data")
    with pytest.raises(UserError, match=f"^shard {path!r} of the train split is damaged"):
        read_all(damaged_dir, damaged_info, "train", "train", workers=2)


NO_TENSORFLOW = """
import hashlib, json, sys
import sitecustomize
from tagger.records import plain_reader


def digest(arrays):
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


if __name__ == "__main__":  # the workers' fork server loads this module too
    records = sys.argv[1]
    train = plain_reader.train_batches(records, 5, seed=(4, 2), workers=2)
    batches = [next(train) for _ in range(10)]
    train.close()
    evaluated = list(plain_reader.eval_batches(records, "test", 3, 4, workers=2))
    print(json.dumps({
        "blocked": sitecustomize.BLOCKED, "tensorflow": "tensorflow" in sys.modules,
        "train": digest([a for batch in batches for a in batch]),
        "eval": digest([a for x, clips in evaluated for a in (x, *clips.values())]),
        "labels": digest(plain_reader.clip_labels(records, "test"))}))
"""


def digest(arrays):
    import hashlib

    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


@pytest.mark.slow
def test_it_reads_in_a_process_where_tensorflow_cannot_be_imported(raw_records, tmp_path):
    records_dir, info = raw_records
    script = tmp_path / "no_tensorflow.py"
    script.write_text(NO_TENSORFLOW)
    done = subprocess.run([sys.executable, str(script), records_dir], capture_output=True,
                          text=True, timeout=300, env=without_tensorflow_env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["blocked"] == [] and out["tensorflow"] is False
    batches = take(plain_reader.train_batches(records_dir, 5, info=info, seed=(4, 2),
                                              workers=0, prefetch=0), 10)
    assert out["train"] == digest([a for batch in batches for a in batch])
    evaluated = list(plain_reader.eval_batches(records_dir, "test", 3, 4, info=info,
                                               workers=0, prefetch=0))
    assert out["eval"] == digest([a for x, clips in evaluated for a in (x, *clips.values())])
    assert out["labels"] == digest(reader.clip_labels(records_dir, "test", info))


@pytest.mark.slow
def test_the_blocker_refuses_tensorflow_and_nothing_else(tmp_path):
    code = ("import json, sys, sitecustomize, numpy\n"
            "try:\n    import tensorflow\nexcept ModuleNotFoundError as e:\n    error = str(e)\n"
            "try:\n    from tensorflow_io import x\nexcept ImportError:\n    pass\n"
            "print(json.dumps([error, sitecustomize.BLOCKED]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=without_tensorflow_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    error, blocked = json.loads(done.stdout)
    assert "No module named 'tensorflow'" in error and blocked == ["tensorflow", "tensorflow_io"]


QUIET_END = """
import sys, time
import numpy as np
from multiprocessing import reduction
from tagger.errors import UserError
from tagger.evaluation.predict import ClipPredictor
from tagger.records import plain_reader

send_handle = reduction.send_handle


def slow_send_handle(*args):  # a worker waits longer for its shared memory
    time.sleep(0.5)
    send_handle(*args)


if __name__ == "__main__":  # the workers' fork server loads this module too
    records = sys.argv[1]
    reduction.send_handle = slow_send_handle
    predict = ClipPredictor(None, scores=lambda x: np.zeros((len(x), 8), np.float32))
    try:  # eval.py --backend jax: the predictions of a split with a damaged shard
        predict(records, "test", 1, batch_size=4)
    except UserError as error:
        print(f"eval.py: error: {error}", file=sys.stderr)
    # a reader whose process ends (an error elsewhere) while its workers start
    plain_reader.eval_batches(records, "train", 1, 4, workers=2)
    time.sleep(0.2)
    print("train.py: error: something else", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.slow
def test_a_reading_error_ends_the_workers_quietly(copied_records, tmp_path):
    """Without TensorFlow (eval.py --backend jax), a damaged shard is the
    reader's one line on stderr, and a process that ends while its reader's
    workers start has its own error alone: no worker's traceback follows
    as they find the pool gone."""
    records_dir, info = copied_records
    path = damage(records_dir, info, "test", "data")
    script = tmp_path / "quiet_end.py"
    script.write_text(QUIET_END)
    done = subprocess.run([sys.executable, str(script), records_dir], capture_output=True,
                          text=True, timeout=300, cwd=ROOT,
                          env=without_tensorflow_env() | {"KERAS_BACKEND": "jax"})
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr[-3000:]
    assert lines[0].startswith(f"eval.py: error: shard {path!r} of the test split is damaged")
    assert lines[1] == "train.py: error: something else"
