"""One custom training step that serves every tf.distribute strategy.

`model.fit` fails under MultiWorkerMirroredStrategy with Keras 3 (keras-team/
keras#20585), so training runs its own step everywhere: a `tf.function`
calls `strategy.run` on a replica step (GradientTape, loss averaged over
the GLOBAL batch, the Keras optimizer's `apply_gradients`, which sums
gradients over replicas) and `strategy.reduce` sums the replicas' losses.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tagger.models.training_graph import training_model
from tagger.models.training_sums import gradients_held_by_graph
from tagger.records import reader
from tagger.records.info import DatasetInfo
from tagger.records.schema import to_float


def distributed_train_data(strategy, data_dir: str, info: DatasetInfo, global_batch: int,
                           window_segments: int, shuffle_segments: int,
                           seed: int | None, num_read_threads: int | None,
                           split: str = "train", with_tags: bool = True, targets=None):
    """A distributed, repeating dataset of (window, tags) per-replica batches
    (windows alone without `with_tags`); each input pipeline (worker) reads
    its own share of the shards. Windows come in their storage dtype (int16
    for raw int16 records): the step converts them on its device
    (`schema.to_float`), which halves the bytes each batch carries to an
    accelerator and takes the conversion off the input pipeline. `targets`:
    soft targets in place of the tags (`reader.train_dataset`)."""
    def per_pipeline(context: tf.distribute.InputContext):
        batch = context.get_per_replica_batch_size(global_batch)
        shard = None
        if context.num_input_pipelines > 1:
            shard = (context.num_input_pipelines, context.input_pipeline_id)
        return reader.train_dataset(
            data_dir, batch, split=split, window_segments=window_segments, info=info,
            shuffle_segments=shuffle_segments, seed=seed, shard=shard,
            num_read_threads=num_read_threads, with_tags=with_tags, as_stored=True,
            targets=targets, global_batch=global_batch)

    return strategy.distribute_datasets_from_function(per_pipeline)


def make_train_function(model: keras.Model, optimizer, strategy, global_batch: int,
                        jit_compile: bool = False, augmentation=None, loss=None):
    """Returns `train(iterator, steps) -> summed loss over the steps`; the
    iterator's windows may be in their storage dtype (int16 is scaled to
    [-1, 1] in the step).

    `augmentation`, a `tagger.augment.Augmentation`, noises each
    replica's windows in the step (in the graph, keyed by the step and the
    replica: `replica_index`) before the model sees them.
    `loss(y, scores) -> (batch,)`: the per-window loss (default: BCE); one
    whose `from_logits` is true gets the logits of the model's `tags`
    layer (`tag_logits`) in place of the scores. The step runs the model's
    `training_model` form (one-channel convolutions as stacked taps, fused
    batch norms: the same function and variables, faster).

    `steps` is a Python int: the steps are unrolled in one graph (an in-graph
    loop around `strategy.run` breaks the optimizer's cross-replica update
    under MirroredStrategy); each distinct value traces once.
    """
    window_loss = loss or keras.losses.binary_crossentropy
    outputs = tag_logits(model) if getattr(loss, "from_logits", False) else training_model(model)

    def replica_step(x, y):
        x = to_float(x)
        if augmentation is not None:
            x = augmentation(x, optimizer.iterations, replica_index())

        def objective():
            scores = tf.cast(outputs(x, training=True), tf.float32)  # or logits
            per_example = window_loss(y, scores)  # (batch,)
            return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch), ()

        return descend(model, optimizer, objective)[0]

    return distributed_train_function(model, optimizer, strategy, replica_step, next,
                                      jit_compile)


def replica_index():
    """The index of the replica a tf.distribute step runs in (0 outside
    one): each replica augments its own examples with draws of its own."""
    context = tf.distribute.get_replica_context()
    return 0 if context is None else context.replica_id_in_sync_group


def tag_logits(model: keras.Model):
    """`(x, training) -> (batch, tags)` float32: the logits of `model`'s
    last layer, `tags` (a sigmoid Dense): its kernel and bias applied to
    its input, computed by the model's own layers (in their
    `training_model` form). The model and its outputs stay as they are."""
    from tagger.training.distillation import tags_layer

    tags = tags_layer(model)
    features = training_model(keras.Model(model.inputs, tags.input))  # its training form

    def logits(x, training=False):
        h = tf.cast(features(x, training=training), tf.float32)  # (batch, features)
        return tf.matmul(h, tags.kernel) + tags.bias

    return logits


def descend(model, optimizer, objective):
    """One gradient step of `optimizer` on `model`, in a replica:
    `objective() -> (loss, parts)` runs under the GradientTape, the model's
    regularisation losses (scaled for the replicas) join the loss, and a
    LossScaleOptimizer's `scale_loss` scales it for the gradients. Returns
    (the loss with regularisation, parts)."""
    with tf.GradientTape() as tape:
        loss, parts = objective()
        if model.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
    gradients = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss, parts


def distributed_train_function(model, optimizer, strategy, replica_step, next_batch,
                               jit_compile: bool):
    """Returns `train(iterators, steps)`: the sum over `steps` steps and the
    replicas of `replica_step(*next_batch(iterators))`, run by
    `strategy.run` (XLA-compiled with `jit_compile`). The optimizer's slot
    variables are built first: they must exist before tracing."""
    if not optimizer.built:
        with strategy.scope():
            optimizer.build(model.trainable_variables)
    step = tf.function(replica_step, jit_compile=True) if jit_compile else replica_step

    @tf.function(autograph=False)  # plain Python loop; no tensor-dependent control flow
    def train(iterators, steps):
        total = 0.0
        with gradients_held_by_graph():  # tf.distribute's all-reduce registers one
            for _ in range(steps):
                per_replica = strategy.run(step, args=next_batch(iterators))
                total += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return total

    return train
