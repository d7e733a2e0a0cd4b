"""`run_excitations(ExcitationConfig)`, the library call behind
extract_excitations.py: load the model, extract the SE excitation table
(tagger.interpret.excitations), save it and draw its figures
(tagger.interpret.plots)."""

from __future__ import annotations

import dataclasses
import posixpath

from tagger.errors import UserError
from tagger.interpret.excitations import (
    check_tags,
    default_compare_tags,
    default_depths,
    excite_layer_names,
    extract_excitations,
    save_table,
)
from tagger.interpret.plots import excitation_figure_names, write_excitation_plots


@dataclasses.dataclass(frozen=True)
class ExcitationConfig:
    """What `extract_excitations.py` does: read `model_path`, run it over
    `split` of `data_dir`, save the table to `out` and, when `plots_dir` is
    set, the figures there (`depths`, `compare_tags`: None for defaults)."""

    model_path: str
    data_dir: str = "./dataset/tfrecord"
    split: str = "test"
    out: str = "excitations.pkl"
    plots_dir: str | None = None
    depths: tuple | None = None
    compare_tags: tuple | None = None
    batch_size: int = 32
    progress: bool = True
    overwrite: bool = False  # replace an existing `out` that is not an excitation table


def is_excitation_table(path: str) -> bool:
    """Whether `path` looks like a table `save_table` wrote: a pickle (its
    protocol mark) of a pandas DataFrame (the class named in its first
    bytes) whose columns (pickled after its data) begin as the table's do."""
    from tagger import fileio
    from tagger.interpret.excitations import BASE_COLUMNS

    head = fileio.head_bytes(path, 1 << 16)
    if not (head[:1] == b"\x80" and b"pandas" in head and b"DataFrame" in head):
        return False
    tail = fileio.tail_bytes(path)
    return all(column.encode() in tail for column in BASE_COLUMNS[:2])  # clip_id, depth


def is_our_figure(path: str) -> bool:
    """Whether `path` is a PNG matplotlib wrote (its `Software` text chunk,
    which matplotlib puts before the image data)."""
    from tagger import fileio

    head = fileio.head_bytes(path, 4096)
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Matplotlib" in head


def _check_plots_dir(config: ExcitationConfig, blocks: int) -> None:
    """--plots is a folder apart from --out, and the figures it may receive
    (every depth's; `write_excitation_plots` names them) replace only
    figures of ours there, or anything with --overwrite."""
    import os

    from tagger import destination, fileio

    folder = str(config.plots_dir)
    if fileio.is_local(folder):
        if os.path.realpath(folder) == os.path.realpath(str(config.out)):
            raise UserError(f"--plots {folder!r} is --out's file; give the figures a folder "
                            "of their own")
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UserError(f"--plots {folder!r} exists and is not a folder")
    maps, compared, spread = excitation_figure_names(range(blocks))
    for name in (*maps, compared, spread):
        destination.check_destination(posixpath.join(folder, name), "--plots",
                                      kind="a figure of ours", recognise=is_our_figure,
                                      overwrite=config.overwrite)


def run_excitations(config: ExcitationConfig):
    """Loads the model, extracts the table, saves it (and the plots);
    yields report lines."""
    from tagger.models.saved import load_tagger
    from tagger.records.info import load_info

    info = load_info(config.data_dir)
    model, model_info = load_tagger(config.model_path)
    blocks = len(excite_layer_names(model, model_info))  # fail before reading any data
    from tagger import destination

    destination.check_destination(  # before the long part
        config.out, "--out", kind="an excitation table", recognise=is_excitation_table,
        overwrite=config.overwrite, inputs=[config.model_path, config.data_dir])
    if config.plots_dir:  # check the plot choices and their files before the long part
        _check_plots_dir(config, blocks)
        wrong = [d for d in config.depths or () if not 0 <= d < blocks]
        if wrong:
            raise UserError(f"depth(s) {wrong} out of range; the model has SE blocks at "
                            f"depths 0..{blocks - 1}")
        unknown = [t for t in config.compare_tags or () if t not in info.tag_names]
        if unknown:
            raise UserError(f"unknown tag(s) {unknown}; the dataset's tags are: "
                            f"{', '.join(info.tag_names)}")
    table = extract_excitations(model, config.data_dir, config.split, config.batch_size,
                                info=info, model_info=model_info, progress=config.progress)
    save_table(table, config.out)
    clips = table["clip_id"].nunique()
    yield (f"excitations of {blocks} SE blocks for {clips} {config.split} clips "
           f"({len(table)} rows) saved to {config.out}")
    if config.plots_dir:
        depths = list(config.depths) if config.depths else default_depths(table)
        compare = list(config.compare_tags) if config.compare_tags else \
            default_compare_tags(table)
        if config.compare_tags:
            check_tags(table, compare)
        paths = write_excitation_plots(table, config.plots_dir, depths, compare)
        yield f"plots: {', '.join(paths)}"
