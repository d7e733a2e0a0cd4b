"""Squeeze-and-excitation analysis of sample-level CNNs (Kim, Lee, Nam 2018, section 5).

For every clip of a split and every SE block, the excitation vector (the
sigmoid output of `block{i}_se_excite`, `(C_i,)`) averaged over the clip's
windows. The result is a pandas DataFrame with one row per (clip, depth):

    clip_id  depth  ex                      <tag 1> ... <tag n>
    int64    0..n-1 np.ndarray float32 (C)  0/1 int8 per tag

as in tae-jun/resemul's `extract_excitations.py` (which had the columns
`ex`, `depth` and the 50 tags; `clip_id` is added here so rows can be
traced back to clips). Depth 0 is the block nearest the input; a model
with fewer than nine blocks has fewer depths (`num_blocks_for`).

The analysis helpers reproduce the paper's figures from that table:
`tag_excitations` (the mean excitation of each tag at one depth, over the
clips carrying the tag), `tag_spread` (per depth, the channel mean of the
standard deviation across tags: how tag-specific a depth is).
"""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import pandas as pd

from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.info import DatasetInfo

EXCITE_LAYER = re.compile(r"^block(\d+)_se_excite$")
BASE_COLUMNS = ("clip_id", "depth", "ex")
# The paper compares classical, metal and dance at the first block; each
# group falls back to a neighbour genre when its first choice is missing.
COMPARE_GROUPS = (("classical",), ("metal", "rock"), ("dance", "techno"))


def excite_layer_names(model, model_info: TaggerMetadata | None = None) -> list[str]:
    """Names of the SE excitation layers, depth 0 (input side) first.

    A model without any is a UserError naming what the model is."""
    found = sorted((int(m.group(1)), layer.name) for layer in model.layers
                   if (m := EXCITE_LAYER.match(layer.name)))
    if not found:
        raise UserError(f"model {model.name!r} has no SE blocks ({_describe(model, model_info)}):"
                        " excitations need a sample-level CNN trained with --block se or "
                        "--block rese")
    return [name for _, name in found]


def excitation_model(model, model_info: TaggerMetadata | None = None):
    """A model with `model`'s input whose outputs are every SE block's
    excitation `(batch, C_i)`, depth order: one pass gives them all."""
    import keras

    names = excite_layer_names(model, model_info)
    outputs = [model.get_layer(name).output for name in names]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_excitations")


def extract_excitations(model, data_dir: str, split: str = "test", batch_size: int = 32,
                        info: DatasetInfo | None = None, model_info: TaggerMetadata | None = None,
                        progress: bool = False) -> pd.DataFrame:
    """The excitation table of `split` (see the module docstring).

    Windows are read as for evaluation (`records.batches.eval_batches`:
    every window of every clip, NumPy batches of one size, the last padded;
    tf.data or the TensorFlow-free reader), passed once through
    `excitation_model` (compiled by the backend: `compiled_outputs`), and
    summed per clip; each clip's sum is divided by its window count.
    """
    from tqdm import tqdm

    from tagger.records import batches
    from tagger.records.info import load_info, require_labelled
    from tagger.records.model_fit import window_segments_for

    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {batch_size!r}")
    info = info or load_info(data_dir)
    extractor = excitation_model(model, model_info)
    window = window_segments_for(model, model_info, info)
    tag_names = list(info.tag_names)
    clash = sorted(set(tag_names) & set(BASE_COLUMNS))
    if clash:
        raise UserError(f"the dataset has tags named {clash}, which the excitation table "
                        f"uses as column names {list(BASE_COLUMNS)}")
    require_labelled(info, split)
    clip_ids, labels = batches.clip_labels(data_dir, split, info)
    channels = [int(out.shape[-1]) for out in extractor.outputs]
    sums = [np.zeros((len(clip_ids), c), np.float64) for c in channels]
    counts = np.zeros(len(clip_ids), np.int64)
    step = compiled_outputs(extractor)

    data = batches.eval_batches(data_dir, split, window, batch_size, info)
    with batches.shard_errors(data_dir, split, info), \
            tqdm(total=len(clip_ids), desc=f"excitations {split}", unit="clip",
                 disable=not progress) as bar:
        for x, clips in data:
            index = np.asarray(clips["clip"])
            read = index >= 0  # the last batch's padding: -1
            for total, ex in zip(sums, step(x)):
                np.add.at(total, index[read], np.asarray(ex)[read])
            np.add.at(counts, index[read], 1)
            if read.any():
                bar.update(int(index[read].max()) + 1 - bar.n)  # windows come in clip order
        bar.update(len(clip_ids) - bar.n)
    if len(clip_ids) == 0 or counts.min() == 0:
        raise UserError(f"the {split} split of {data_dir!r} holds no clips to analyse"
                        if len(clip_ids) == 0 else
                        f"{int((counts == 0).sum())} clip(s) of {split} gave no windows")
    return excitation_table(clip_ids, [s / counts[:, None] for s in sums], labels, tag_names)


