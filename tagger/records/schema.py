"""The one TFRecord feature spec used by both the writer and the parser.

One example per clip:
  clip_id        int64
  path           bytes   the clip's path relative to the dataset root
  tags           int64[num_tags]  multi-hot labels, in dataset_info tag order
  num_segments   int64
  segment_shape  int64[]  (segment_length,) for raw, (frames, n_mels) for log-mel
  dtype          bytes   "int16" | "float32"
  segments       bytes   the (num_segments, *segment_shape) array, little-endian
"""

from __future__ import annotations

import numpy as np

STORAGE_DTYPES = {"int16": np.int16, "float32": np.float32}


def serialize_example(clip_id: int, path: str, tags: np.ndarray,
                      segments: np.ndarray) -> bytes:
    """Encodes one clip as a serialized tf.train.Example."""
    import tensorflow as tf

    dtype = segments.dtype.name
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"segments must be int16 or float32, got {dtype}")
    data = np.ascontiguousarray(segments, dtype=segments.dtype.newbyteorder("<"))

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    def raw(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    example = tf.train.Example(features=tf.train.Features(feature={
        "clip_id": ints([int(clip_id)]),
        "path": raw(path.encode("utf-8")),
        "tags": ints(np.asarray(tags, dtype=np.int64)),
        "num_segments": ints([segments.shape[0]]),
        "segment_shape": ints(segments.shape[1:]),
        "dtype": raw(dtype.encode()),
        "segments": raw(data.tobytes()),
    }))
    return example.SerializeToString(deterministic=True)  # map keys sorted


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
