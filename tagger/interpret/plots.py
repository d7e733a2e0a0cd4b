"""Figures of the interpretation tools: excitations and attention maps.

Figures are made with matplotlib's object interface on the Agg canvas
(`matplotlib.figure.Figure`, no pyplot state), so they work headless, in
worker threads and in notebooks (display the returned Figure).
"""

from __future__ import annotations

import io
import posixpath

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tagger import fileio
from tagger.config import join_path
from tagger.interpret import excitations as ex


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str) -> str:
    """Writes a PNG (local or any tf.io.gfile path, e.g. gs://); returns the path."""
    folder = posixpath.dirname(str(path))
    if folder:
        fileio.makedirs(folder)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    fileio.write_atomic(str(path), buffer.getvalue())
    return str(path)


# ------------------------------------------------------------- excitations

def plot_tag_excitations(table, depth: int, tags=None, sort: bool = True, ax=None):
    """The mean excitation of each tag at `depth`, one curve per tag, the
    channels sorted by their mean over the tags shown (Kim et al. 2018,
    figure 4). Returns the Figure."""
    means = ex.tag_excitations(table, depth, tags)
    values = means.to_numpy()
    if sort:
        values = values[:, ex.channel_order(means)]
    figure, ax = _figure_and_axes(ax, 14, 5)
    for tag, row in zip(means.index, values):
        ax.plot(row, label=tag, linewidth=1.0)
    ax.set_xlim(0, values.shape[1] - 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("channel" + (" (sorted by the mean over the tags)" if sort else ""))
    ax.set_ylabel("mean excitation")
    ax.set_title(f"SE excitations at depth {depth} (block {depth + 1} of "
                 f"{len(ex.depths_of(table))}), {len(means)} tags")
    ax.legend(ncol=min(10, len(means)), fontsize="small", loc="upper center",
              bbox_to_anchor=(0.5, -0.13), frameon=False)
    return figure


def plot_tag_excitation_map(table, depth: int, tags=None, sort: bool = True):
    """Every tag's mean excitation at `depth` as a tag x channel heat map,
    so each of ~50 tags can be read off by name (one curve per tag, as in
    Kim et al. 2018 figure 4, cannot tell 50 tags apart).

    Left: the mean excitation (0..1); right: each tag's difference from the
    mean over the tags, channel by channel (red: the tag excites the
    channel more than the average tag does; blue: less), on a symmetric
    scale. Rows are the tags in the table's order (the model's, most
    frequent first); columns are the channels sorted by their mean over
    the tags (`sort`, as the curves and the paper do). Returns the Figure.
    """
    means = ex.tag_excitations(table, depth, tags)
    values = means.to_numpy()  # (tags, channels)
    if sort:
        values = values[:, ex.channel_order(means)]
    deviation = values - values.mean(axis=0, keepdims=True)
    limit = max(float(np.abs(deviation).max()), 1e-6)
    count, channels = values.shape
    figure = new_figure(16, 2.4 + 0.17 * max(count, 6))
    figure.set_layout_engine("constrained")  # room for the labels of both panels
    left, right = figure.subplots(1, 2)
    extent = (-0.5, channels - 0.5, count - 0.5, -0.5)
    image = left.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                        interpolation="nearest", extent=extent)
    shift = right.imshow(deviation, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                         interpolation="nearest", extent=extent)
    for ax, mappable, label in ((left, image, "mean excitation"),
                                (right, shift, "difference from the mean over the tags")):
        figure.colorbar(mappable, ax=ax, location="bottom", shrink=0.6, aspect=40,
                        label=label)
        ax.set_yticks(range(count))
        ax.set_yticklabels(list(means.index), fontsize=7 if count > 30 else 8)
        ax.set_xlabel("channel" + (" (sorted by the mean over the tags)" if sort else ""))
    left.set_title("mean excitation per tag", fontsize=10)
    right.set_title("tag minus the mean over the tags (red: more, blue: less)",
                    fontsize=10)
    figure.suptitle(f"SE excitations at depth {depth} (block {depth + 1} of "
                    f"{len(ex.depths_of(table))}): {count} tags x {channels} channels",
                    fontsize=11)
    return figure


def plot_tag_spread(table, tags=None, ax=None):
    """Per depth, the channel mean of the standard deviation of the tags'
    mean excitations: low where every tag excites the channels alike."""
    spread = ex.tag_spread(table, tags)
    figure, ax = _figure_and_axes(ax, 7, 4)
    ax.plot(spread.index, spread.to_numpy(), marker="o")
    ax.set_xticks(list(spread.index))
    ax.set_xlabel("depth (SE block, input side first)")
    ax.set_ylabel("std of excitation across tags\n(mean over channels)")
    ax.set_title("How tag-specific each depth is")
    ax.set_ylim(bottom=0)
    return figure


