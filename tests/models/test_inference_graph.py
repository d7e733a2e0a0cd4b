"""inference_model: a trained tagger rewritten for inference gives its
scores and embeddings, sharing its weights."""

import keras
import numpy as np
import pytest

from tagger.models import build_model
from tagger.models.inference_graph import image_convolutions, inference_model
from tests.models.common import waveforms
from tests.models.test_pons import TINY_MUSICNN, TINY_VGG


def trained_like(model, seed=0):
    """`model` with random weights and batch-norm statistics, about half
    the batch-norm scales negative (as in MTT_musicnn's front end)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = weights
            weights = [rng.uniform(-1.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                       rng.normal(0, 0.5, mean.shape), rng.uniform(0.3, 2.0, variance.shape)]
        else:
            weights = [rng.normal(0, 0.3, w.shape) for w in weights]
        layer.set_weights([w.astype("float32") for w in weights])
    return model


MUSICNN_BLOCKS = ("timbral1", "timbral2", "temporal1", "temporal2", "temporal3")


@pytest.mark.parametrize("family, args, rewritten, batch_norms", [
    ("pons_musicnn", TINY_MUSICNN,
     {"timbral1_conv": "taps", "timbral2_conv": "taps", "temporal1_conv": "polyphase",
      "temporal2_conv": "polyphase", "temporal3_conv": "polyphase"},
     [f"{block}_bn" for block in MUSICNN_BLOCKS]),
    ("pons_vgg", TINY_VGG, {"conv1": "taps", "conv2": "conv", "conv5": "conv"},
     [f"conv{i}_bn" for i in range(1, 6)]),
])
def test_rewritten_model_gives_the_scores_and_embeddings(family, args, rewritten, batch_norms):
    model = trained_like(build_model(family, num_tags=5, **args))
    core = keras.Model(model.input, {"scores": model.output,
                                      "embeddings": model.get_layer("embedding").output})
    fast = inference_model(core)
    x = waveforms(3, 1, seed=4)
    expected, got = core(x), fast(x)
    for key in ("scores", "embeddings"):
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]),
                                   atol=1e-5, rtol=1e-5, err_msg=key)
    forms = {layer.name.removesuffix("_inference"): layer.form for layer in fast.layers
             if layer.name.endswith("_inference")}
    assert {name: forms.get(name) for name in rewritten} == rewritten
    assert set(image_convolutions(fast)) == {f"{name}_inference" for name, form in forms.items()
                                             if form != "conv"}  # what int8 quantises
    pooled = {layer.name for layer in fast.layers if layer.name.endswith("_pooled")}
    assert pooled == {f"{name}_pooled" for name in batch_norms}  # every conv, BN, pool chain
    assert len(fast.weights) == len(core.weights)  # shared, not copied
    assert {id(w) for w in fast.weights} == {id(w) for w in core.weights}


def test_a_model_without_such_convolutions_is_returned_as_it_is():
    model = build_model("samplecnn", num_tags=5, block="basic", width=1 / 16, alpha=2,
                        input_length=3 ** 7)
    assert inference_model(model) is model
