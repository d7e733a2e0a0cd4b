"""TFRecord framing without TensorFlow: the bytes tf.io.TFRecordWriter writes,
records tf.data reads back, shards of a build that TensorFlow would
have written the same, and the framing's reader (both CRCs checked)."""

import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from tagger import fileio
from tagger.records.schema import example_parts, serialize_example
from tagger.records.tfrecord import (
    DamagedRecords,
    frame,
    frame_bytes,
    framing,
    framing_sha256,
    masked_crc32c,
    open_record_file,
    read_framing,
    read_records,
    read_span,
)
from tests.checks import framing_of_file


def tensorflow_file(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path.read_bytes()


def our_file(path, records):
    with open_record_file(str(path)) as file:
        for record in records:
            for part in frame([record]):
                file.write(part)
    return path.read_bytes()


RECORDS = [b"", b"x", bytes(range(256)) * 3, np.random.default_rng(0).bytes(70_001)]


def test_masked_crc_of_known_values():
    # CRC32C("123456789") = 0xe3069283 (RFC 3720's check value), masked
    crc = 0xE3069283
    assert masked_crc32c([b"123456789"]) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32
    assert masked_crc32c([b"1234", memoryview(b"56789")]) == masked_crc32c([b"123456789"])


def test_files_equal_tensorflow_writer_and_read_back(tmp_path):
    ours = our_file(tmp_path / "ours.tfrecord", RECORDS)
    assert ours == tensorflow_file(tmp_path / "tf.tfrecord", RECORDS)
    assert len(ours) == sum(len(r) + 16 for r in RECORDS)
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))]
    assert read == RECORDS


def test_an_example_framed_in_parts_equals_the_joined_record(tmp_path):
    segments = np.random.default_rng(1).integers(-30000, 30000, (3, 59049)).astype(np.int16)
    parts = example_parts(7, "a/b.mp3", np.array([0, 1, 1]), segments)
    framed = frame(parts)
    assert len(framed) == 3  # head and tail joined with the framing
    for part in parts[1], framed[1]:  # the segments are not copied
        assert np.shares_memory(np.frombuffer(part, np.int16), segments)
    record = serialize_example(7, "a/b.mp3", np.array([0, 1, 1]), segments)
    assert b"".join(framed) == frame_bytes(record)
    assert our_file(tmp_path / "a", [record]) == tensorflow_file(tmp_path / "b", [record])


def test_a_file_through_tf_gfile(tmp_path):
    path = "ram://tfrecord_test/records.tfrecord"
    with open_record_file(path) as file:
        for record in RECORDS:
            for part in frame([memoryview(record)]):
                file.write(part)
    with tf.io.gfile.GFile(path, "rb") as f:
        assert f.read() == tensorflow_file(tmp_path / "tf.tfrecord", RECORDS)


@pytest.mark.parametrize("path", ["local", "ram://tfrecord_test/framing.tfrecord"])
def test_the_framing_digest_reads_each_records_length_and_checksums(path, tmp_path):
    path = str(tmp_path / "ours.tfrecord") if path == "local" else path
    with open_record_file(path) as file:
        for record in RECORDS:
            for part in frame([record]):
                file.write(part)
    data = tf.io.gfile.GFile(path, "rb").read()
    expected = framing_of_file(data)
    assert len(expected) == 16 * len(RECORDS)
    assert framing_sha256(path) == hashlib.sha256(expected).hexdigest()
    assert b"".join(framing(frame([r])) for r in RECORDS) == expected


@pytest.mark.parametrize("path", ["local", "ram://tfrecord_test/damaged.tfrecord"])
def test_reading_the_framing_finds_records_cut_short_or_damaged(path, tmp_path):
    """Only the framing read: a record cut short or a damaged length is
    found; the data read too: a changed data byte is found as well. The
    digest is of the whole records before the damage."""
    path = str(tmp_path / "records.tfrecord") if path == "local" else path
    data = b"".join(frame_bytes(r) for r in RECORDS)
    last = len(data) - len(RECORDS[-1]) - 16  # where the last record starts
    whole = hashlib.sha256(framing_of_file(data[:last])).hexdigest()
    changed = bytearray(data)
    changed[last + 12 + 5] ^= 1
    length_changed = bytearray(data)
    length_changed[last] ^= 1
    cases = [(data, False, None), (data, True, None),
             (data[:-100], False,
              f"its record at byte {last} is cut short: the file ends at byte {len(data) - 100}"),
             (data[:last + 7], True,
              f"its record at byte {last} is cut short: the file ends at byte {last + 7}"),
             (bytes(length_changed), False,
              f"the length of its record at byte {last} does not match its CRC32C"),
             (bytes(changed), False, None),
             (bytes(changed), True,
              f"the data of its record at byte {last} does not match its CRC32C")]
    for number, (content, check_data, problem) in enumerate(cases):
        written = f"{path}.{number}"  # ram:// appends to a file written again
        with tf.io.gfile.GFile(written, "wb") as file:
            file.write(content)
        digest, found = read_framing(written, check_data=check_data)
        assert found == problem
        assert digest == (framing_sha256(written) if problem is None else whole)
    assert read_framing(f"{path}.0")[0] == hashlib.sha256(framing_of_file(data)).hexdigest()


def test_the_framing_stands_for_the_data():
    """One byte of a large record changed, or two bytes swapped: another
    framing (its data CRC), at the same length."""
    record = bytearray(RECORDS[-1])
    changed, swapped = bytearray(record), bytearray(record)
    changed[40_000] ^= 1
    swapped[10], swapped[11] = record[11], record[10]
    assert record[10] != record[11]
    framings = {framing(frame([bytes(r)])) for r in (record, changed, swapped)}
    assert len(framings) == 3 and len({f[:8] for f in framings}) == 1