def write_excitation_plots(table, out_dir: str, depths=None, compare_tags=None) -> list[str]:
    """Writes the excitation figures; returns their paths:
    `excitations_depth{d}.png` for each depth (default first, middle,
    last): every tag's excitations as a heat map (`plot_tag_excitation_map`);
    `excitations_compare_depth{d0}.png`: curves of a few contrasting tags
    at the first depth (default classical, metal/rock, dance/techno, those
    present), where curves stay readable; and `excitation_spread.png`."""
    depths = list(depths) if depths else ex.default_depths(table)
    ex.check_depths(table, depths)
    compare = list(compare_tags) if compare_tags else ex.default_compare_tags(table)
    first = ex.depths_of(table)[0]
    maps, compared, spread = excitation_figure_names(depths, first)
    paths = [save_figure(plot_tag_excitation_map(table, depth), join_path(out_dir, name))
             for depth, name in zip(depths, maps)]
    if compare:
        paths.append(save_figure(plot_tag_excitations(table, first, compare),
                                 join_path(out_dir, compared)))
    paths.append(save_figure(plot_tag_spread(table), join_path(out_dir, spread)))
    return paths


def excitation_figure_names(depths, first: int = 0) -> tuple:
    """The names `write_excitation_plots` gives its figures: ([one per
    depth], the tags compared at depth `first`, the spread)."""
    return ([f"excitations_depth{d}.png" for d in depths],
            f"excitations_compare_depth{first}.png", "excitation_spread.png")


# ---------------------------------------------------------------- attention

def plot_attention(maps):
    """The log-mel spectrogram with, aligned under it, the last layer's
    [CLS] attention and the attention each step receives (summed over the
    heads), one colour per step; each row's range is printed beside it."""
    rows = [("[CLS] attention", maps.attention_over_time()),
            ("received\n(mean over queries)", maps.received_over_time())]
    figure = new_figure(14, 5)
    axes = _spectrogram_with_rows(figure, maps, len(rows), row_height=0.7)
    for ax, (label, values) in zip(axes[1:], rows):  # each row's own scale, printed beside it
        _heat_row(ax, maps, values, label, cmap="Reds",
                  note=f"{np.nanmin(values):.3g}..{np.nanmax(values):.3g}")
    cls = maps.attention[:, 0].mean()
    axes[0].set_title(f"{maps.name}: last-layer attention, summed over {maps.heads} heads "
                      f"([CLS] attends to itself {cls:.2f} on average)")
    return figure


def plot_contributions(maps, tags):
    """The spectrogram with one row per tag: the tag's output when the last
    layer attends only to that time step (Won et al. 2019). Each row has
    its own colour scale, printed beside it."""
    tags = list(tags)
    figure = new_figure(14, 3 + 0.55 * len(tags))
    axes = _spectrogram_with_rows(figure, maps, len(tags), row_height=0.55)
    for ax, tag in zip(axes[1:], tags):
        values = maps.contributions[:, maps.tag_index(tag)]
        _heat_row(ax, maps, values, f"{tag}", cmap="Reds",
                  note=f"{values.min():.3g}..{values.max():.3g}")
    axes[0].set_title(f"{maps.name}: tag-wise contribution (attention forced to one step)")
    return figure


def _spectrogram_with_rows(figure, maps, rows, row_height):
    spec_height = 3.0
    grid = figure.add_gridspec(1 + rows, 1, height_ratios=[spec_height] + [row_height] * rows,
                               hspace=0.08)
    top = figure.add_subplot(grid[0])
    axes = [top] + [figure.add_subplot(grid[i + 1], sharex=top) for i in range(rows)]
    extent = (0.0, maps.seconds, 0, maps.spectrogram.shape[1])
    # Colour limits from the audio, not the padding (silence is the floor).
    audio_frames = max(1, int(round(len(maps.spectrogram) * maps.audio_seconds / maps.seconds)))
    heard = maps.spectrogram[:audio_frames]
    top.imshow(maps.spectrogram.T, origin="lower", aspect="auto", extent=extent,
               cmap="magma", interpolation="nearest", vmin=np.percentile(heard, 1),
               vmax=heard.max())
    top.set_ylabel("mel bin")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (s)")
    if maps.audio_seconds < maps.seconds:
        for ax in axes:
            ax.axvspan(maps.audio_seconds, maps.seconds, color="0.5", alpha=0.35, lw=0)
    for w in range(1, maps.windows):
        for ax in axes:
            ax.axvline(w * maps.window_seconds, color="white" if ax is top else "0.3",
                       lw=0.6, ls=":")
    return axes


def _heat_row(ax, maps, values, label, cmap, note=None):
    row = maps.steps_as_frames(values)[None, :]
    ax.imshow(np.ma.masked_invalid(row), aspect="auto", cmap=cmap, interpolation="nearest",
              extent=(0.0, maps.seconds, 0, 1))
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    if note:
        ax.text(1.005, 0.5, note, transform=ax.transAxes, va="center", fontsize="x-small")


def _figure_and_axes(ax, width, height):
    if ax is not None:
        return ax.figure, ax
    figure = new_figure(width, height)
    return figure, figure.add_subplot()
