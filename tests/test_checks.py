"""The tests' helpers that read a dependency's private state: what they
rely on still holds."""

import numpy as np
import tensorflow as tf

from tests.checks import dataset_graph_bytes


def test_a_datasets_graph_size_shows_a_constant_baked_in():
    values = np.arange(250_000, dtype=np.float32)  # 1 MB
    baked = tf.data.Dataset.from_tensor_slices(values)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant([0, 1], tf.int64), tf.constant([2.0, 3.0])), default_value=0.0)
    small = tf.data.Dataset.range(4).map(table.lookup)
    assert dataset_graph_bytes(baked) > len(values) * 4
    assert 0 < dataset_graph_bytes(small) < 20_000
