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
tagger reads the window's audio; the first body's layers stay as they are
where it reads the waveform, each further body up to its embedding is one
nested model on the same input (`body_2`, `body_3`...), a body that reads
log-mel frames (trained on `--features logmel` records) computes them from
the waveform in a front end of its own (`body_2_log_mel`; a first such
body is `body_1` behind `body_1_log_mel`), and the head reads their
embeddings joined, the tagger's embedding:

    concatenate(embedding, body_2, ...) -> bodies_embedding -> the head

by default a head per body (`combine` "average": each reads its body's
values of the joined embedding, `body_<i>_values`, and has the layers
above, suffixed `_<i>`: `tag_head_hidden_1`, ..., `tags_1`), the tagger's
scores their mean (`tags`: an Average layer); with "join", one head on
the whole joined embedding. `heads_of` gives the heads' scores side by
side (batch, heads x tags), what each head trains on with its own loss.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tagger.errors import UserError
from tagger.models.saved import JOINED_EMBEDDING as JOINED  # several bodies' embeddings
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.info import DatasetInfo

HIDDEN = "tag_head_hidden"
DROPOUT = "tag_head_dropout"
OUTPUT = "tags"
DROPOUT_RATE = 0.5
FEW_FILES = 5  # a tag with fewer labelled training files is named in a warning


def attach_head(bodies, num_tags: int, units: int, combine: str):
    """The tagger of `num_tags` tags on `bodies`, each (a loaded Keras
    tagger, its TaggerMetadata, its embedding layer), the first first: their
    layers up to their embeddings, joined on several (`joined_bodies`), then
    the head, or with `combine` "average" a head per body, their scores
    averaged (module docstring; `units` 0: the output layer on the
    embedding itself)."""
    import keras

    if len(bodies) == 1:
        model, _, layer = bodies[0]
        inputs, x = model.inputs, model.get_layer(layer).output  # (batch, dim)
        return keras.Model(inputs, head(x, num_tags, units), name=f"{model.name}_tagger")
    inputs, parts = joined_bodies(bodies)
    x = keras.layers.Concatenate(name=JOINED)(parts)  # (batch, dims of every body)
    if combine == "join":
        scores = head(x, num_tags, units)
    else:
        ends = np.cumsum([0] + [int(part.shape[-1]) for part in parts])
        scores = keras.layers.Average(name=OUTPUT, dtype="float32")([
            head(values_of(x, ends[i - 1], ends[i], f"body_{i}_values"), num_tags, units,
                 suffix=f"_{i}") for i in range(1, len(parts) + 1)])
    return keras.Model(inputs, scores, name=f"{bodies[0][0].name}_tagger")


def head(x, num_tags: int, units: int, suffix: str = ""):
    """(batch, dim) embeddings -> (batch, tags) scores: the hidden layer
    (none for `units` 0), dropout and the sigmoid output, their names
    ending in `suffix`."""
    import keras

    from tagger.layers import PhiloxDropout

    if units:
        x = keras.layers.Dense(units, activation="relu", name=HIDDEN + suffix)(x)
    x = PhiloxDropout(DROPOUT_RATE, name=DROPOUT + suffix)(x)
    return keras.layers.Dense(num_tags, activation="sigmoid", name=OUTPUT + suffix,
                              dtype="float32")(x)  # (batch, tags)


def values_of(x, start: int, stop: int, name: str):
    """(batch, dim) -> (batch, stop - start): values start to stop of each
    row, in Keras's own layers (a file of them loads wherever Keras does)."""
    import keras

    dim = int(x.shape[-1])
    x = keras.layers.Reshape((dim, 1), name=f"{name}_column")(x)
    x = keras.layers.Cropping1D((start, dim - stop), name=f"{name}_cropped")(x)
    return keras.layers.Reshape((stop - start,), name=name)(x)