@pytest.mark.parametrize("records", ["raw_records", "logmel_records"])
def test_shards_are_what_tensorflow_writes_for_their_records(records, request, tmp_path):
    folder, info = request.getfixturevalue(records)
    shards = [name for split in info.splits.values() for name in split["shards"]]
    assert len(shards) > 3
    for name in shards:
        path = os.path.join(folder, name)
        records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
        with open(path, "rb") as f:
            assert f.read() == tensorflow_file(tmp_path / name, records), name


def read_back(path):
    """(every record read in order, every record read again at its data's
    offset, last first); the walk without the data finds the same records."""
    with fileio.open_file(str(path), "rb") as file:
        records = list(read_records(file))
        skipped = list(read_records(file, data=False))
        assert [r._replace(data=None) for r in records] == skipped
        return ([bytes(r.data) for r in records],
                [bytes(read_span(file, r.offset, r.length)) for r in reversed(skipped)][::-1])


@pytest.mark.parametrize("folder", ["local", "ram://tfrecord_test/read_back"])
def test_the_reader_reads_back_what_either_writer_wrote(folder, tmp_path):
    """Both walks (the data read or skipped) and each record read again,
    from a local file and through tf.io.gfile."""
    folder = str(tmp_path) if folder == "local" else folder
    ours, theirs = f"{folder}/ours.tfrecord", f"{folder}/tf.tfrecord"
    with open_record_file(ours) as file:
        for record in RECORDS:
            for part in frame([record]):
                file.write(part)
    with tf.io.TFRecordWriter(theirs) as writer:
        for record in RECORDS:
            writer.write(record)
    for path in ours, theirs:
        assert read_back(path) == (RECORDS, RECORDS)
    with fileio.open_file(ours, "rb") as file:
        records = list(read_records(file, data=False))
    lengths = [len(r) for r in RECORDS]
    assert [r.length for r in records] == lengths
    assert [r.offset for r in records] == [12 + sum(n + 16 for n in lengths[:i])
                                           for i in range(len(RECORDS))]
    assert [r.framing for r in records] == [framing(frame([r])) for r in RECORDS]


def test_tensorflow_reads_what_the_reader_reads_in_a_built_shard(raw_records):
    folder, info = raw_records
    path = os.path.join(folder, info.splits["train"]["shards"][0])
    records, at_spans = read_back(path)
    assert records == at_spans
    assert records == [r.numpy() for r in tf.data.TFRecordDataset(path)]


def damaged(tmp_path, position, value=None):
    """A file of RECORDS with the byte at `position` flipped (or cut there)."""
    data = bytearray(our_file(tmp_path / "whole.tfrecord", RECORDS))
    if value is None:
        data = data[:position]
    else:
        data[position] ^= value
    path = tmp_path / "damaged.tfrecord"
    path.write_bytes(bytes(data))
    return path


THIRD = 32 + len(RECORDS[0]) + len(RECORDS[1])  # where the third record's frame starts


@pytest.mark.parametrize("position,value,message", [
    (THIRD + 12, 0x01, f"the data of its record at byte {THIRD} does not match its CRC32C"),
    (THIRD + 12 + 1, 0x80, f"the data of its record at byte {THIRD} does not match its CRC32C"),
    (THIRD + 16 + len(RECORDS[2]) - 1, 0x01,  # the data's CRC itself
     f"the data of its record at byte {THIRD} does not match its CRC32C"),
    (THIRD + 3, 0x10, f"the length of its record at byte {THIRD} does not match its CRC32C"),
    (THIRD + 9, 0x01, f"the length of its record at byte {THIRD} does not match its CRC32C"),
])
def test_a_flipped_bit_fails_a_checksum(tmp_path, position, value, message):
    path = damaged(tmp_path, position, value)
    with open(path, "rb") as file, pytest.raises(DamagedRecords) as error:
        list(read_records(file))
    assert str(error.value) == message
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_a_flipped_data_byte_fails_when_its_span_is_read(tmp_path):
    path = damaged(tmp_path, THIRD + 20, 0x04)
    with open(path, "rb") as file:
        records = list(read_records(file, data=False))  # the lengths are intact
        assert [bytes(read_span(file, r.offset, r.length)) for r in records[:2]] == RECORDS[:2]
        with pytest.raises(DamagedRecords) as error:
            read_span(file, records[2].offset, records[2].length)
    assert str(error.value) == f"the data of its record at byte {THIRD} does not match its CRC32C"


@pytest.mark.parametrize("cut", [THIRD + 5, THIRD + 12 + 1])
def test_a_cut_file_says_where(tmp_path, cut):
    """In its header or in its data: the same line whether the data is
    read, skipped, or read again at its offset."""
    path = damaged(tmp_path, cut)
    message = f"its record at byte {THIRD} is cut short: the file ends at byte {cut}"
    for data in True, False:
        with open(path, "rb") as file, pytest.raises(DamagedRecords) as error:
            list(read_records(file, data=data))
        assert str(error.value) == message
    with open(path, "rb") as file, pytest.raises(DamagedRecords) as error:
        read_span(file, THIRD + 12, len(RECORDS[2]))
    assert str(error.value) == message


def test_a_file_cut_at_a_record_boundary_reads_as_fewer_records(tmp_path):
    path = damaged(tmp_path, THIRD)
    assert read_back(path) == (RECORDS[:2], RECORDS[:2])
