import struct

import numpy as np
import pytest
import tensorflow as tf

from tagger.audio import INT16_SCALE
from tagger.records.schema import make_parser, parse_clip, parse_example, serialize_example


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


CLIPS = [(42, "a/b.mp3", [0, 1, 1, 0], (3, 59), "int16"),
         (2**40 + 7, "ü/ß é.mp3", [1] * 50, (10, 59049), "int16"),
         (-5, "", [0] * 200, (2, 129, 128), "float32"),
         (0, "x" * 300, [1, 0], (0, 16), "float32")]


@pytest.mark.parametrize("clip_id,path,tags,shape,dtype", CLIPS)
def test_parse_clip_reads_back_what_serialize_example_wrote(clip_id, path, tags, shape, dtype):
    rng = np.random.default_rng(2)
    segments = (rng.standard_normal(shape) * 1000).astype(dtype)
    record = serialize_example(clip_id, path, np.array(tags), segments)
    clip = parse_clip(record, len(tags), shape[1:], dtype)
    assert clip["clip_id"] == clip_id and clip["path"] == path.encode()
    assert clip["tags"].dtype == np.float32
    np.testing.assert_array_equal(clip["tags"], tags)
    assert clip["segments"].dtype == dtype and clip["segments"].shape == shape
    np.testing.assert_array_equal(clip["segments"], segments)
    if segments.size:  # a view of the record's bytes, not a copy
        assert np.shares_memory(clip["segments"], np.frombuffer(record, np.uint8))
    assert "tags" not in parse_clip(record, len(tags), shape[1:], dtype, with_tags=False)


def test_parse_clip_keeps_a_path_that_is_not_utf8():
    record = serialize_example(1, "bad\udcff.wav", np.zeros(2), np.zeros((1, 4), np.int16))
    assert parse_clip(record, 2, (4,), "int16")["path"] == b"bad\xff.wav"


@pytest.mark.parametrize("change,message", [
    (dict(dtype="float32"), "it holds int16 segments, the dataset float32"),
    (dict(num_tags=3), "it holds 4 tags, the dataset 3"),
    (dict(segment_shape=(6,)), "its segments hold 15 values, not 3 segments of (6,)"),
])
def test_parse_clip_refuses_a_record_of_other_settings(change, message):
    record = serialize_example(1, "a", np.array([0, 1, 0, 1]), np.ones((3, 5), np.int16))
    settings = dict(num_tags=4, segment_shape=(5,), dtype="int16") | change
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_clip(record, **settings)


def test_parse_example_refuses_bytes_that_are_no_example():
    record = serialize_example(1, "a", np.array([0, 1]), np.ones((3, 5), np.int16))
    with pytest.raises(ValueError, match="runs past its message's end"):
        parse_example(record[:-3])
    with pytest.raises(ValueError, match="not a tf.train.Example: wire type 7"):
        parse_example(b"\x0f\x00")
    with pytest.raises(ValueError, match="varint is cut or too long"):
        parse_example(b"\x08" + b"\xff" * 11)
    missing = tf.train.Example(features=tf.train.Features(feature={
        "clip_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))}))
    with pytest.raises(ValueError, match="^it has no bytes_list feature 'dtype'$"):
        parse_clip(missing.SerializeToString(), 2, (5,), "int16")
    floats = tf.train.Example(features=tf.train.Features(feature={
        "dtype": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"int16"])),
        "tags": tf.train.Feature(float_list=tf.train.FloatList(value=[0, 1]))}))
    with pytest.raises(ValueError, match="^it has no int64_list feature 'tags'$"):
        parse_clip(floats.SerializeToString(), 2, (5,), "int16")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _message(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def unpacked_example(features: dict) -> bytes:
    """An Example whose int64 and float lists are written one value a field
    (protobuf's unpacked encoding, which parsers must accept; TensorFlow's
    own serialization packs them)."""
    entries = b""
    for name, (kind, values) in features.items():
        if kind == "int64":
            items = b"".join(_varint(1 << 3 | 0) + _varint(v) for v in values)
            feature = _message(3, items)
        else:
            items = b"".join(_varint(1 << 3 | 5) + struct.pack("<f", v) for v in values)
            feature = _message(2, items)
        entries += _message(1, _message(1, name.encode()) + _message(2, feature))
    return _message(1, entries)


FEATURES = {
    "ints": ("int64", [0, 1, -1, 2**63 - 1, -(2**63), 300, 127, 128]),
    "floats": ("float", [0.0, -1.5, 3.25e-8, float("inf"), 1e30]),
    "one": ("int64", [7]),
    "many_bytes": ("bytes", [b"", b"\x00\xff", "é".encode(), b"z" * 1000]),
    "empty_ints": ("int64", []),
}
TF_DTYPE = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}


def tensorflow_parse(record: bytes, features: dict) -> dict:
    spec = {name: tf.io.VarLenFeature(TF_DTYPE[kind]) for name, (kind, _) in features.items()}
    parsed = tf.io.parse_single_example(record, spec)
    return {name: parsed[name].values.numpy() for name in features}


def assert_equal_values(ours: dict, theirs: dict, features: dict):
    assert set(ours) == set(features)
    for name, (kind, _) in features.items():
        if kind == "bytes":
            assert [bytes(v) for v in ours[name]] == list(theirs[name]), name
        else:
            assert ours[name].dtype == theirs[name].dtype, name
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_parse_example_reads_what_tensorflow_reads_of_its_own_examples():
    def feature(kind, values):
        if kind == "int64":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        if kind == "float":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    example = tf.train.Example(features=tf.train.Features(feature={
        name: feature(*spec) for name, spec in FEATURES.items()}))
    for deterministic in (True, False):
        record = example.SerializeToString(deterministic=deterministic)
        assert_equal_values(parse_example(record), tensorflow_parse(record, FEATURES),
                            FEATURES)


def test_parse_example_reads_unpacked_lists_as_tensorflow_does():
    features = {name: spec for name, spec in FEATURES.items() if spec[0] != "bytes"}
    record = unpacked_example(features)
    theirs = tensorflow_parse(record, features)
    assert list(theirs["ints"]) == FEATURES["ints"][1]
    assert_equal_values(parse_example(record), theirs, features)
