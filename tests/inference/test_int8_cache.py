"""The cache of tag.py's int8 models: a rerun on the same model and windows
reads the converted model back instead of converting again; another model,
window or calibration, or a damaged entry, converts again; what is read
back is what a conversion gives. TAGGER_HOME is a folder of each test's."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tagger.inference.export import int8_cache
from tagger.inference.export.int8_cache import cached_int8, entry_fields, entry_path
from tests.checks import call_main, read_only_path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class Converter:
    """A stand-in for the conversion: counts its calls."""

    def __init__(self, content=b"\x1c\x00\x00\x00TFL3 int8 model", select_tf_ops=False):
        self.calls, self.content, self.select_tf_ops = 0, content, select_tf_ops

    def __call__(self):
        self.calls += 1
        return self.content, self.select_tf_ops


FIELDS = dict(cache_version=int8_cache.CACHE_VERSION, engine="tflite-int8",
              model_sha256="ab" * 32, sample_rate=22050, window_samples=59049,
              calibration_windows=32, calibration_sha256="cd" * 32, tensorflow="2.99.0")


def test_second_run_reads_the_cache(home):
    convert = Converter()
    assert cached_int8(FIELDS, convert) == (convert.content, False, "")
    path = entry_path(FIELDS)
    assert path.startswith(str(home / "tflite-int8") + os.sep)
    assert open(path, "rb").read() == convert.content
    content, select_tf_ops, note = cached_int8(dict(FIELDS), convert)
    assert convert.calls == 1  # not converted again
    assert (content, select_tf_ops) == (convert.content, False)
    assert note == f"int8 calibration read from the cache ({path})"


@pytest.mark.parametrize("field, value", [
    ("model_sha256", "ef" * 32),       # another model file
    ("window_samples", 44100),         # another window
    ("sample_rate", 16000),            # another rate
    ("calibration_sha256", "01" * 32),  # other calibration windows
    ("calibration_windows", 8),
    ("tensorflow", "3.0.0"),            # another converter
])
def test_another_model_window_or_calibration_converts_again(home, field, value):
    convert = Converter()
    cached_int8(FIELDS, convert)
    other = {**FIELDS, field: value}
    assert entry_path(other) != entry_path(FIELDS)
    _, _, note = cached_int8(other, convert)
    assert convert.calls == 2 and note == ""
    cached_int8(FIELDS, convert)  # both entries are kept
    cached_int8(other, convert)
    assert convert.calls == 2


def test_an_entry_of_an_earlier_conversion_is_not_used(home):
    """Version 2 quantised every convolution the inference form rewrote
    (all five of the musicnn package's VGG); its entries are converted
    again, never read."""
    convert = Converter(content=b"\x1c\x00\x00\x00TFL3 all convolutions int8")
    cached_int8({**FIELDS, "cache_version": 2}, convert)
    content, _, note = cached_int8(FIELDS, Converter())
    assert content == Converter().content and note == ""  # converted, not read


def damage_flatbuffer(path):
    data = bytearray(open(path, "rb").read())
    data[5] ^= 0xFF
    open(path, "wb").write(bytes(data))


def truncate_flatbuffer(path):
    open(path, "wb").write(open(path, "rb").read()[:7])


def damage_record(path):
    open(os.path.splitext(path)[0] + ".json", "w").write('{"cache_version": 1, "eng')


def foreign_record(path):  # sound JSON, but another entry's fields
    record = os.path.splitext(path)[0] + ".json"
    fields = json.load(open(record))
    json.dump({**fields, "window_samples": 1}, open(record, "w"))


def wrong_select_ops(path):
    record = os.path.splitext(path)[0] + ".json"
    fields = json.load(open(record))
    json.dump({**fields, "select_tf_ops": "yes"}, open(record, "w"))


def remove_record(path):
    os.remove(os.path.splitext(path)[0] + ".json")


@pytest.mark.parametrize("damage", [damage_flatbuffer, truncate_flatbuffer, damage_record,
                                    foreign_record, wrong_select_ops, remove_record])
def test_a_damaged_entry_is_converted_again_never_trusted(home, damage):
    convert = Converter()
    cached_int8(FIELDS, convert)
    damage(entry_path(FIELDS))
    content, _, note = cached_int8(FIELDS, convert)
    assert convert.calls == 2 and content == convert.content
    assert "did not match its record; calibrated and converted again" in note
    assert cached_int8(FIELDS, convert)[2].startswith("int8 calibration read from the cache")
    assert convert.calls == 2  # the entry was rewritten whole


def test_the_record_is_the_caches_size_and_sha256_record(home):
    """The same record the pretrained store keeps for its originals
    (`tagger.cache.write_record`): the fields, the flatbuffer's size and
    sha256."""
    import hashlib

    from tagger import cache

    convert = Converter()
    cached_int8(FIELDS, convert)
    record = os.path.splitext(entry_path(FIELDS))[0] + ".json"
    assert cache.read_record(record) == {
        **FIELDS, "select_tf_ops": False, "bytes": len(convert.content),
        "sha256": hashlib.sha256(convert.content).hexdigest()}


def test_select_tf_ops_is_kept(home):
    convert = Converter(select_tf_ops=True)
    cached_int8(FIELDS, convert)
    assert cached_int8(FIELDS, convert)[:2] == (convert.content, True)


@pytest.mark.parametrize("kind", ["a file", "read-only"])
def test_a_cache_that_cannot_be_written_leaves_tagging_as_it_was(kind, tmp_path, monkeypatch):
    if kind == "a file":
        home = str(tmp_path / "home")
        (tmp_path / "home").write_text("a file where the cache folder should be")
        reason = f"{home} is a file, not a folder"
    else:
        home = read_only_path("tagger-home")  # skips where /sys accepts new files
        reason = "permission denied"
    monkeypatch.setenv("TAGGER_HOME", home)
    convert = Converter()
    content, _, note = cached_int8(FIELDS, convert)
    assert content == convert.content and convert.calls == 1
    folder = os.path.join(home, int8_cache.FOLDER)
    assert note == (f"warning: the int8 model was not cached in {folder} ({reason}; set "
                    "TAGGER_HOME to a folder you may write to); the next run converts it again")


def test_entry_fields_follow_the_model_and_the_windows(cnn, spectrogram, home):
    from tagger.inference.common import model_fingerprint

    windows = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    fields = entry_fields(cnn[0], 22050, 100, windows)
    assert fields == entry_fields(cnn[0], 22050, 100, windows.copy())  # deterministic
    assert fields["calibration_windows"] == 4
    assert fields["model_sha256"] == model_fingerprint(cnn[0])  # the database's key
    assert entry_fields(spectrogram[0], 22050, 100, windows)["model_sha256"] != \
        fields["model_sha256"]
    moved = windows.copy()
    moved[3, 99] += 1e-6
    assert entry_fields(cnn[0], 22050, 100, moved)["calibration_sha256"] != \
        fields["calibration_sha256"]
    assert entry_fields(cnn[0], 22050, 100, windows[:3])["calibration_sha256"] != \
        fields["calibration_sha256"]


@pytest.mark.slow
def test_cached_engine_equals_an_uncached_conversion_and_tag_says_so(cnn, music, home,
                                                                    monkeypatch, capsys):
    """Two real conversions: the first run's (cached), and one without the
    cache; the second run and tag.py read the cache."""
    from tagger.commands import tag as tag_cli
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.engine.tflite import TFLitePredictor
    from tagger.inference.export import formats as export
    from tagger.inference.export.quantize import calibration_windows
    from tagger.models.saved import load_tagger

    path = cnn[0]
    model, info = load_tagger(path)
    files = [str(music / "a.wav"), str(music / "d.mp3")]
    calibration = calibration_windows(files, 22050, 59049)
    cached = entry_path(entry_fields(path, 22050, 59049, calibration))
    conversions = []
    real = export.tflite_bytes
    monkeypatch.setattr(export, "tflite_bytes",
                        lambda *a, **k: conversions.append(a[1]) or real(*a, **k))

    def int8_predictor():
        made = make_predictor("tflite-int8", model, info,
                              EngineOptions(model_path=path, calibration_audio=lambda: files))
        return made, made.note

    first, note = int8_predictor()
    assert conversions == ["int8"] and note == "" and os.path.isfile(cached)
    second, note = int8_predictor()
    assert conversions == ["int8"]  # read back, not converted
    assert note == f"int8 calibration read from the cache ({cached})"
    uncached = TFLitePredictor(model, info, "tflite-int8", calibration=calibration)
    assert len(conversions) == 2
    assert second.content == uncached.content == first.content  # bytes equal
    windows = np.random.default_rng(1).uniform(-0.5, 0.5, (3, 59049)).astype(np.float32)
    np.testing.assert_array_equal(second(windows)[0], uncached(windows)[0])

    code, out, err = call_main(tag_cli.main, capsys, path, *files, "--engine", "tflite-int8",
                               "--format", "csv", "--no-progress")
    assert code == 0 and len(conversions) == 2
    assert err.splitlines()[0] == f"int8 calibration read from the cache ({cached})"
    assert err.splitlines()[1].startswith("note: --engine tflite-int8 runs this model at ")
    assert len(err.splitlines()) == 2
    assert len(out.splitlines()) == 3  # header and two files
