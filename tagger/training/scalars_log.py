"""A run's TensorBoard scalars (`<run>/logs/`), written with TensorBoard's
own event writer, which needs no TensorFlow (its gs:// paths do). Where
TensorFlow is installed TensorBoard writes through it: imported first as
`backends.tensorflow_for_input` imports it, off the accelerators of
another Keras backend."""

from __future__ import annotations

import time


class ScalarsLog:
    """`write(step, {name: value})` appends one event per scalar to the
    event file in `folder`, flushed at once."""

    def __init__(self, folder: str):
        from tagger.backends import tensorflow_for_input

        tensorflow_for_input()
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(folder)

    def write(self, step: int, values: dict) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=name, simple_value=float(value))
                                 for name, value in values.items()])
        self._writer.add_event(Event(wall_time=time.time(), step=int(step), summary=summary))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
