"""The tagger train.py --from makes: a trained model's body (its layers up
to its embedding layer) and a new head that scores the records' tags.

    body inputs -> ... -> embedding                  (the body, as saved)
      -> tag_head_hidden: Dense(units, relu)          (none for a linear head)
      -> tag_head_dropout: dropout 0.5
      -> tags: Dense(tags, sigmoid)                   (batch, tags)

One flat Keras model, saved as any tagger (`models.saved.save_tagger`), its
output layer named `tags` as every family's; `head_of` is the same layers
as a model of embeddings, which the head trains as on stored embeddings.

On several bodies of one rate and window (train.py --from A --from B), the
first body's layers stay as they are, each further body up to its
embedding is one nested model on the same input (`body_2`, `body_3`...),
and the head reads their embeddings joined:

    concatenate(embedding, body_2, ...) -> bodies_embedding -> the head
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.info import DatasetInfo

HIDDEN = "tag_head_hidden"
DROPOUT = "tag_head_dropout"
JOINED = "bodies_embedding"  # the bodies' embeddings side by side (several bodies)
OUTPUT = "tags"
DROPOUT_RATE = 0.5
FEW_FILES = 5  # a tag with fewer labelled training files is named in a warning


def attach_head(body, embedding_layer: str, num_tags: int, units: int, others=()):
    """The tagger of `num_tags` tags on `body` (a loaded Keras tagger): its
    layers up to `embedding_layer`, then the head (module docstring; `units`
    0: the output layer on the embedding itself). `others`: (loaded tagger,
    its embedding layer) of more bodies on the same input, whose embeddings
    join the first's."""
    import keras

    from tagger.layers import PhiloxDropout

    x = body.get_layer(embedding_layer).output  # (batch, dim)
    if others:
        parts = [x] + [keras.Model(model.inputs[0], model.get_layer(layer).output,
                                   name=f"body_{i}")(body.inputs[0])
                       for i, (model, layer) in enumerate(others, start=2)]
        x = keras.layers.Concatenate(name=JOINED)(parts)  # (batch, dims of every body)
    if units:
        x = keras.layers.Dense(units, activation="relu", name=HIDDEN)(x)
    x = PhiloxDropout(DROPOUT_RATE, name=DROPOUT)(x)
    scores = keras.layers.Dense(num_tags, activation="sigmoid", name=OUTPUT,
                                dtype="float32")(x)  # (batch, tags)
    return keras.Model(body.inputs, scores, name=f"{body.name}_tagger")


def head_of(tagger, embedding_layer: str):
    """The layers of `tagger` after `embedding_layer` (after the bodies'
    joined embeddings, on several bodies), as a model of (batch, dim)
    embeddings -> (batch, tags) scores sharing its weights."""
    import keras

    names = {layer.name for layer in tagger.layers}
    start = JOINED if JOINED in names else embedding_layer
    return keras.Model(tagger.get_layer(start).output, tagger.outputs[0])


def freeze_normalisation(model) -> None:
    """Batch normalisation keeps its statistics and weights while the rest
    fine-tunes: a few labelled files are too few to estimate them anew."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def tagger_metadata(body, info: DatasetInfo, units: int, fine_tuned: bool,
                    others=()) -> TaggerMetadata:
    """The body's metadata (its input, window and front end, family and
    licence) with the records' tags, the training data's origin and, in
    `base_model`, what the tagger came from; `others`: more bodies (Body),
    named in `base_model`'s `also`, their licences after the first's."""
    base = body.info
    licences = list(dict.fromkeys(b.info.licence for b in (body, *others) if b.info.licence))
    also = {"also": [described(other) for other in others]} if others else {}
    return dataclasses.replace(
        base, tag_names=tuple(info.tag_names),
        model_args={**base.model_args, "num_tags": info.num_tags},
        origin=dict(info.origin), converted_from=None, dataset=None, size=None,
        licence="\n\n".join(licences) or None,
        base_model={**described(body), "head_units": units, "fine_tuned": fine_tuned, **also})


def described(body) -> dict:
    """A body's name, file, SHA-256, embedding layer and tags, as metadata keeps them."""
    return {"name": body.name, "file": os.path.basename(body.path), "sha256": body.fingerprint,
            "embedding_layer": body.embedding_layer, "tag_names": list(body.info.tag_names)}


def check_tag_counts(labels: np.ndarray, tag_names, log=print) -> None:
    """A UserError naming the tags no training file has; one warning line
    naming those that fewer than `FEW_FILES` training files have.
    `labels`: (training clips, tags) 0/1."""
    counts = np.asarray(labels).sum(axis=0).astype(int)
    missing = [t for t, c in zip(tag_names, counts) if c == 0]
    if missing:
        raise UserError(f"no training file has the tag(s) {', '.join(missing)}, so they "
                        "cannot be learnt: label some files with them or leave them out of "
                        "the labels, and build the records again")
    few = [f"{t} ({c})" for t, c in zip(tag_names, counts) if c < FEW_FILES]
    if few:
        log(f"warning: fewer than {FEW_FILES} labelled training files for "
            f"{', '.join(few)}: their scores rest on too few examples to trust; label more "
            "files with them")
