"""The order a split's training windows are read in: one order, computed in
NumPy from the seed alone, which both readers serve (tf.data's,
`reader.train_dataset`, and the TensorFlow-free one,
`plain_reader.train_batches`), so that a run continued with the other
reader (TensorFlow installed where it started and not where it goes on,
say) trains on the stream it would have had.

A pass over the split reads its shard files in an order drawn for the pass
(`TrainOrder.shards`), `cycle` of them side by side, one clip of each in
turn (`interleave`: tf.data's interleave with `cycle_length`); with more
shares (hosts) than shard files, each share keeps every count-th clip of
that sequence. A clip gives its windows of k segments in order, from an
offset drawn for the clip where its segments do not fill whole windows
(`window_offset` of its `TrainOrder.offset_draws` draw). Pass after pass,
that stream of windows is cut into blocks of `block` windows (a whole
number of global batches, no more than hold a pass over the split:
`block_windows`), the windows of each block taken in an order drawn for
it (`TrainOrder.block_order`) and cut into batches: every window of the
stream is in one batch, and every window of a block is equally likely in
every batch of it.

Each draw is NumPy's default generator seeded with the seed's entropy, a
stream's tag and its index (pass, chunk of clips, block), so that any
part of the order is drawn alone, in memory of its own size: a pass's
shard order, OFFSET_CHUNK clips' offsets, a block's order.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

READ_CYCLE = 4  # shards read side by side in a pass (train.py's --num-read-threads)
OFFSET_CHUNK = 4096  # clips whose offsets are drawn together
SHARDS, OFFSETS, BLOCKS = 0, 1, 2  # the tags of the order's streams of draws
DRAWN = 2**31 - 1  # offset draws are in [0, DRAWN)


@dataclasses.dataclass(frozen=True)
class TrainOrder:
    """The order of the training windows of one share of a split: `entropy`
    (the seed as a tuple of non-negative ints), `cycle` shards read side by
    side, blocks of `block` windows."""

    entropy: tuple
    cycle: int = READ_CYCLE
    block: int = 1

    @classmethod
    def of(cls, seed, cycle: int | None, block: int) -> TrainOrder:
        """The order of `seed` (an int, a tuple of them, None: fresh entropy)."""
        cycle = READ_CYCLE if cycle is None else int(cycle)
        if cycle < 1 or block < 1:
            raise ValueError(f"cycle and block must be at least 1, got {cycle}, {block}")
        return cls(entropy(seed), cycle, int(block))

    def shards(self, pass_index, count) -> np.ndarray:
        """The order (int64 indexes) in which pass `pass_index` reads `count` shards."""
        generator = np.random.default_rng([*self.entropy, SHARDS, int(pass_index)])
        return generator.permutation(int(count)).astype(np.int64)

    def offset_draws(self, pass_index, chunk) -> np.ndarray:
        """The draws (int64 in [0, DRAWN)) of the clips OFFSET_CHUNK * chunk
        to OFFSET_CHUNK * (chunk + 1) - 1 of pass `pass_index`, in order."""
        generator = np.random.default_rng([*self.entropy, OFFSETS, int(pass_index),
                                           int(chunk)])
        return generator.integers(0, DRAWN, OFFSET_CHUNK, dtype=np.int64)

    def clip_draws(self, pass_index: int):
        """The draws of pass `pass_index`'s clips, in order, endless."""
        for chunk in itertools.count():
            yield from self.offset_draws(pass_index, chunk).tolist()

    def block_order(self, block_index, size) -> np.ndarray:
        """The order (int64 indexes) of the `size` windows of block `block_index`."""
        generator = np.random.default_rng([*self.entropy, BLOCKS, int(block_index)])
        return generator.permutation(int(size)).astype(np.int64)


def block_windows(shuffle_segments: int, window_segments: int, global_batch: int,
                  pass_windows: int | None = None) -> int:
    """Windows of `window_segments` segments in a block of about
    `shuffle_segments` segments: a whole number of global batches, at least
    one, and no more of them than hold `pass_windows` (a bound on one
    pass's windows, `windows.pass_windows_bound`): a split smaller than a
    block is shuffled about a pass at a time, not held many passes over."""
    batches = max(1, round(shuffle_segments / window_segments / global_batch))
    if pass_windows is not None:
        batches = min(batches, max(1, -(-int(pass_windows) // global_batch)))
    return global_batch * batches


def window_offset(draw: int, segments: int, window_segments: int) -> int:
    """The segment a clip of `segments` segments starts its windows at, by
    its `draw`: in 0 to its segments left over by whole windows."""
    spare = max(segments - segments // window_segments * window_segments, 0)
    return draw % (spare + 1)


def interleave(sources, cycle: int) -> list:
    """The items of `sources` (sequences), `cycle` of them read side by side,
    one item of each in turn; a source found ended on its turn gives its
    place to the next source, first read from on the place's next turn
    (tf.data's interleave with `cycle_length` and `block_length` 1)."""
    waiting = iter(sources)
    active = [iter(source) for source in itertools.islice(waiting, cycle)]
    out, turn = [], 0
    while active:
        item = next(active[turn], _END)
        if item is not _END:
            out.append(item)
        elif (following := next(waiting, None)) is not None:
            active[turn] = iter(following)  # read from on its next turn
        else:
            del active[turn]
            turn -= 1
        if active:
            turn = (turn + 1) % len(active)
    return out


_END = object()


def entropy(seed) -> tuple:
    """A seed (a non-negative int or a tuple of them; None: a fresh one) as
    the entropy of the order's draws."""
    if seed is None:
        return (np.random.SeedSequence().entropy,)
    seeds = tuple(int(s) for s in (seed if isinstance(seed, (tuple, list)) else (seed,)))
    if any(s < 0 for s in seeds):
        raise ValueError(f"a seed is a non-negative int or a tuple of them, got {seed!r}")
    return seeds
