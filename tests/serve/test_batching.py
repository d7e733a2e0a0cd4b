"""The dynamic batcher: requests share the model's calls, each gets its own
rows back, a lone request waits at most the wait bound, the backlog is
bounded, and failures and shutdown reach the requests."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tagger.serve.batching import Batcher, Closed
from tests.checks import WAIT_S, until

WIDTH = 6


class Recorder:
    """A predictor that records each call's batch size: scores are each
    window's first two samples, the embedding its sum; `gate` (an Event)
    holds every call until set."""

    def __init__(self, gate=None, fail_on=None):
        self.sizes = []
        self.gate = gate
        self.fail_on = fail_on  # a window value that makes the call fail

    def __call__(self, windows):
        self.sizes.append(len(windows))
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_on is not None and (windows == self.fail_on).any():
            raise RuntimeError("model failure")
        return windows[:, :2].copy(), windows.sum(axis=1, keepdims=True)


def windows_of(rows, first):
    """(rows, WIDTH) windows whose values are first, first + 1, ... per row."""
    return (first + np.arange(rows, dtype=np.float32))[:, None].repeat(WIDTH, axis=1)


@pytest.fixture
def make_batcher():
    made = []

    def make(predictor, **settings):
        batcher = Batcher(predictor, **settings)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.close()


def test_requests_share_one_call_and_get_their_own_rows(make_batcher):
    recorder = Recorder()
    batcher = make_batcher(recorder, max_batch=32, max_wait=0.5)
    sizes = (2, 3, 4)
    futures = [batcher.submit(windows_of(n, 100 * i)) for i, n in enumerate(sizes)]
    for i, (n, future) in enumerate(zip(sizes, futures)):
        scores, embeddings = future.result(WAIT_S)
        expected = windows_of(n, 100 * i)
        np.testing.assert_array_equal(scores, expected[:, :2])
        np.testing.assert_array_equal(embeddings[:, 0], expected.sum(axis=1))
    assert recorder.sizes == [9]  # one call for the three requests
    assert (batcher.batches, batcher.windows) == (1, 9)


def test_a_long_request_spans_batches_and_shares_the_last(make_batcher):
    recorder = Recorder()
    batcher = make_batcher(recorder, max_batch=32, max_wait=0.5, max_pending=200)
    long, short = batcher.submit(windows_of(70, 0)), batcher.submit(windows_of(5, 1000))
    np.testing.assert_array_equal(long.result(WAIT_S)[0][:, 0], np.arange(70))
    np.testing.assert_array_equal(short.result(WAIT_S)[0][:, 0], 1000 + np.arange(5))
    assert recorder.sizes == [32, 32, 11]  # the long one's tail and the short one together


@pytest.mark.parametrize("wait", [0.0, 0.3])
def test_a_lone_request_waits_at_most_the_wait_bound(make_batcher, wait):
    recorder = Recorder()
    batcher = make_batcher(recorder, max_batch=32, max_wait=wait)
    start = time.monotonic()
    batcher.submit(windows_of(1, 0)).result(WAIT_S)
    took = time.monotonic() - start
    assert recorder.sizes == [1]
    assert wait * 0.9 <= took < wait + 10  # not held for more: 10 s only guards a hang


def test_a_full_backlog_holds_the_decoder_back(make_batcher):
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make_batcher(recorder, max_batch=4, max_wait=0.0, max_pending=4)
    first = batcher.submit(windows_of(4, 0))  # taken into the first call, held by the gate
    until(lambda: recorder.sizes, "the first call")
    second = batcher.submit(windows_of(4, 10))  # waits: the backlog is full now
    assert batcher.backlog == 8
    third = []
    blocked = threading.Thread(target=lambda: third.append(batcher.submit(windows_of(1, 20))))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive() and not third  # submit blocks while 4 windows wait
    gate.set()
    blocked.join(WAIT_S)
    assert not blocked.is_alive()
    for future, first_value in ((first, 0), (second, 10), (third[0], 20)):
        assert future.result(WAIT_S)[0][0, 0] == first_value
    assert recorder.sizes == [4, 4, 1]


def test_a_model_error_fails_that_batch_only(make_batcher):
    recorder = Recorder(fail_on=-1.0)
    batcher = make_batcher(recorder, max_batch=8, max_wait=0.0)
    bad = batcher.submit(np.full((3, WIDTH), -1.0, np.float32))
    with pytest.raises(RuntimeError, match="model failure"):
        bad.result(WAIT_S)
    good = batcher.submit(windows_of(2, 5))
    assert good.result(WAIT_S)[0][:, 0].tolist() == [5, 6]


def test_close_fails_what_waits_and_refuses_more():
    gate = threading.Event()
    batcher = Batcher(Recorder(gate), max_batch=2, max_wait=0.0)
    batcher.submit(windows_of(2, 0))  # in the model
    waiting = batcher.submit(windows_of(2, 5))
    batcher.close(timeout=0.1)
    with pytest.raises(Closed):
        waiting.result(WAIT_S)
    with pytest.raises(Closed):
        batcher.submit(windows_of(1, 0))
    gate.set()


def test_bad_windows_are_refused(make_batcher):
    batcher = make_batcher(Recorder())
    with pytest.raises(ValueError, match="rows >= 1"):
        batcher.submit(np.zeros((0, WIDTH), np.float32))
