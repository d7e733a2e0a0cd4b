"""The keras-bf16 engine: the keras engine's predictor of the model rebuilt
under Keras's `mixed_bfloat16` dtype policy, its float32 weights loaded.

Every layer computes in bfloat16 (its weights kept float32, cast at each
call) except the front end (`LogMel`, `HarmonicSTFT`: the spectrogram's
powers and logarithm need float32's range and resolution; a model trained
on log-mel records gets its front end from the keras engine, float32,
outside the model) and the layer that gives the tag scores, which
computes in float32 from the bfloat16 activations it reads: the sigmoid's
scores keep float32's resolution. Embeddings come from a bfloat16 layer:
about three significant digits.

It is an engine of its own, not a choice the keras engine makes: --engine
keras gives float32's exact scores on every machine, and bfloat16 pays
only on CPUs with bfloat16 units (AMX-BF16, AVX-512 BF16) and GPUs with
bfloat16 tensor cores: on MTT_musicnn and recorded music it scored windows
faster than the keras engine and kept nearly all of their top-5 tags
(measured: docs/performance.md, "Tagging in bfloat16"). On a CPU or GPU without
them it runs, slower than float32, and says so in one line.
"""

from __future__ import annotations

from tagger import cpu_features
from tagger.inference.engine.keras import KerasPredictor
from tagger.models.tagger_metadata import TaggerMetadata

POLICY = "mixed_bfloat16"


def bfloat16_model(model):
    """A copy of the functional or Sequential `model` whose layers compute in
    bfloat16, but for its front end and the layer giving its first output
    (float32), with `model`'s weights (float32 variables)."""
    import keras

    from tagger.layers import HarmonicSTFT, LogMel
    from tagger.models.layer_graph import output_layer

    scores_layer = output_layer(model)

    def rebuilt(layer):
        config = layer.get_config()
        float32 = layer is scores_layer or isinstance(layer, (LogMel, HarmonicSTFT))
        config["dtype"] = "float32" if float32 else POLICY
        return layer.__class__.from_config(config)

    # the layers a layer makes inside (a transformer block's) take the global policy
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICY)
    try:
        copy = keras.models.clone_model(model, clone_function=rebuilt, recursive=True)
    finally:
        keras.config.set_dtype_policy(before)
    copy.set_weights(model.get_weights())
    return copy


def precision_line(gpu_capability: tuple | None) -> tuple[str | None, str | None]:
    """(note, warning) of a run in bfloat16 on the GPU of compute capability
    `gpu_capability` (`cpu_features.gpu_capability()`: None where the run
    is on this CPU): what makes it fast, or why it will be slower than
    float32 and what to use instead."""
    fast, why = cpu_features.bfloat16_verdict(gpu_capability)
    if fast:
        return (f"--engine keras-bf16: the model in mixed bfloat16 ({why}; the front end "
                "and the tag scores float32; --engine keras gives float32's exact scores)"), None
    return None, (f"--engine keras-bf16 will be slower than float32 here: {why}; use "
                  "--engine keras, or --engine tflite-int8 for speed")


def make_predictor(model, info: TaggerMetadata | None, options):
    """The factory of the keras-bf16 engine."""
    predictor = KerasPredictor(bfloat16_model(model), info, embeddings=options.embeddings,
                               embedding_layer=options.embedding_layer)
    note, warning = precision_line(cpu_features.gpu_capability())
    predictor.note = note or ""
    predictor.warning = "; ".join(line for line in (predictor.warning, warning) if line) or None
    return predictor
