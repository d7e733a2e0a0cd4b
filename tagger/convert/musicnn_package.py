"""The musicnn package's trained checkpoints (Pons and Serra, `musicnn`
0.1.0 on the package index, ISC licence) -> `pons_musicnn` / `pons_vgg`.

The wheel `musicnn-0.1.0-py3-none-any.whl` (or the installed package's
folder) holds one TensorFlow 1 checkpoint per model, `musicnn/<MODEL>/`
with the files `.index` and `.data-00000-of-00001` (the prefix is the
folder itself; its `checkpoint` file names the author's machine). They are
copied out to a scratch folder under a plain prefix and read with
`tf.train.load_checkpoint`; no graph of the package's is built or run.

Variable names are those `tf.compat.v1.layers` gave in the order
`musicnn/models.py` creates the layers:

    Musicnn (MTT_musicnn, MSD_musicnn)
    batch_normalization                      -> input_bn
    conv2d, batch_normalization_1            -> timbral1_conv / _bn (7 x 38)
    conv2d_1, batch_normalization_2          -> timbral2_conv / _bn (7 x 67)
    conv2d_2..4, batch_normalization_3..5    -> temporal1..3_conv / _bn (128, 64, 32)
    conv2d_5..7, batch_normalization_6..8    -> midend1..3_conv / _bn
                                                (kernels (7, C, 1, F) -> Conv1D (7, C, F))
    batch_normalization_9                    -> pooled_bn
    dense, batch_normalization_10            -> head_dense / embedding
    dense_1                                  -> tags

    VGG (MTT_vgg, MSD_vgg)
    batch_normalization                      -> input_bn
    1CNN..5CNN, batch_normalization_1..5     -> conv1..5 / conv1..5_bn
    dense                                    -> tags

TensorFlow 1 and Keras share the kernel layouts (HWIO, (in, out)) and the
batch-norm variable names. Skipped on purpose: Adam's slots (`<v>/Adam`,
`<v>/Adam_1`) and `beta1_power` / `beta2_power`, the optimiser's state.
Sizes (filters, units, tags) are read from the shapes. Tags: the
package's `configuration.py` (MTT_LABELS, MSD_LABELS), equal to our
`MTT_TOP50` and `CLASSIC_TAGS`; the file's lists, read as literals and
never run, are checked against them.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import shutil
import tempfile
import zipfile
import zlib

import numpy as np

from tagger.convert.converter import Converter, Option
from tagger.convert.mapping import ConversionError, WeightMap, shape

# the package's model names -> (our family, dataset of its tags)
MODELS = {"MTT_musicnn": ("pons_musicnn", "mtt"), "MSD_musicnn": ("pons_musicnn", "msd"),
          "MTT_vgg": ("pons_vgg", "mtt"), "MSD_vgg": ("pons_vgg", "msd")}
CHECKPOINT_FILES = (".index", ".data-00000-of-00001")
SAMPLE_RATE = 16000
MAX_MEMBER_BYTES = 64 << 20  # the largest checkpoint file is 9.5 MB
_LABELS = {"mtt": "MTT_LABELS", "msd": "MSD_LABELS"}
_OPTIMIZER = ("beta1_power", "beta2_power")
TIMBRAL, TEMPORAL, MIDEND = 2, 3, 3
# the wheel's LICENSE.md (ISC): it goes with every copy, the converted models' info too
ISC_NOTICE = (
    "Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. Code developed by "
    "Jordi Pons (www.jordipons.me). Permission to use, copy, modify, and/or distribute this "
    "software for any purpose with or without fee is hereby granted, provided that the above "
    "copyright notice and this permission notice appear in all copies. THE SOFTWARE IS "
    "PROVIDED \"AS IS\" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE "
    "INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE "
    "AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY "
    "DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF "
    "CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE "
    "USE OR PERFORMANCE OF THIS SOFTWARE.")


def default_tags(dataset: str) -> tuple:
    """The output order of the package's models trained on `dataset`
    (mtt: MagnaTagATune, msd: the Million Song Dataset)."""
    if dataset == "mtt":
        from tagger.datasets.mtt import MTT_TOP50

        return tuple(MTT_TOP50)
    from tagger.datasets.msd.tags import CLASSIC_TAGS

    return tuple(CLASSIC_TAGS)


def member_path(model: str, name: str) -> str:
    """The path of a file of the package inside the wheel (and below the
    folder that holds the installed package)."""
    return f"musicnn/{model}/{name}" if name in CHECKPOINT_FILES else f"musicnn/{name}"


def _package_folder(source: str) -> str | None:
    """The installed package's folder (holding `configuration.py` and the
    model folders) given it or its parent; None if `source` is neither."""
    for folder in (source, os.path.join(source, "musicnn")):
        if os.path.isfile(os.path.join(folder, "configuration.py")):
            return folder
    return None


def _copy_out(source: str, model: str, scratch: str) -> tuple[str, str | None]:
    """Copies the checkpoint of `model` from the wheel or package folder
    `source` into `scratch` as `<model>.index` / `.data-...`; returns
    (the checkpoint prefix, the text of configuration.py or None)."""
    name = os.path.basename(source.rstrip("/")) or source
    prefix = os.path.join(scratch, model)
    folder = _package_folder(source) if os.path.isdir(source) else None
    if os.path.isdir(source):
        if folder is None:
            raise ConversionError(f"{source!r} is a folder without the musicnn package "
                                  "(musicnn/configuration.py); give the wheel "
                                  "musicnn-0.1.0-py3-none-any.whl or the installed package's "
                                  "folder")
        for suffix in CHECKPOINT_FILES:
            path = os.path.join(folder, model, suffix)
            if not os.path.isfile(path):
                raise ConversionError(f"{source}: {model}/{suffix} is missing; the package "
                                      f"holds no {model} checkpoint")
            shutil.copyfile(path, prefix + suffix)
        with open(os.path.join(folder, "configuration.py"), encoding="utf-8") as handle:
            return prefix, handle.read()
    try:
        with zipfile.ZipFile(source) as wheel:
            members = {info.filename: info for info in wheel.infolist()}
            for suffix in CHECKPOINT_FILES:
                info = members.get(member_path(model, suffix))
                if info is None:
                    raise ConversionError(f"{name} has no {member_path(model, suffix)}; is "
                                          "it the musicnn wheel?")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise ConversionError(f"{name}: {info.filename} claims {info.file_size} "
                                          "bytes, more than any musicnn checkpoint file")
                with wheel.open(info) as member, open(prefix + suffix, "wb") as out:
                    shutil.copyfileobj(member, out)
            config = members.get(member_path(model, "configuration.py"))
            text = (wheel.read(config).decode("utf-8", "replace")
                    if config is not None and config.file_size < 1 << 20 else None)
            return prefix, text
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(f"{name} is not a readable wheel (a zip archive): {reason}; "
                              "download musicnn-0.1.0-py3-none-any.whl again") from None


def read_checkpoint(source: str, model: str) -> tuple[dict, str | None]:
    """({variable name: array}, configuration.py's text or None) of the
    package's checkpoint `model` in the wheel or folder `source`: a
    TensorFlow checkpoint, which TensorFlow alone reads (a ConversionError
    where it cannot be imported)."""
    from tagger.backends import tensorflow_for_input

    tf = tensorflow_for_input()  # quiet, and off the accelerators under JAX
    if tf is None:
        raise ConversionError(f"{os.path.basename(source)}: the musicnn package's weights are "
                              "TensorFlow checkpoints, which only TensorFlow reads, and "
                              "TensorFlow cannot be imported here; convert them once where it "
                              "is installed (convert_weights.py --from musicnn ... --out "
                              "NAME.keras, under either backend) and use that .keras file")

    with tempfile.TemporaryDirectory(prefix="musicnn-") as scratch:
        prefix, config = _copy_out(source, model, scratch)
        try:
            reader = tf.train.load_checkpoint(prefix)
            names = reader.get_variable_to_shape_map()
            return {name: np.asarray(reader.get_tensor(name)) for name in names}, config
        except (tf.errors.OpError, ValueError) as error:
            reason = (error.message if hasattr(error, "message") else str(error))
            raise ConversionError(f"{os.path.basename(source)}: the {model} checkpoint "
                                  f"cannot be read ({reason.splitlines()[0][:120]})") from None


def check_labels(config: str | None, dataset: str, source: str) -> None:
    """The package's tag list (a literal in configuration.py, parsed, not
    run), when there, must be ours; a ConversionError otherwise."""
    if config is None:
        return
    try:
        tree = ast.parse(config)
    except SyntaxError:
        raise ConversionError(f"{source}: musicnn/configuration.py does not parse") from None
    wanted = _LABELS[dataset]
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == wanted):
            try:
                labels = tuple(ast.literal_eval(node.value))
            except ValueError:
                break
            if labels != default_tags(dataset):
                raise ConversionError(f"{source}: the package's {wanted} differ from the tags "
                                      "of musicnn 0.1.0; another version's models are not "
                                      "known here")
            return


def family_of(variables: dict) -> str | None:
    if "1CNN/kernel" in variables:
        return "pons_vgg"
    if "conv2d_7/kernel" in variables:
        return "pons_musicnn"
    return None


def _args(family: str, variables: dict, source: str) -> dict:
    if family == "pons_vgg":
        return dict(num_tags=shape(variables, "dense/kernel", 2, source)[1],
                    filters=shape(variables, "1CNN/kernel", 4, source)[3])
    return dict(num_tags=shape(variables, "dense_1/kernel", 2, source)[1],
                timbral_filters=shape(variables, "conv2d/kernel", 4, source)[3],
                temporal_filters=shape(variables, "conv2d_2/kernel", 4, source)[3],
                midend_channels=shape(variables, "conv2d_5/kernel", 4, source)[3],
                dense_units=shape(variables, "dense/kernel", 2, source)[1])


def _batch_norm(weights: WeightMap, ours: str, index: int) -> None:
    theirs = "batch_normalization" + (f"_{index}" if index else "")
    weights.set_layer(ours, **{name: weights.take(f"{theirs}/{name}") for name in (
        "gamma", "beta", "moving_mean", "moving_variance")})


def _layer(weights: WeightMap, ours: str, theirs: str, conv1d: bool = False) -> None:
    """A conv2d or dense `theirs` -> our layer; `conv1d`: the package's 2-D
    convolution over all channels, (7, C, 1, F), as our Conv1D (7, C, F)."""
    kernel = weights.take(f"{theirs}/kernel")
    if conv1d and kernel is not None:
        if kernel.ndim != 4 or kernel.shape[2] != 1:
            raise ConversionError(f"{weights.source}: '{theirs}/kernel' has shape "
                                  f"{kernel.shape}, not (width, channels, 1, filters)")
        kernel = kernel[:, :, 0, :]
    weights.set_layer(ours, kernel=kernel, bias=weights.take(f"{theirs}/bias"))


def _map_musicnn(weights: WeightMap) -> None:
    _batch_norm(weights, "input_bn", 0)
    ours = [f"timbral{j}" for j in range(1, TIMBRAL + 1)]
    ours += [f"temporal{j}" for j in range(1, TEMPORAL + 1)]
    ours += [f"midend{i}" for i in range(1, MIDEND + 1)]
    for index, name in enumerate(ours):
        _layer(weights, f"{name}_conv", "conv2d" + (f"_{index}" if index else ""),
               conv1d=name.startswith("midend"))
        _batch_norm(weights, f"{name}_bn", index + 1)
    _batch_norm(weights, "pooled_bn", len(ours) + 1)
    _layer(weights, "head_dense", "dense")
    _batch_norm(weights, "embedding", len(ours) + 2)
    _layer(weights, "tags", "dense_1")


def _map_vgg(weights: WeightMap) -> None:
    _batch_norm(weights, "input_bn", 0)
    for i in range(1, 6):
        _layer(weights, f"conv{i}", f"{i}CNN")
        _batch_norm(weights, f"conv{i}_bn", i)
    _layer(weights, "tags", "dense")


def convert(path: str, model: str):
    """Returns (model, info) for the package's checkpoint `model` (one of
    MODELS) in the wheel or package folder at `path`."""
    source = os.path.basename(path.rstrip("/")) or path
    family, dataset = MODELS[model]
    variables, config = read_checkpoint(path, model)
    check_labels(config, dataset, source)
    found = family_of(variables)
    if found != family:
        raise ConversionError(f"{source}: {model}'s checkpoint does not hold the package's "
                              f"{'VGG' if family == 'pons_vgg' else 'Musicnn'} variables")
    args = _args(family, variables, source)
    from tagger.models import family as family_spec

    spec = family_spec(family)
    ours = spec.build(sample_rate=SAMPLE_RATE, **args)
    weights = WeightMap(variables, ours, f"{source} ({model})")
    for name in variables:  # Adam's state: not weights
        if name in _OPTIMIZER or name.endswith(("/Adam", "/Adam_1")):
            weights.skip(name)
    (_map_vgg if family == "pons_vgg" else _map_musicnn)(weights)
    weights.finish()
    info = dict(model=family, model_args=args, sample_rate=SAMPLE_RATE,
                window_segments=spec.window_segments, segment_length=spec.segment_length,
                logmel=dataclasses.asdict(spec.logmel), dataset=dataset,
                default_tags=default_tags(dataset), licence=ISC_NOTICE)
    return ours, info


CONVERTER = Converter(
    "musicnn", convert, lambda options: default_tags(MODELS[options["model"]][1]),
    options=(Option("model", tuple(MODELS), required=True,
                    help=f"which of the package's four models, {', '.join(MODELS)}"),),
    reads_folder=True)
