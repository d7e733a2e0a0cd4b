"""Choosing a tf.distribute strategy: default, mirrored (GPUs), multi-worker, TPU."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tagger.errors import UserError

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
_MADE = {}


def make_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """The strategy `name`, made once per process (strategies own devices and
    collective keys: two live mirrored strategies would collide).

    auto: a TPU when one is reachable (a `tpu` name/address, or Colab's), else
    MirroredStrategy over every GPU, else the default strategy (CPU).
    multiworker reads the cluster from TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if (name, tpu) not in _MADE:
        _MADE[name, tpu] = _make(name, tpu)
    return _MADE[name, tpu]


def _make(name: str, tpu: str | None) -> tf.distribute.Strategy:
    if name == "auto":
        resolver = _tpu_resolver(tpu, required=False)
        if resolver is not None:
            return _tpu_strategy(resolver)
        name = "mirrored" if tf.config.list_logical_devices("GPU") else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy multiworker needs TF_CONFIG describing the "
                            "cluster and this worker's task")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(_tpu_resolver(tpu, required=True))


def _tpu_resolver(tpu: str | None, required: bool):
    if tpu is None and not required and "COLAB_TPU_ADDR" not in os.environ \
            and "TPU_NAME" not in os.environ:
        return None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    except (ValueError, tf.errors.OpError) as error:
        if required:
            raise UserError(f"no TPU found ({str(error).splitlines()[0]}); pass --tpu "
                            "NAME_OR_ADDRESS or run on a TPU runtime") from None
        return None


def _tpu_strategy(resolver) -> tf.distribute.Strategy:
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_tpu(strategy) -> bool:
    return isinstance(strategy, tf.distribute.TPUStrategy)


def is_chief(strategy) -> bool:
    """True on the worker that writes run outputs (always, but in multi-worker
    training on workers other than worker 0)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and task.get("index", 0) == 0


def barrier(strategy) -> None:
    """Waits until every worker of a multi-worker strategy gets here (a tiny
    all-reduce); returns at once under any other strategy. Used before a
    worker reads files the chief wrote."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        ones = strategy.run(lambda: tf.ones(()))
        strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)


def chief_first(strategy, work) -> None:
    """Runs `work()` on the chief and then, once it is done, on every other
    worker of a multi-worker strategy (which reads what the chief stored
    instead of computing and writing it too); once under any other."""
    chief = is_chief(strategy)
    if chief:
        work()
    barrier(strategy)
    if not chief:
        work()