def compiled_outputs(model):
    """`call(x) -> [float32 NumPy (batch, C) per output]`: `model`'s inference
    call on NumPy batches, compiled by the backend Keras runs on (a
    tf.function under TensorFlow, jax.jit under JAX)."""
    from tagger import backends

    if backends.current() != "tensorflow":
        from tagger.models.jax_call import jitted_call

        return jitted_call(model)
    import tensorflow as tf

    signature = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[signature])
    def step(x):
        return [tf.cast(e, tf.float32) for e in model(x, training=False)]

    return lambda x: [e.numpy() for e in step(x)]


def excitation_table(clip_ids, excitations, labels, tag_names) -> pd.DataFrame:
    """Rows (clip, depth) from per-depth arrays `excitations[d]` `(clips, C_d)`,
    multi-hot `labels` `(clips, tags)` and the tag names."""
    depths = len(excitations)
    clips = len(clip_ids)
    ex = [np.asarray(excitations[d][c], np.float32) for c in range(clips) for d in range(depths)]
    table = pd.DataFrame({
        "clip_id": np.repeat(np.asarray(clip_ids, np.int64), depths),
        "depth": np.tile(np.arange(depths, dtype=np.int64), clips),
        "ex": pd.Series(ex, dtype=object),
    })
    tags = pd.DataFrame(np.repeat(np.asarray(labels) > 0.5, depths, axis=0).astype(np.int8),
                        columns=list(tag_names))
    return pd.concat([table, tags], axis=1)


def tag_columns(table: pd.DataFrame) -> list[str]:
    """The tag columns of an excitation table, in order."""
    return [c for c in table.columns if c not in BASE_COLUMNS]


def depths_of(table: pd.DataFrame) -> list[int]:
    return sorted(int(d) for d in table["depth"].unique())


def present_tags(table: pd.DataFrame) -> list[str]:
    """Tags with at least one positive clip in the table."""
    first = table[table["depth"] == depths_of(table)[0]]
    return [tag for tag in tag_columns(table) if first[tag].sum() > 0]


def tag_excitations(table: pd.DataFrame, depth: int, tags=None) -> pd.DataFrame:
    """Mean excitation of each tag at `depth`: rows are tags (default: every
    tag with a positive clip), columns channels; the mean is over the clips
    carrying the tag (resemul's analysis)."""
    check_depths(table, [depth])
    tags = list(tags) if tags is not None else present_tags(table)
    check_tags(table, tags)
    at_depth = table[table["depth"] == depth]
    rows = [np.mean(np.stack(at_depth.loc[at_depth[tag] == 1, "ex"].to_list()), axis=0)
            for tag in tags]
    return pd.DataFrame(np.stack(rows), index=pd.Index(tags, name="tag"))


