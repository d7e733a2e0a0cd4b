"""The pace line's timing: the keras engine is timed computing what the
engine computes (scores, and the same embeddings when it gives them)."""

from __future__ import annotations

import numpy as np
import pytest

from tagger.inference.engine.keras import KerasPredictor


@pytest.mark.parametrize("embeddings, layer", [(False, None), (True, None),
                                               (True, "block8_global_max")],
                         ids=["scores", "embeddings", "chosen_layer"])
def test_keras_is_timed_computing_the_engines_outputs(cnn, monkeypatch, embeddings, layer):
    from tagger.inference.engine.keras_pace import pace_against_keras
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    engine = KerasPredictor(model, info, embeddings=embeddings, embedding_layer=layer)
    computed = {"engine": [], "keras": []}  # per call: (its model's outputs, embeddings' shape)
    call = KerasPredictor.__call__

    def spy(self, windows):
        scores, vectors = call(self, windows)
        side = "engine" if self is engine else "keras"
        computed[side].append((tuple(sorted(self.model.output)), None if vectors is None
                               else (vectors.shape, self.embedding_layer)))
        return scores, vectors

    monkeypatch.setattr(KerasPredictor, "__call__", spy)
    pace, windows = pace_against_keras(engine, model, info, batch_size=2, rounds=2)
    assert windows == 2 and np.isfinite(pace) and pace > 0
    assert len(computed["engine"]) == len(computed["keras"]) == 3  # a first call, 2 timed
    outputs = ("embeddings", "scores") if embeddings else ("scores",)
    dim = engine.embedding_dim
    expected = (outputs, ((2, dim), engine.embedding_layer) if embeddings else None)
    assert set(computed["engine"]) == set(computed["keras"]) == {expected}
