"""The layer that carried a tagger's metadata inside the graph in files saved
by earlier versions; kept so those files still load. New files carry the
metadata beside the graph (`tagger.models.saved.save_tagger`)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tagger")
class TaggerInfo(keras.layers.Layer):
    """Identity on the tag scores `(batch, num_tags)` whose config holds `info`,
    a JSON-ready dict (tag_names, sample_rate, segment_length,
    window_segments, input_kind, logmel, model, model_args). Appended to a
    trained model so a saved .keras or .hdf5 file describes itself."""

    def __init__(self, info=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.info = dict(info or {})

    def call(self, scores):
        return scores

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["info"] = self.info
        return config


INFO_LAYER = "tagger_info"


def attach_info(model: keras.Model, info: dict) -> keras.Model:
    """A model computing the same scores, ending in a `TaggerInfo` layer (the
    layout of files saved by earlier versions)."""
    scores = TaggerInfo(info, name=INFO_LAYER)(strip_info(model).outputs[0])
    return keras.Model(model.inputs, scores, name=model.name)


def strip_info(model: keras.Model) -> keras.Model:
    """The same model without a final `TaggerInfo` layer."""
    if INFO_LAYER not in [layer.name for layer in model.layers]:
        return model
    return keras.Model(model.inputs, model.get_layer(INFO_LAYER).input, name=model.name)


def read_info(model: keras.Model) -> dict | None:
    """The info dict of a model made by `attach_info`, or None."""
    for layer in model.layers:
        if isinstance(layer, TaggerInfo):
            return dict(layer.info)
    return None