def joined_bodies(bodies) -> tuple:
    """(input, [(batch, dim) embedding of each body]) of several bodies on
    one window of audio: the first body's own input and layers where it
    reads the waveform, else a `waveform` input. A body that reads log-mel
    frames gets them from a front end of its own (`body_<i>_log_mel`, its
    info's settings: what `models.saved.raw_audio_input` computes for it
    alone, so each body sees the features its embeddings were taken
    from); every body but a first that reads the waveform is one nested
    model up to its embedding (`body_<i>`)."""
    import keras

    from tagger.models.saved import log_mel_front_end, raw_audio_input, reads_waveform

    first, first_info, first_layer = bodies[0]
    if reads_waveform(first):
        waveform, parts = first.inputs[0], [first.get_layer(first_layer).output]
    else:
        window = raw_audio_input(first, first_info)[1]
        waveform, parts = keras.Input((window,), name="waveform"), []  # (batch, samples)
    for i, (model, info, layer) in enumerate(bodies[len(parts):], start=len(parts) + 1):
        x = waveform
        if not reads_waveform(model):
            x = log_mel_front_end(info, name=f"body_{i}_log_mel",
                                  dtype="float32")(x)  # (batch, frames, mels)
        parts.append(keras.Model(model.inputs[0], model.get_layer(layer).output,
                                 name=f"body_{i}")(x))
    return waveform, parts


def head_of(tagger, info):
    """The layers of `tagger` (its TaggerMetadata `info`) after its embedding
    (`embedding_layer_name`: the bodies' joined embeddings, on several
    bodies), as a model of (batch, dim) embeddings -> (batch, tags) scores
    sharing its weights."""
    import keras

    from tagger.inference.engine.keras import embedding_layer_name

    start = embedding_layer_name(tagger, info)
    return keras.Model(tagger.get_layer(start).output, tagger.outputs[0])


def heads_of(tagger, info):
    """`head_of(tagger, info)`, but on a tagger whose heads are averaged
    (`attach_head`'s "average") each head's scores side by side: (batch,
    dim) -> (batch, heads x tags), each head trained on its own loss
    against the tags repeated once a head (as heads trained apart on the
    same batches)."""
    import keras

    from tagger.inference.engine.keras import embedding_layer_name

    outputs = head_outputs(tagger)
    if not outputs:
        return head_of(tagger, info)
    start = tagger.get_layer(embedding_layer_name(tagger, info)).output
    return keras.Model(start, keras.layers.Concatenate(name="heads_side_by_side")(
        [tagger.get_layer(name).output for name in outputs]))


def head_outputs(tagger) -> list:
    """The output layers (`tags_1`, ...) of the heads a tagger averages;
    none for a tagger of one head."""
    return [layer.name for layer in tagger.layers if layer.name.startswith(OUTPUT + "_")
            and layer.name[len(OUTPUT) + 1:].isdigit()]


def freeze_normalisation(model) -> None:
    """Batch normalisation keeps its statistics and weights while the rest
    fine-tunes: a few labelled files are too few to estimate them anew."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def tagger_metadata(body, info: DatasetInfo, units: int, fine_tuned: bool,
                    others=(), combine: str = "join") -> TaggerMetadata:
    """The body's metadata (its input, window and front end, family and
    licence) with the records' tags, the training data's origin and, in
    `base_model`, what the tagger came from; `others`: more bodies (Body),
    named in `base_model`'s `also`, their licences after the first's, the
    tagger then reading the waveform (`joined_bodies`), and how their
    scores combine (`combine_bodies`: "average" or "join")."""
    base = dataclasses.replace(body.info, input_kind="raw") if others else body.info
    licences = list(dict.fromkeys(b.info.licence for b in (body, *others) if b.info.licence))
    also = {"also": [described(other) for other in others],
            "combine_bodies": combine} if others else {}
    return dataclasses.replace(
        base, tag_names=tuple(info.tag_names),
        model_args={**base.model_args, "num_tags": info.num_tags},
        origin=dict(info.origin), converted_from=None, dataset=None, size=None,
        licence="\n\n".join(licences) or None,
        base_model={**described(body), "head_units": units, "fine_tuned": fine_tuned, **also})


def described(body) -> dict:
    """A body's name, file, SHA-256, family, embedding layer and tags, as
    metadata keeps them."""
    return {"name": body.name, "file": os.path.basename(body.path), "sha256": body.fingerprint,
            "model": body.info.model, "embedding_layer": body.embedding_layer,
            "tag_names": list(body.info.tag_names)}


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
