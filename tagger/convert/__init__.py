"""Converters from the original releases' published weights to our models.

`convert_file(config)` reads one original file, builds the matching model
of ours, moves every tensor across (see `mapping`) and saves a tagger
(`tagger.models.saved.save_tagger`) that tag.py, eval.py, export.py and
the interpretation tools load like any trained one.

`CONVERTERS` (a `tagger.registry.Registry`) holds each kind's `Converter`
(`converter.py`) by its name (`--from`), defined in the kind's own
module: a new kind is its module plus its line below (or
`CONVERTERS.register(converter.name, converter)` from any module), and
convert_weights.py's `--from` and flags, `convert` and the pretrained
registry take it from there.
"""

from __future__ import annotations

import dataclasses
import os

from tagger.convert import musicnn_package, resemul, self_attention, transformer, zoo
from tagger.errors import UserError, flags_do_not_apply
from tagger.registry import Registry

CONVERTERS = Registry("converter")
for _converter in (
    resemul.CONVERTER,  # Keras 2.0.5 .hdf5 (SE+multi, ReSE+multi) -> samplecnn
    self_attention.CONVERTER,  # ponswon.pth -> self_attention (released variant)
    transformer.CONVERTER,  # teacher.ckpt / compact_student.ckpt -> transformer
    zoo.CONVERTER,  # Won et al. 2020's model zoo: a best_model.pth -> the family it holds
    musicnn_package.CONVERTER,  # the musicnn package's wheel or folder -> pons_musicnn/_vgg
):
    CONVERTERS.register(_converter.name, _converter)
# Raised whenever a converter's output changes: converted models cached by
# tagger.pretrained under an older version are converted again.
VERSION = 1


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    source: str  # the original file
    kind: str  # a name in CONVERTERS
    out: str  # .keras or .hdf5
    options: tuple = ()  # (name, value) pairs of the converter's options; None: not given
    tags: tuple | None = None  # overrides the original's tag names
    tag_order: tuple | None = None  # reorders the outputs to these names
    overwrite: bool = False


def convert(config: ConvertConfig):
    """Returns (model, TaggerMetadata) for the original file; raises
    UserError (one line) for a file that does not fit."""
    kind = CONVERTERS.get(config.kind)
    options = {name: value for name, value in config.options if value is not None}
    for name in options:
        if kind.option(name) is None:
            takers = [f"--from {other.name}" for _, other in CONVERTERS.items()
                      if other.option(name) is not None]
            if not takers:
                raise UserError(f"--{name} is an option of no converter; leave it out")
            raise flags_do_not_apply([f"--{name}"], f"to {' and '.join(takers)}")
    for option in kind.options:
        value = options.get(option.name)
        if (option.required or value is not None) and value not in option.values:
            raise UserError(f"--from {kind.name} needs --{option.name}, one of "
                            f"{', '.join(option.values)}; got {value!r}")
    folder_ok = kind.reads_folder and os.path.isdir(config.source)
    if not (os.path.isfile(config.source) or folder_ok):
        raise UserError(f"{config.source!r} not found (or not a file); give the "
                        "downloaded original weights file")
    model, info = kind.convert(config.source, **options)
    default_tags = info.pop("default_tags")
    tags = list(config.tags if config.tags is not None else default_tags)
    num_tags = model.outputs[0].shape[-1]
    if len(tags) != num_tags:
        raise UserError(f"the model has {num_tags} outputs but {len(tags)} tag names were "
                        "given; give one name per output, in output order")
    if config.tag_order is not None:
        tags = reorder_outputs(model, tags, list(config.tag_order))
    from tagger.config import SEGMENT_LENGTH
    from tagger.models.tagger_metadata import TaggerMetadata

    info.setdefault("segment_length", SEGMENT_LENGTH)
    return model, TaggerMetadata(**info, tag_names=tags, input_kind="raw",
                                 converted_from={"source": config.kind,
                                                 "file": os.path.basename(config.source)})


def convert_file(config: ConvertConfig):
    """Converts and saves; nothing is written unless the conversion succeeds."""
    from tagger import destination, fileio
    from tagger.models.saved import MODEL_SUFFIXES, save_tagger

    if not config.out.endswith(MODEL_SUFFIXES):
        raise UserError(f"--out must end in {' or '.join(MODEL_SUFFIXES)}, got {config.out!r}")
    if destination.input_clash(config.out, [config.source]) is not None:  # even --overwrite
        raise UserError(f"--out {config.out!r} is the original file; writing it would destroy "
                        "it: choose another --out")
    if fileio.exists(config.out) and not config.overwrite:
        raise UserError(f"{config.out!r} exists; pass --overwrite to replace it or choose "
                        "another --out")
    model, info = convert(config)
    try:
        save_tagger(model, info, config.out)
    except OSError as error:
        raise destination.output_error("--out", config.out, error) from None
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
        text = fileio.names_text(fileio.read_bytes(path), errors="strict")
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
