"""Helpers shared by the model family tests."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tagger.models.spectrogram_input import SEGMENT_LENGTH, make_log_mel


def trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def waveforms(batch, segments, seed=0):
    """Noise bursts with a sine: enough structure for distinct features."""
    rng = np.random.default_rng(seed)
    n = segments * SEGMENT_LENGTH
    t = np.arange(n) / 22050.0
    freqs = rng.uniform(200.0, 4000.0, size=(batch, 1))
    x = 0.3 * np.sin(2 * np.pi * freqs * t) + 0.1 * rng.standard_normal((batch, n))
    return x.astype("float32")


def check_raw_logmel_parity(build, logmel, segments, **kwargs):
    """Same weights: raw model on waveforms == logmel model on LogMel
    features of the same waveforms."""
    raw = build(num_tags=5, input_kind="raw", segments=segments, logmel=logmel, **kwargs)
    x = waveforms(2, segments, seed=1)
    rate = raw.get_layer("log_mel").sample_rate  # the family's
    features = np.asarray(make_log_mel(logmel, rate)(x))
    frames = raw.get_layer("log_mel").output.shape[1]
    assert features.shape == (2, frames, logmel.n_mels)
    spec = build(num_tags=5, input_kind="logmel", num_frames=frames, logmel=logmel,
                 **kwargs)
    assert spec.input.shape == (None, frames, logmel.n_mels)
    assert ([layer.name for layer in raw.layers][2:]
            == [layer.name for layer in spec.layers][1:])
    spec.set_weights(raw.get_weights())
    np.testing.assert_allclose(spec.predict(features, verbose=0),
                               raw.predict(x, verbose=0), atol=1e-5)


def nested_layers(layer) -> list:
    """The layers inside `layer`, at any depth, each once: a model's, and
    those a layer holds as attributes (a transformer block's dropouts)."""
    found, todo = {}, [layer]
    while todo:
        current = todo.pop()
        held = list(getattr(current, "layers", None) or [])
        for value in vars(current).values():
            values = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple)) else [value])
            held += [item for item in values if isinstance(item, keras.layers.Layer)]
        for item in held:
            if id(item) not in found and item is not layer:
                found[id(item)] = item
                todo.append(item)
    return list(found.values())


def check_training_lowers_loss(model, x, y, steps=6, learning_rate=0.05):
    """Several SGD steps on one fixed batch lower the loss (dropout off for
    them: over six steps its masks move the loss more than learning does)."""
    dropouts = [layer for layer in nested_layers(model)
                if isinstance(layer, keras.layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    for layer in dropouts:
        layer.rate = 0.0
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss="binary_crossentropy")
    try:
        losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses
    return losses


def check_mixed_precision(build, x, **kwargs):
    """Under mixed_bfloat16 a tiny model builds and outputs float32."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build(**kwargs)
        assert model.get_layer("embedding").compute_dtype == "bfloat16"
        assert model.output.dtype == "float32"
        y = model.predict(x, verbose=0)
        assert y.dtype == np.float32 and np.all(np.isfinite(y))
    finally:
        keras.mixed_precision.set_global_policy(previous)


def logmel_batch(frames, n_mels=16, tags=5, batch=4, seed=0):
    """A fixed (x, y) batch for a log-mel-input model: x (batch, frames,
    n_mels) standard normal, y a fixed 0/1 pattern (batch, tags)."""
    x = np.random.default_rng(seed).standard_normal((batch, frames, n_mels))
    return x.astype("float32"), fixed_labels(batch, tags)


def fixed_labels(batch=4, tags=5):
    """(batch, tags) float32 0/1: every third entry set."""
    return (np.arange(batch * tags).reshape(batch, tags) % 3 == 0).astype("float32")


def check_trains_saves_and_loads(model, x, y, tmp_path):
    """Output shape, one short training lowers the loss, .keras/.hdf5 round trips."""
    from tests.checks import check_saved_model

    assert model.predict(x, verbose=0).shape == y.shape
    check_training_lowers_loss(model, x, y)
    check_saved_model(model, x, tmp_path)


def check_tiny_waveform_tagger(model, segments, tmp_path):
    """A tiny waveform-input tagger with 5 tags, on four fixed windows of
    `segments` segments: one step changes the weights, then as
    `check_trains_saves_and_loads`."""
    from tests.checks import check_training_step

    x, y = waveforms(4, segments), fixed_labels()
    check_training_step(model, x, y)
    check_trains_saves_and_loads(model, x, y, tmp_path)


def check_train_reads_16_khz_records(family, segment_length):
    """train.py takes `family` on raw records of its own segment length at
    16 kHz (one segment a window), and names the build flags it needs for
    records of another length."""
    import pytest

    from tagger.config import TrainConfig
    from tagger.errors import UserError
    from tagger.training import model_setup
    from tests.checks import records_info

    info = records_info([f"t{i}" for i in range(50)], 16000, segment_length)
    assert model_setup.model_arguments(TrainConfig(model=family), info, 1) == {
        "num_tags": 50, "input_kind": "raw", "segments": 1, "sample_rate": 16000}
    with pytest.raises(UserError, match=f"--segment-length {segment_length} "
                                        "--sample-rate 16000"):
        model_setup.model_arguments(TrainConfig(model=family),
                                    dataclasses.replace(info, segment_length=59049), 1)
