"""Converters from the original releases' published weights to our models.

`convert_file(config)` reads one original file, builds the matching model
of ours, moves every tensor across (see `mapping`) and saves a tagger
(`tagger.models.saved.save_tagger`) that tag.py, eval.py, export.py and
the interpretation tools load like any trained one. Sources:

- "resemul": Keras 2.0.5 .hdf5 (SE+multi, ReSE+multi) -> samplecnn
- "self_attention": ponswon.pth -> self_attention (released variant)
- "transformer": teacher.ckpt / compact_student.ckpt -> transformer
- "sota": Won et al. 2020's best_model.pth (--model the family it holds,
  one of `sota.models()`; --dataset mtat, msd or jamendo for the tags) ->
  that family
- "musicnn": the musicnn package's wheel or installed folder (--model one
  of its names: MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg) -> pons_musicnn
  or pons_vgg (`musicnn_package`)
"""

from __future__ import annotations

import dataclasses
import os

from tagger.errors import UserError, flags_do_not_apply

SOURCES = ("resemul", "self_attention", "transformer", "sota", "musicnn")
BLOCKS = ("se", "rese")
SIZES = ("teacher", "student")
# Raised whenever a converter's output changes: converted models cached by
# tagger.pretrained under an older version are converted again.
VERSION = 1


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    source: str  # the original file
    kind: str  # one of SOURCES
    out: str  # .keras or .hdf5
    block: str | None = None  # resemul only: checked against the file
    size: str | None = None  # transformer only: checked against the file
    model: str | None = None  # sota: short_cnn, ... (checked); musicnn: MTT_musicnn, ...
    dataset: str | None = None  # sota only: mtat, msd, jamendo (the tags)
    tags: tuple | None = None  # overrides the original's tag names
    tag_order: tuple | None = None  # reorders the outputs to these names
    overwrite: bool = False


def convert(config: ConvertConfig):
    """Returns (model, TaggerMetadata) for the original file; raises
    UserError (one line) for a file that does not fit."""
    if config.kind not in SOURCES:
        raise UserError(f"unknown source {config.kind!r}; valid: {', '.join(SOURCES)}")
    if config.block is not None and config.kind != "resemul":
        raise flags_do_not_apply(["--block"], "to --from resemul")
    if config.size is not None and config.kind != "transformer":
        raise flags_do_not_apply(["--size"], "to --from transformer")
    if config.dataset is not None and config.kind != "sota":
        raise flags_do_not_apply(["--dataset"], "to --from sota")
    if config.model is not None and config.kind not in ("sota", "musicnn"):
        raise flags_do_not_apply(["--model"], "to --from sota and --from musicnn")
    if config.kind == "musicnn":
        from tagger.convert import musicnn_package

        if config.model not in musicnn_package.MODELS:
            raise UserError(f"--from musicnn needs --model, one of "
                            f"{', '.join(musicnn_package.MODELS)}; got {config.model!r}")
    if config.kind == "sota":
        from tagger.convert import sota

        for flag, value, valid in (("--model", config.model, sota.MODELS),
                                   ("--dataset", config.dataset, sota.DATASETS)):
            if value not in valid:
                raise UserError(f"--from sota needs {flag}, one of {', '.join(valid)}; "
                                f"got {value!r}")
    folder_ok = config.kind == "musicnn" and os.path.isdir(config.source)
    if not (os.path.isfile(config.source) or folder_ok):
        raise UserError(f"{config.source!r} not found (or not a file); give the "
                        "downloaded original weights file")
    if config.kind == "resemul":
        from tagger.convert import resemul

        model, info = resemul.convert(config.source, block=config.block)
    elif config.kind == "self_attention":
        from tagger.convert import self_attention

        model, info = self_attention.convert(config.source)
    elif config.kind == "sota":
        model, info = sota.convert(config.source, config.model, config.dataset)
    elif config.kind == "musicnn":
        model, info = musicnn_package.convert(config.source, config.model)
    else:
        from tagger.convert import transformer

        model, info = transformer.convert(config.source, size=config.size)
    default_tags = info.pop("default_tags")
    tags = list(config.tags if config.tags is not None else default_tags)
    num_tags = model.outputs[0].shape[-1]
    if len(tags) != num_tags:
        raise UserError(f"the model has {num_tags} outputs but {len(tags)} tag names were "
                        "given; give one name per output, in output order")
    if config.tag_order is not None:
        tags = reorder_outputs(model, tags, list(config.tag_order))
    from tagger.models.spectrogram_input import SEGMENT_LENGTH
    from tagger.models.tagger_metadata import TaggerMetadata

    info.setdefault("segment_length", SEGMENT_LENGTH)
    return model, TaggerMetadata(**info, tag_names=tags, input_kind="raw",
                                 converted_from={"source": config.kind,
                                                 "file": os.path.basename(config.source)})


def convert_file(config: ConvertConfig):
    """Converts and saves; nothing is written unless the conversion succeeds."""
    from tagger import fileio
    from tagger.models.saved import MODEL_SUFFIXES, save_tagger

    if not config.out.endswith(MODEL_SUFFIXES):
        raise UserError(f"--out must end in {' or '.join(MODEL_SUFFIXES)}, got {config.out!r}")
    if fileio.exists(config.out) and not config.overwrite:
        raise UserError(f"{config.out!r} exists; pass --overwrite to replace it or choose "
                        "another --out")
    model, info = convert(config)
    try:
        save_tagger(model, info, config.out)
    except OSError as error:
        raise fileio.output_error("--out", config.out, error) from None
    return info


def reorder_outputs(model, tags: list, order: list) -> list:
    """Permutes the columns of the output layer `tags` so that output i is
    tag `order[i]` (the same scores, permuted); returns `order`."""
    if sorted(order) != sorted(tags):
        missing = sorted(set(tags) - set(order))
        unknown = sorted(set(order) - set(tags))
        raise UserError(
            f"--tag-order must name each of the model's {len(tags)} tags once; "
            f"missing {missing[:3]}, unknown {unknown[:3]}"
            + (" (or a name repeated)" if not missing and not unknown else ""))
    permutation = [tags.index(name) for name in order]
    layer = model.get_layer("tags")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel[:, permutation], bias[permutation]])
    return list(order)


def read_tag_file(path: str, what: str = "--tags") -> tuple:
    """One tag name per line (blank lines ignored), or the `tag_names` of a
    `dataset_info.json`."""
    from tagger import fileio

    try:
        text = fileio.read_text(path)
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {what} {path!r}: {fileio.describe_os_error(error)}") \
            from None
    if path.endswith(".json"):
        import json

        try:
            tags = tuple(json.loads(text)["tag_names"])
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{what} {path!r} is JSON without a list 'tag_names'; give a "
                            "dataset_info.json or a text file, one tag per line") from None
    else:
        tags = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not tags or len(set(tags)) != len(tags):
        raise UserError(f"{what} {path!r} names no tag or a tag twice")
    return tags
