import numpy as np
import pytest
import tensorflow as tf

from tagger.audio import INT16_SCALE
from tagger.records.schema import make_parser, serialize_example


@pytest.mark.parametrize("dtype,shape", [("int16", (59,)), ("float32", (59,)),
                                         ("float32", (7, 5))])
def test_round_trip(dtype, shape):
    rng = np.random.default_rng(0)
    if dtype == "int16":
        segments = rng.integers(-32767, 32767, (3, *shape)).astype(np.int16)
    else:
        segments = rng.standard_normal((3, *shape)).astype(np.float32)
    tags = np.array([0, 1, 1, 0])
    record = serialize_example(42, "a/b.mp3", tags, segments)
    parsed = make_parser(4, shape, dtype)(tf.constant(record))
    assert int(parsed["clip_id"]) == 42
    assert parsed["path"].numpy() == b"a/b.mp3"
    np.testing.assert_array_equal(parsed["tags"].numpy(), tags.astype(np.float32))
    got = parsed["segments"].numpy()
    assert got.shape == (3, *shape) and got.dtype == np.float32
    if dtype == "int16":
        np.testing.assert_array_equal(got * INT16_SCALE, segments.astype(np.float32))
    else:
        np.testing.assert_array_equal(got, segments)
    example = tf.train.Example.FromString(record)
    stored = example.features.feature["segments"].bytes_list.value[0]
    assert stored == segments.astype(segments.dtype.newbyteorder("<")).tobytes()
    assert list(example.features.feature["segment_shape"].int64_list.value) == list(shape)


def test_rejects_other_dtypes():
    with pytest.raises(ValueError, match="int16 or float32"):
        serialize_example(1, "x", np.zeros(2), np.zeros((1, 3), np.float64))


def tensorflow_example(clip_id, path, tags, segments):
    """The example as TensorFlow's own protobuf classes serialize it."""
    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def raw(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "clip_id": ints([clip_id]), "path": raw(path.encode()),
        "tags": ints(np.asarray(tags, np.int64)), "num_segments": ints([segments.shape[0]]),
        "segment_shape": ints(segments.shape[1:]), "dtype": raw(segments.dtype.name.encode()),
        "segments": raw(segments.tobytes()),
    })).SerializeToString(deterministic=True)


@pytest.mark.parametrize("clip_id,path,tags,shape,dtype", [
    (42, "a/b.mp3", [0, 1, 1, 0], (3, 59), "int16"),
    (2**40 + 7, "ü/ß é.mp3", [1] * 50, (10, 59049), "int16"),
    (-5, "", [0] * 200, (2, 129, 128), "float32"),
    (0, "x" * 300, [1, 0], (0, 16), "float32"),
])
def test_bytes_equal_tensorflow_serialization(clip_id, path, tags, shape, dtype):
    rng = np.random.default_rng(1)
    segments = (rng.standard_normal(shape) * 1000).astype(dtype)
    assert serialize_example(clip_id, path, np.array(tags), segments) == \
        tensorflow_example(clip_id, path, tags, segments)
