import numpy as np
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
