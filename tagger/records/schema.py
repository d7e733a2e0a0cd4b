"""The one TFRecord feature spec used by both the writer and the parser.

One example per clip:
  clip_id        int64
  path           bytes   the clip's path relative to the dataset root: the
                         name's bytes (`os.fsencode`), so a name that is not
                         valid UTF-8 is kept exactly (`os.fsdecode` reads it)
  tags           int64[num_tags]  multi-hot labels, in dataset_info tag order
  num_segments   int64
  segment_shape  int64[]  (segment_length,) for raw, (frames, n_mels) for log-mel
  dtype          bytes   "int16" | "float32"
  segments       bytes   the (num_segments, *segment_shape) array, little-endian
"""

from __future__ import annotations

import os

import numpy as np

STORAGE_DTYPES = {"int16": np.int16, "float32": np.float32}


def serialize_example(clip_id: int, path: str, tags: np.ndarray,
                      segments: np.ndarray) -> bytes:
    """Encodes one clip as a serialized tf.train.Example, without TensorFlow
    (worker processes call it): the bytes equal TensorFlow's deterministic
    serialization (map keys sorted), and the segments are copied once."""
    return b"".join(example_parts(clip_id, path, tags, segments))


def example_parts(clip_id: int, path: str, tags: np.ndarray, segments: np.ndarray) -> tuple:
    """`serialize_example`'s bytes in three parts, (head, segments, tail):
    the segments' bytes are a memoryview of `segments` (little-endian and
    contiguous: else of a copy), never copied."""
    dtype = segments.dtype.name
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"segments must be int16 or float32, got {dtype}")
    data = np.ascontiguousarray(segments, dtype=segments.dtype.newbyteorder("<"))
    payload = memoryview(data).cast("B") if data.size else b""
    features = {  # name -> (prefix, payload, suffix) of the Feature message
        "clip_id": _int64_feature([int(clip_id)]),
        "dtype": _bytes_feature(dtype.encode()),
        "num_segments": _int64_feature([segments.shape[0]]),
        "path": _bytes_feature(os.fsencode(path)),
        "segment_shape": _int64_feature(segments.shape[1:]),
        "segments": None,
        "tags": _int64_feature(np.asarray(tags, dtype=np.int64).ravel()),
    }
    # Feature{bytes_list: BytesList{value: [payload]}}, length-prefixed by hand
    inner = _tag(1, 2) + _varint(len(payload))
    bytes_list = _tag(1, 2) + _varint(len(inner) + len(payload)) + inner
    before, after = [], []  # the map's bytes before and after the segments' bytes
    entries = before
    for name in sorted(features):  # map entries in key order, as TensorFlow writes them
        key = name.encode()
        if name == "segments":
            feature_size = len(bytes_list) + len(payload)
            prefix = _tag(1, 2) + _varint(len(key)) + key + _tag(2, 2) + _varint(feature_size)
            entry_size = len(prefix) + feature_size
            before.append(_tag(1, 2) + _varint(entry_size) + prefix + bytes_list)
            entries = after
        else:
            feature = features[name]
            entry = _tag(1, 2) + _varint(len(key)) + key + _tag(2, 2) + _varint(
                len(feature)) + feature
            entries.append(_tag(1, 2) + _varint(len(entry)) + entry)
    size = sum(map(len, before)) + len(payload) + sum(map(len, after))
    head = b"".join([_tag(1, 2) + _varint(size), *before])  # Example{features: ...}
    return head, payload, b"".join(after)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 as its two's complement, as protobuf does
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | 0x80 if value else low)
        if not value:
            return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _int64_feature(values) -> bytes:
    """Feature{int64_list: Int64List{value: values (packed)}}."""
    packed = b"".join(_varint(int(v)) for v in values)
    int64_list = _tag(1, 2) + _varint(len(packed)) + packed if packed else b""
    return _tag(3, 2) + _varint(len(int64_list)) + int64_list


def _bytes_feature(value: bytes) -> bytes:
    """Feature{bytes_list: BytesList{value: [value]}}."""
    bytes_list = _tag(1, 2) + _varint(len(value)) + value
    return _tag(1, 2) + _varint(len(bytes_list)) + bytes_list


def feature_spec(num_tags: int) -> dict:
    import tensorflow as tf

    return {
        "clip_id": tf.io.FixedLenFeature([], tf.int64),
        "path": tf.io.FixedLenFeature([], tf.string),
        "tags": tf.io.FixedLenFeature([num_tags], tf.int64),
        "num_segments": tf.io.FixedLenFeature([], tf.int64),
        "segment_shape": tf.io.VarLenFeature(tf.int64),
        "dtype": tf.io.FixedLenFeature([], tf.string),
        "segments": tf.io.FixedLenFeature([], tf.string),
    }


def make_parser(num_tags: int, segment_shape: tuple, dtype: str, as_stored: bool = False,
                with_tags: bool = True):
    """Returns a tf function: serialized example -> dict with float32
    `segments` (num_segments, *segment_shape) (int16 scaled to [-1, 1]),
    float32 `tags` (num_tags,), int64 `clip_id`, string `path`. With
    `as_stored`, segments keep their storage dtype (see `to_float`); without
    `with_tags` the tags are not parsed at all (unlabelled audio)."""
    import tensorflow as tf

    from tagger.audio import INT16_SCALE

    spec = feature_spec(num_tags)
    if not with_tags:
        del spec["tags"]
    storage = tf.int16 if dtype == "int16" else tf.float32
    shape = [-1, *segment_shape]

    def parse(serialized):
        features = tf.io.parse_single_example(serialized, spec)
        segments = tf.io.decode_raw(features["segments"], storage, little_endian=True)
        segments = tf.reshape(segments, shape)  # (num_segments, *segment_shape)
        if dtype == "int16" and not as_stored:
            segments = tf.cast(segments, tf.float32) / INT16_SCALE
        parsed = {"clip_id": features["clip_id"], "path": features["path"],
                  "segments": segments}
        if with_tags:
            parsed["tags"] = tf.cast(features["tags"], tf.float32)
        return parsed

    return parse


def to_float(segments):
    """Stored segments (int16 or float32) as float32, int16 scaled to [-1, 1]."""
    import tensorflow as tf

    from tagger.audio import INT16_SCALE

    if segments.dtype == tf.int16:
        return tf.cast(segments, tf.float32) / INT16_SCALE
    return segments
