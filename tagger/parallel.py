"""An ordered, memory-bounded parallel map over spawned worker processes."""

from __future__ import annotations

import collections
import itertools
import multiprocessing

IN_FLIGHT_PER_WORKER = 4


def ordered_map(fn, items, workers: int):
    """Like map(fn, items), over `workers` spawned processes, results in
    input order, with at most a few items per worker in flight (memory stays
    flat however many items there are). One worker runs in this process.

    Spawned workers import `fn`'s module afresh: keep it free of TensorFlow.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        items = iter(items)
        in_flight = collections.deque(
            pool.apply_async(fn, (item,))
            for item in itertools.islice(items, workers * IN_FLIGHT_PER_WORKER))
        while in_flight:
            result = in_flight.popleft().get()
            for item in itertools.islice(items, 1):
                in_flight.append(pool.apply_async(fn, (item,)))
            yield result
