import numpy as np
import pytest
import tensorflow as tf

from tagger.records.reader import _eval_windows_of_clip, eval_window_starts, join_windows


def _segments(n, length=3):
    return tf.reshape(tf.range(n * length, dtype=tf.float32), (n, length))


def test_join_windows_concatenates_consecutive_segments():
    x = join_windows(_segments(10), 4, offset=1).numpy()
    assert x.shape == (2, 12)
    np.testing.assert_array_equal(x[0], np.arange(3, 15))
    np.testing.assert_array_equal(x[1], np.arange(15, 27))


def test_join_windows_of_log_mel_frames():
    frames = tf.reshape(tf.range(6 * 4 * 2, dtype=tf.float32), (6, 4, 2))
    x = join_windows(frames, 3).numpy()
    assert x.shape == (2, 12, 2)
    np.testing.assert_array_equal(x[1], frames.numpy()[3:6].reshape(12, 2))


def test_short_clip_is_zero_padded_to_one_window():
    x = join_windows(_segments(2), 4).numpy()
    assert x.shape == (1, 12)
    np.testing.assert_array_equal(x[0, 6:], 0)


def test_eval_windows_cover_the_whole_clip():
    for n, k in [(10, 1), (10, 4), (8, 4), (3, 4), (10, 3)]:
        starts = eval_window_starts(n, k)
        windows = _eval_windows_of_clip(_segments(n), k).numpy()
        assert len(windows) == len(starts)
        covered = {s + i for s in starts for i in range(k)}
        assert covered >= set(range(n))
        for start, window in zip(starts, windows):
            expected = np.zeros(3 * k)
            real = np.arange(start * 3, min(start + k, n) * 3)
            expected[:len(real)] = real
            np.testing.assert_array_equal(window, expected)


@pytest.mark.parametrize("shape", [(3,), (4, 2)])
def test_the_numpy_windows_equal_the_tf_data_readers(shape):
    """windows.join_windows and eval_windows_of_clip (the reader without
    TensorFlow's) give the windows of reader's graph functions."""
    from tagger.records import windows

    for n, k in [(10, 1), (10, 4), (8, 4), (3, 4), (10, 3), (1, 1), (2, 2)]:
        segments = np.arange(n * np.prod(shape), dtype=np.int16).reshape(n, *shape)
        for offset in range(max(n - n // k * k, 0) + 1):
            ours = windows.join_windows(segments, k, offset)
            theirs = join_windows(tf.constant(segments), k, offset).numpy()
            np.testing.assert_array_equal(ours, theirs)
            if n >= k:
                assert np.shares_memory(ours, segments)  # a view, not a copy
        np.testing.assert_array_equal(windows.eval_windows_of_clip(segments, k),
                                      _eval_windows_of_clip(tf.constant(segments), k).numpy())
        assert len(windows.eval_windows_of_clip(segments, k)) == len(eval_window_starts(n, k))
