"""Many clips scored at once (tagger/training/clip_batches.py): the windows
of consecutive clips share full batches, each clip's outputs are those of
the clip scored alone, in order; the clips are read ahead by a thread
whose errors reach the caller, and which stops when the caller does."""

import threading

import numpy as np
import pytest

from tagger.training.clip_batches import clip_windows, outputs_of_clips, read_ahead

RATE, WINDOW, HOP = 8000, 800, 400


class SumsPredictor:
    """Scores each window by its sums (two tags) and embeds it by its first
    three samples; records the size of every call."""

    sample_rate, window_samples, hop_samples, edge_padding = RATE, WINDOW, HOP, 200

    def __init__(self):
        self.sizes = []

    def __call__(self, windows):
        self.sizes.append(len(windows))
        scores = np.stack([windows.sum(axis=1), np.abs(windows).sum(axis=1)], axis=1)
        return scores.astype(np.float32), windows[:, :3].copy()


def clips(lengths):
    rng = np.random.default_rng(0)
    return [{"clip_id": i, "segments": rng.standard_normal((1, n)).astype(np.float32)}
            for i, n in enumerate(lengths)]


def test_clips_windows_share_full_batches_and_each_clip_gets_its_own_outputs():
    # at 16 kHz; 3, 20, 1 (padded), 11, 50 and 5 windows at 8 kHz
    records = clips([3000, 16000, 100, 9000, 40000, 4000])
    predictor = SumsPredictor()
    got = list(outputs_of_clips(predictor, records, RATE * 2, batch_size=4))

    assert [clip["clip_id"] for clip, _ in got] == list(range(len(records)))
    alone = SumsPredictor()
    windows = 0
    for (_, outputs), record in zip(got, records):
        starts, expected = clip_windows(alone, record["segments"].reshape(-1), RATE * 2)
        scores, embeddings = alone(expected)  # the clip on its own, in one call
        windows += len(expected)
        np.testing.assert_array_equal(outputs.starts, (starts - 200) / RATE)
        assert outputs.window_seconds == WINDOW / RATE
        np.testing.assert_allclose(outputs.scores, scores, rtol=1e-6)
        np.testing.assert_array_equal(outputs.embeddings, embeddings)
    assert windows == sum(predictor.sizes) == 90
    assert predictor.sizes == [4] * 22 + [2]  # every batch full across the clips but the last


def test_the_last_batch_holds_the_rest_and_no_embeddings_stay_none():
    class ScoresOnly(SumsPredictor):
        def __call__(self, windows):
            return super().__call__(windows)[0], None

    predictor = ScoresOnly()
    got = list(outputs_of_clips(predictor, clips([3000, 9000]), RATE * 2, batch_size=4))
    assert [len(outputs.scores) for _, outputs in got] == [3, 11]
    assert predictor.sizes == [4, 4, 4, 2]
    assert all(outputs.embeddings is None for _, outputs in got)
    predictor = ScoresOnly()
    got = list(outputs_of_clips(predictor, clips([3000, 16000]), RATE * 2, batch_size=32))
    assert predictor.sizes == [23]


def test_an_error_taking_a_clip_is_raised_in_the_callers_thread():
    def records():
        yield from clips([3000, 3000])  # 3 windows each
        raise OSError("shard cut short")

    got = []
    with pytest.raises(OSError, match="shard cut short"):
        for clip, _ in outputs_of_clips(SumsPredictor(), records(), RATE * 2, batch_size=4):
            got.append(clip["clip_id"])
    assert got == [0]  # the first clip's windows filled a batch; the second's wait for more


def test_the_reader_thread_stops_when_the_caller_stops():
    taken = []

    def endless():
        while True:
            taken.append(len(taken))
            yield len(taken)

    before = threading.active_count()
    items = read_ahead(endless(), depth=3)
    assert [next(items) for _ in range(5)] == [1, 2, 3, 4, 5]
    items.close()
    assert threading.active_count() == before
    assert len(taken) <= 5 + 3 + 1  # read at most the queue's depth ahead
