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

Written without TensorFlow (`serialize_example`), read by TensorFlow
(`make_parser`) or without it (`parse_clip`, over `parse_example`, a
reader of tf.train.Example's protobuf wire format).
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


def parse_example(data) -> dict:
    """The features of a serialized tf.train.Example, read from its protobuf
    wire format without TensorFlow: name -> a list of memoryviews of `data`
    (bytes_list: not copied), an int64 array (int64_list, packed or not) or
    a float32 array (float_list). A name given twice keeps its last value,
    as protobuf's map does. Bytes that are not an Example: ValueError."""
    view = memoryview(data).cast("B")
    features = {}
    for field, wire, value in _fields(view):
        if field != 1 or wire != 2:  # Example.features
            continue
        for entry_field, entry_wire, entry in _fields(value):
            if entry_field != 1 or entry_wire != 2:  # Features.feature, a map entry
                continue
            key, feature = b"", memoryview(b"")
            for part, part_wire, part_value in _fields(entry):
                if part == 1 and part_wire == 2:
                    key = bytes(part_value)
                elif part == 2 and part_wire == 2:
                    feature = part_value
            features[key.decode("utf-8", "surrogateescape")] = _feature_values(feature)
    return features


def parse_clip(data, num_tags: int, segment_shape: tuple, dtype: str,
               with_tags: bool = True) -> dict:
    """A clip's record (`serialize_example`'s) as NumPy: `clip_id` (int),
    `path` (bytes), `tags` float32 (num_tags,) (not read without
    `with_tags`), `segments` (num_segments, *segment_shape) in the storage
    dtype, a read-only view of `data`'s bytes (not copied). A record that
    does not hold such a clip: ValueError saying what is wrong."""
    features = parse_example(data)

    def field(name, kind, count=1):
        """The feature `name`: a "bytes_list" or "int64_list" of `count`
        values (None: any number)."""
        value = features.get(name)
        found = "bytes_list" if isinstance(value, list) else (
            "int64_list" if getattr(value, "dtype", None) == np.int64 else None)
        if found != kind:
            raise ValueError(f"it has no {kind} feature {name!r}")
        if count is not None and len(value) != count:
            raise ValueError(f"its feature {name!r} holds {len(value)} values, not {count}")
        return value

    stored = bytes(field("dtype", "bytes_list")[0]).decode("utf-8", "replace")
    if stored != dtype:
        raise ValueError(f"it holds {stored} segments, the dataset {dtype}")
    tags = field("tags", "int64_list", None) if with_tags else None
    if with_tags and len(tags) != num_tags:
        raise ValueError(f"it holds {len(tags)} tags, the dataset {num_tags}")
    (num_segments,) = field("num_segments", "int64_list")
    (payload,) = field("segments", "bytes_list")
    segments = np.frombuffer(payload, np.dtype(STORAGE_DTYPES[dtype]).newbyteorder("<"))
    if segments.size != num_segments * int(np.prod(segment_shape)):
        raise ValueError(f"its segments hold {segments.size} values, not "
                         f"{num_segments} segments of {tuple(segment_shape)}")
    (clip_id,) = field("clip_id", "int64_list")
    (path,) = field("path", "bytes_list")
    clip = {"clip_id": int(clip_id), "path": bytes(path),
            "segments": segments.reshape(-1, *segment_shape)}
    if with_tags:
        clip["tags"] = tags.astype(np.float32)
    return clip


def _feature_values(feature: memoryview):
    """A Feature message's list: bytes_list (1), float_list (2) or
    int64_list (3); the last kind given wins, as in a protobuf oneof."""
    kind, values = None, []
    for field, wire, value in _fields(feature):
        if wire != 2 or field not in (1, 2, 3):
            continue
        if field != kind:
            kind, values = field, []
        for item, item_wire, item_value in _fields(value):
            if item != 1:
                continue
            if kind == 1 and item_wire == 2:
                values.append(item_value)
            elif kind == 2 and item_wire == 2:  # packed floats
                values.extend(np.frombuffer(item_value, "<f4"))
            elif kind == 2 and item_wire == 5:
                values.append(np.frombuffer(item_value, "<f4")[0])
            elif kind == 3 and item_wire == 2:  # packed varints
                values.extend(_packed_varints(item_value))
            elif kind == 3 and item_wire == 0:
                values.append(item_value)
            else:
                raise ValueError(f"a feature's value has wire type {item_wire}")
    if kind == 2:
        return np.array(values, np.float32)
    if kind == 3:  # varints are the int64s' two's complement
        return np.array(values, np.uint64).view(np.int64)
    return values


def _packed_varints(data: memoryview) -> list:
    raw = np.frombuffer(data, np.uint8)
    if not (raw & 0x80).any():  # each value in one byte
        return raw.tolist()
    values, at = [], 0
    while at < len(data):
        value, at = _read_varint(data, at)
        values.append(value)
    return values


def _fields(data: memoryview):
    """(field number, wire type, value) of each field of a protobuf message:
    an int (varint), or a memoryview of `data` (the others)."""
    at, end = 0, len(data)
    while at < end:
        key = data[at]
        key, at = (key, at + 1) if key < 0x80 else _read_varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 2:
            size = data[at] if at < end else 0x80
            size, at = (size, at + 1) if size < 0x80 else _read_varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"not a tf.train.Example: wire type {wire} at byte {at}")
        if at > end:
            raise ValueError(f"not a tf.train.Example: a field runs past its message's end "
                             f"({end} bytes)")
        yield field, wire, value


def _read_varint(data: memoryview, at: int) -> tuple:
    """(value, the byte after it) of the varint at byte `at` of `data`."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value & ((1 << 64) - 1), at
        shift += 7
    raise ValueError(f"not a tf.train.Example: a varint is cut or too long at byte {at}")


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
