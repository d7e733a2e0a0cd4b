"""The keras and xla engines: a saved tagger as one compiled call, raw
windows -> tag scores (+ embeddings)."""

from __future__ import annotations

import numpy as np

from tagger.errors import UserError
from tagger.inference.engine.predictor import Predictor
from tagger.models.tagger_metadata import TaggerMetadata

OUTPUT_LAYER = "tags"


def embedding_layer_name(model, info: TaggerMetadata | None = None) -> str:
    """The name of the layer whose output is the model's embedding, the
    one every reader of a tagger's embedding takes (tag.py --embeddings,
    tagger-similar, the beets plugin's --suggest, train.py --from's head):
    a tagger on several bodies' (train.py --from A --from B) their joined
    embedding (`JOINED_EMBEDDING`); else its family's
    (`FamilySpec.embedding_layer`, the family named in `info`), or for a
    model without one, the one embedding layer of any family that it has."""
    from tagger.models import FAMILIES, FAMILY_NAMES
    from tagger.models.saved import JOINED_EMBEDDING

    names = {layer.name for layer in model.layers}
    if JOINED_EMBEDDING in names:
        return JOINED_EMBEDDING
    model_family = info.model if info else None
    if model_family in FAMILY_NAMES:
        candidates = [FAMILIES[model_family].embedding_layer]
    else:
        candidates = sorted({spec.embedding_layer for spec in FAMILIES.values()})
    found = [name for name in candidates if name in names]
    if len(found) == 1:
        return found[0]
    raise UserError(
        f"the model has no penultimate layer named {' or '.join(candidates)}; "
        "--embeddings needs a model built by this project")


def chosen_layer(model, name: str) -> str:
    """`name`, a layer of `model` whose output is one vector per window
    (batch, dim); a UserError naming such layers otherwise."""
    def per_window_vector(layer) -> bool:
        try:
            return len(layer.output.shape) == 2 and layer.name != OUTPUT_LAYER
        except (AttributeError, ValueError):  # several outputs or uses
            return False

    vectors = [layer.name for layer in model.layers if per_window_vector(layer)]
    if name not in vectors:
        raise UserError(f"--embedding-layer {name!r} is not a layer of this model with one "
                        f"vector per window; it has {', '.join(vectors[-6:]) or 'none'}")
    return name


class KerasPredictor(Predictor):
    """A `Predictor` (engine/predictor.py) of a saved tagger: Keras on
    TensorFlow, or on JAX when that is the backend (its call compiled by JAX,
    the model as it was built).

    Log-mel-input models get their `LogMel` front end in front
    (`raw_audio_input`), so every model takes the same raw windows. The
    model runs in its inference form (`tagger.models.inference_graph`: the
    same scores and embeddings, its convolutions in faster forms). The
    call is one `tf.function` (traced once per batch shape; a last, smaller
    batch adds a second trace), not `model.predict`, whose per-call set-up
    would cost more than a small batch's inference.

    `jit_compile=True` (tag.py `--engine xla`) compiles the call with XLA,
    which fuses each convolution with its batch norm and activation
    (whether it pays: docs/performance.md, "The default engine"). Every
    batch is then padded to the largest size seen, so a last, smaller batch
    reuses the compiled program instead of compiling another.
    """

    def __init__(self, model, info: TaggerMetadata | None, embeddings: bool = False,
                 jit_compile: bool = False, embedding_layer: str | None = None):
        import keras

        from tagger import backends
        from tagger.models.saved import raw_audio_input, tag_names_of, window_grid

        self.sample_rate, self.window_samples, to_model_input = raw_audio_input(model, info)
        self.hop_samples, self.edge_padding = window_grid(model, info, self.window_samples)
        self.tag_names, self.warning = tag_names_of(model, info)
        outputs = {"scores": model.outputs[0]}
        self.embedding_layer = None
        if embeddings:
            self.embedding_layer = (chosen_layer(model, embedding_layer) if embedding_layer
                                    else embedding_layer_name(model, info))
            outputs["embeddings"] = model.get_layer(self.embedding_layer).output
        core = keras.Model(model.inputs, outputs)
        tensorflow = backends.current() == "tensorflow"
        if tensorflow:
            from tagger.models.inference_graph import inference_model

            core = inference_model(core)
        waveform = keras.Input((self.window_samples,), name="waveform")  # (batch, samples)
        self.model = keras.Model(waveform, core(to_model_input(waveform)))
        self.embedding_dim = (int(outputs["embeddings"].shape[-1]) if embeddings
                              else None)
        self.jit_compile = bool(jit_compile) or not tensorflow  # JAX compiles every call
        self._padded_batch = 0
        if tensorflow:
            import tensorflow as tf

            self._call = tf.function(lambda x: self.model(x, training=False),
                                     reduce_retracing=True,
                                     jit_compile=self.jit_compile or None)
        else:
            from tagger.models.jax_call import jitted_call

            self._call = jitted_call(self.model)

    def __call__(self, windows: np.ndarray):
        windows = np.asarray(windows, np.float32)  # (batch, window_samples)
        count = len(windows)
        if self.jit_compile:
            self._padded_batch = max(self._padded_batch, count)
            if count < self._padded_batch:
                padding = np.zeros((self._padded_batch - count, windows.shape[1]), np.float32)
                windows = np.concatenate([windows, padding])
        outputs = self._call(windows)
        scores = np.asarray(outputs["scores"], np.float32)[:count]
        embeddings = (np.asarray(outputs["embeddings"], np.float32)[:count]
                      if self.embedding_layer else None)
        return scores, embeddings


def make_predictor(model, info: TaggerMetadata | None, options, jit_compile: bool = False):
    """The factory of the keras engine (`jit_compile`: the xla engine;
    under JAX, which compiles the keras engine's every call with XLA, the
    keras engine itself, said in its note)."""
    from tagger import backends

    predictor = KerasPredictor(model, info, embeddings=options.embeddings,
                               embedding_layer=options.embedding_layer, jit_compile=jit_compile)
    if jit_compile and backends.current() != "tensorflow":
        predictor.same_as_keras = True
        predictor.note = (f"--engine xla: under {backends.current()}, the keras engine is "
                          "compiled by XLA already; they are one engine here")
    return predictor
