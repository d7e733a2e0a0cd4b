"""reader.train_dataset: every window of a pass exactly once with its tags,
float32; segments of different clips mixed in a batch; seeded order
reproducible."""

import collections

import numpy as np
import pytest

from tagger.records import reader


def source_segments(records_dir, info):
    """{segment bytes (float32): tags} of every train segment."""
    table = {}
    for clip in reader.clip_dataset(records_dir, "train", info).as_numpy_iterator():
        for segment in clip["segments"]:
            table[segment.tobytes()] = (clip["clip_id"], clip["tags"])
    return table


def one_pass(records_dir, info, batch_size, **kwargs):
    data = reader.train_dataset(records_dir, batch_size, info=info, repeat=False, **kwargs)
    return list(data.as_numpy_iterator())


@pytest.mark.parametrize("shuffle_segments", [1, 16, 1000])
def test_one_pass_holds_every_segment_once_with_its_tags(raw_records, shuffle_segments):
    records_dir, info = raw_records
    table = source_segments(records_dir, info)
    total = info.splits["train"]["segments"]
    assert len(table) == total
    batches = one_pass(records_dir, info, 4, shuffle_segments=shuffle_segments, seed=3)
    rows = [(x, y) for xs, ys in batches for x, y in zip(xs, ys)]
    # blocks are whole batches: only the pass's last partial batch is left out
    assert len(batches) == total // 4 and len(rows) == total // 4 * 4
    seen = set()
    for x, y in rows:
        assert x.dtype == np.float32 and x.shape == (59049,)
        clip_id, tags = table[x.tobytes()]
        np.testing.assert_array_equal(y, tags)
        seen.add(x.tobytes())
    assert len(seen) == len(rows)


def test_batches_mix_clips_and_the_seed_fixes_the_order(raw_records):
    records_dir, info = raw_records
    table = source_segments(records_dir, info)
    first = one_pass(records_dir, info, 4, shuffle_segments=1000, seed=7)
    again = one_pass(records_dir, info, 4, shuffle_segments=1000, seed=7)
    other = one_pass(records_dir, info, 4, shuffle_segments=1000, seed=8)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    clips = [[table[x.tobytes()][0] for x in xs] for xs, _ in first]
    # each clip has 2 segments; kept in clip order, a batch of 4 holds 2 clips
    assert np.mean([len(set(c)) for c in clips]) > 3.0
    order = [c for batch in clips for c in batch]
    assert order != sorted(order, key=order.index)  # a clip's segments are not kept together


def test_windows_of_two_segments_and_repeat(raw_records):
    records_dir, info = raw_records
    clips = {int(c["clip_id"]): c["segments"] for c in
             reader.clip_dataset(records_dir, "train", info).as_numpy_iterator()}
    whole = {np.concatenate(s[:2]).tobytes() for s in clips.values()}
    batches = one_pass(records_dir, info, 3, window_segments=2, seed=0)
    windows = [x for xs, _ in batches for x in xs]
    assert windows[0].shape == (2 * 59049,)
    assert len(windows) == len(clips) // 3 * 3 and all(w.tobytes() in whole for w in windows)
    endless = reader.train_dataset(records_dir, 3, window_segments=2, info=info, seed=0)
    counts = collections.Counter(x.tobytes() for xs, _ in
                                 endless.take(3 * len(batches)).as_numpy_iterator() for x in xs)
    assert sum(counts.values()) == 9 * len(batches) and max(counts.values()) >= 2


@pytest.mark.parametrize("with_tags", [True, False])
def test_as_stored_gives_the_int16_windows_the_float_ones_come_from(raw_records, with_tags):
    from tagger.audio import INT16_SCALE

    records_dir, info = raw_records
    assert info.features["dtype"] == "int16"
    floats = one_pass(records_dir, info, 4, seed=5, with_tags=with_tags)
    stored = one_pass(records_dir, info, 4, seed=5, with_tags=with_tags, as_stored=True)
    assert len(stored) == len(floats) == info.splits["train"]["segments"] // 4
    for as_float, as_int in zip(floats, stored, strict=True):
        x_float, x_int = (as_float[0], as_int[0]) if with_tags else (as_float, as_int)
        assert x_int.dtype == np.int16 and x_int.shape == (4, 59049)
        assert np.abs(x_int).max() > 1000  # real audio, not zeros
        np.testing.assert_array_equal(x_float, x_int.astype(np.float32) / np.float32(INT16_SCALE))
        if with_tags:
            np.testing.assert_array_equal(as_float[1], as_int[1])
