"""The decoder pool of tag.py: its size from the measured rates (a pure
function), and the pipeline growing it when the model outpaces decoding,
with the same results as a fixed pool. No TensorFlow: a fake predictor."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from tagger.inference.engine import tagging
from tagger.inference.engine.decoder_pool import DecoderRates, decoder_threads
from tagger.inference.engine.tagging import tag_files
from tests.checks import call_main, one_line_error

RATE = 1000
WINDOW = 100


@pytest.mark.parametrize("model_rate, decode_rate, cores, expected", [
    (100.0, 100.0, 8, 2),      # 1.25x the model's rate needs a second thread
    (400.0, 500.0, 8, 1),      # exactly 1.25x: one is enough
    (980.0, 1900.0, 2, 1),     # int8 on VNNI, 2 cores: one thread keeps up
    (5000.0, 1900.0, 16, 4),   # a fast model on many cores: ceil(3.29)
    (5000.0, 1900.0, 2, 2),    # never more than the cores
    (1e6, 10.0, 0, 1),         # nor fewer than one, whatever the cores
    (0.0, 1900.0, 8, 1),       # the model not measured yet
    (980.0, 0.0, 8, 1),        # decoding not measured yet
])
def test_decoder_threads_from_rates_and_cores(model_rate, decode_rate, cores, expected):
    assert decoder_threads(model_rate, decode_rate, cores) == expected


def test_decoder_threads_headroom():
    assert decoder_threads(1000.0, 1000.0, 8, headroom=1.0) == 1
    assert decoder_threads(1000.0, 1000.0, 8, headroom=2.5) == 3


def test_rates_are_windows_per_second():
    rates = DecoderRates()
    assert rates.model_rate == 0.0 and rates.decode_rate == 0.0
    rates.model(32, 0.5)
    rates.model(32, 0.5)
    threads = [threading.Thread(target=rates.decoded, args=(10, 0.25)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rates.decoded(0, 1.0)  # a file that gave no window still took the time
    assert rates.model_rate == pytest.approx(64.0)
    assert rates.decode_rate == pytest.approx(40 / 2.0)


class InstantPredictor:
    """Scores = (first sample, last sample) of each window; no waiting."""

    sample_rate = RATE
    window_samples = WINDOW

    def __call__(self, windows):
        return np.stack([windows[:, 0], windows[:, -1]], axis=1).astype(np.float32), None


class SlowPredictor(InstantPredictor):
    def __call__(self, windows):
        time.sleep(0.02)
        return super().__call__(windows)


@pytest.fixture
def files(tmp_path):
    """Eight WAVs of 5 windows each, sample i of file f = (1000 f + i) / 1e4."""
    paths = []
    for f in range(8):
        path = os.path.join(tmp_path, f"{f}.wav")
        sf.write(path, (1000 * f + np.arange(5 * WINDOW)) / 10000.0, RATE, subtype="FLOAT")
        paths.append(path)
    return paths


@pytest.fixture
def slow_decoding(monkeypatch):
    """Every window takes 10 ms to decode, and the pool may use 4 cores;
    sizing decisions are taken at every batch."""
    real = tagging.audio_windows

    def slow(*args, **kwargs):
        windows = real(*args, **kwargs)
        while True:
            time.sleep(0.01)
            try:
                item = next(windows)
            except StopIteration as end:
                return end.value
            yield item

    monkeypatch.setattr(tagging, "audio_windows", slow)
    monkeypatch.setattr(tagging, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr("tagger.inference.common.available_cores", lambda: 4)


def by_index(results):
    return {r.index: (r.windows, r.samples, r.scores.tobytes()) for r in results}


def test_auto_pool_grows_when_the_model_outpaces_decoding(files, slow_decoding):
    reference = by_index(tag_files(InstantPredictor(), files, batch_size=2, workers=1))
    rates = DecoderRates()
    results = list(tag_files(InstantPredictor(), files, batch_size=2, rates=rates))
    assert rates.threads == 4  # 2 at the start, grown to the cores
    assert by_index(results) == reference  # the same windows and scores, bytes equal
    assert rates.decoded_windows == 8 * 5 and rates.model_windows == 8 * 5 - 2  # 1st call
    assert 0 < rates.decode_rate < 100  # 10 ms a window


def test_auto_pool_stays_at_two_when_decoding_keeps_up(files, monkeypatch):
    monkeypatch.setattr(tagging, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr("tagger.inference.common.available_cores", lambda: 4)
    rates = DecoderRates()
    results = list(tag_files(SlowPredictor(), files, batch_size=2, rates=rates))
    assert rates.threads == 2 and len(results) == 8 and all(r.ok for r in results)
    assert rates.decode_rate > 1.25 * rates.model_rate  # one thread would have done


def test_explicit_workers_win(files, slow_decoding):
    rates = DecoderRates()
    assert len(list(tag_files(InstantPredictor(), files, batch_size=2, workers=1,
                              rates=rates))) == 8
    assert rates.threads == 1


def test_auto_pool_never_exceeds_the_files(files, slow_decoding):
    rates = DecoderRates()
    results = list(tag_files(InstantPredictor(), files[:3], batch_size=1, rates=rates))
    assert rates.threads == 3 and len(results) == 3


def test_closing_an_auto_pool_early_stops_every_decoder(files, slow_decoding):
    before = threading.active_count()
    results = tag_files(InstantPredictor(), files * 3, batch_size=1, queue_batches=1)
    for _ in range(2):
        next(results)
    results.close()
    assert threading.active_count() == before


def test_workers_flag_is_auto_or_a_count(capsys):
    from tagger.commands import tag as tag_cli

    assert tag_cli.parse_args(["m.keras", "a.wav"]).workers is None  # auto by default
    assert tag_cli.parse_args(["m.keras", "a.wav", "--workers", "auto"]).workers is None
    assert tag_cli.parse_args(["m.keras", "a.wav", "--workers", "3"]).workers == 3
    for bad in ("0", "many"):
        code, _, err = call_main(tag_cli.main, capsys, "m.keras", "a.wav", "--workers", bad)
        one_line_error(code, err, "--workers", f"expected auto or a number >= 1, got {bad!r}")