def channel_order(means: pd.DataFrame) -> np.ndarray:
    """Channels sorted by their mean over the tags (ascending), as in the paper."""
    return np.argsort(means.to_numpy().mean(axis=0), kind="stable")


def tag_spread(table: pd.DataFrame, tags=None) -> pd.Series:
    """Per depth, the mean over channels of the standard deviation of the
    tags' mean excitations: high where excitations depend on the tag."""
    return pd.Series({depth: float(tag_excitations(table, depth, tags).to_numpy()
                                   .std(axis=0).mean())
                      for depth in depths_of(table)}, name="spread").rename_axis("depth")


def default_depths(table: pd.DataFrame) -> list[int]:
    """First, middle and last depth (0, 4, 8 for nine blocks)."""
    depths = depths_of(table)
    return sorted({depths[0], depths[(len(depths) - 1) // 2], depths[-1]})


def default_compare_tags(table: pd.DataFrame) -> list[str]:
    """classical, metal (else rock), dance (else techno): those present."""
    present = set(present_tags(table))
    chosen = []
    for group in COMPARE_GROUPS:
        found = next((tag for tag in group if tag in present), None)
        if found:
            chosen.append(found)
    return chosen


def check_depths(table: pd.DataFrame, depths) -> None:
    valid = depths_of(table)
    wrong = [d for d in depths if d not in valid]
    if wrong:
        raise UserError(f"depth(s) {wrong} not in the table; the model has SE blocks at "
                        f"depths {valid[0]}..{valid[-1]}")


def check_tags(table: pd.DataFrame, tags) -> None:
    names = tag_columns(table)
    unknown = [t for t in tags if t not in names]
    if unknown:
        raise UserError(f"unknown tag(s) {unknown}; the table's tags are: {', '.join(names)}")
    present = set(present_tags(table))
    empty = [t for t in tags if t not in present]
    if empty:
        raise UserError(f"tag(s) {empty} have no positive clip in the table; choose from: "
                        f"{', '.join(sorted(present))}")
    if not tags:
        raise UserError("no tags to show: the table has no positive clip for any tag")


def save_table(table: pd.DataFrame, path: str) -> None:
    """Pickles the table (atomically; local or gs:// paths)."""
    from tagger import destination

    buffer = io.BytesIO()
    pickle.dump(table, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    destination.write_output(path, buffer.getvalue(), "--out")


def load_table(path: str) -> pd.DataFrame:
    """Reads a table written by `save_table`: a pickle that names anything
    but a DataFrame of numbers and arrays is refused (tagger.safe_pickle)."""
    from tagger import fileio, safe_pickle

    if not fileio.exists(path):
        raise UserError(f"excitation table {path!r} not found; write one with "
                        "python extract_excitations.py MODEL --out PATH")
    table = safe_pickle.load_file(path, "an excitation table (a pandas DataFrame)",
                                  safe_pickle.DATAFRAME)
    if not isinstance(table, pd.DataFrame):
        raise UserError(f"{path!r} holds a {type(table).__name__}, not an excitation "
                        "table (a pandas DataFrame)")
    missing = [c for c in BASE_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path!r} is not an excitation table: it lacks {missing}")
    return table


def _describe(model, model_info) -> str:
    """What a model is, for the no-SE error: its block type or family."""
    family = model_info.model if model_info else None
    args = model_info.model_args if model_info else {}
    names = {layer.name for layer in model.layers}
    if family is not None and not _has_blocks(family):
        return f"family {family}"
    if "block" in args:
        return f"block type {args['block']}"
    if "block0_conv1" in names:
        return "block type res"
    if "block0_conv" in names:
        return "block type basic"
    return f"family {family or 'unknown'}"


def _has_blocks(model: str) -> bool:
    """Whether family `model` comes in block types (samplecnn's `--block`)."""
    from tagger.models import FAMILY_NAMES, family

    return model in FAMILY_NAMES and family(model).block({}) is not None
