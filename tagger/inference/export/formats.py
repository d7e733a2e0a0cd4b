"""Exporting a saved tagger for serving: SavedModel and TFLite.

Both take raw mono float32 audio at the model's sample rate, in windows of
the model's input length (`window_samples`); a log-mel-input model gets
its `LogMel` front end folded in (`raw_audio_input`), so every exported
tagger takes the same kind of input. A file's windows start every
`hop_samples` samples of the file padded by `edge_padding` samples
(reflected) at each edge: for most models the window and 0, for the
musicnn package's 47872 and 256 (`tagger.models.saved.window_grid`).

SavedModel (a folder), written with `keras.export.ExportArchive`:

    signature        input                                 output
    serving_default  waveform (batch, window_samples) f32  scores (batch, tags)
    serve            same as serving_default
    serve_window     waveform (window_samples,) f32        scores (tags,)
    tags             -                                     tags (tags,) string
    info             -                                     sample_rate, window_samples,
                                                           hop_samples, edge_padding (int32)

`assets/tags.txt` holds the tag names, one a line in the model's order;
the `tags` signature reads them from that asset (a lookup table initialised
from the file), so the names travel with the model. `assets.extra/
tagger_info.json` is the model's info dict (tag names, sample rate, window,
family, log-mel settings). Reloaded with `tf.saved_model.load(path)`, the
endpoints are also callable attributes: `m.serve(x)["scores"]`,
`m.tags()["tags"]`.

TFLite (one file): the `serve` signature, `waveform (batch,
window_samples)` -> `scores (batch, tags)` with a dynamic batch (resize the
input, or use a signature runner); run it with LiteRT (`pip install
ai-edge-litert`, `from ai_edge_litert.interpreter import Interpreter`). Built-in
TFLite ops are tried first;
select TensorFlow ops are enabled only if the converter needs them. The tag
names go beside it, in `<out>.tags.txt`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile

import numpy as np

from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.runtime import native_stderr_silenced

TAGS_ASSET = "tags.txt"
INFO_EXTRA = os.path.join("assets.extra", "tagger_info.json")
# What a SavedModel export writes at the top of its folder: `--overwrite`
# replaces a folder holding only these, and refuses one holding anything else.
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets",
                                  "assets.extra"})


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    tags_path: str  # the tag names file (inside or beside the export)
    sample_rate: int
    window_samples: int
    tag_names: tuple
    max_difference: float | None  # against the Keras model; None: not verified
    select_tf_ops: bool = False  # TFLite only: needs the Flex delegate
    quantization: str | None = None  # TFLite only: fp16, dynamic or int8
    bound: float | None = None  # the largest max_difference accepted (when verified)
    hop_samples: int | None = None  # a file's windows start this far apart (None: the window)
    edge_padding: int = 0  # in the file padded by this many samples at each edge (reflected)


def check_tensorflow(what: str, instead: str) -> None:
    """A UserError where `what` (a SavedModel, a TFLite model: TensorFlow's
    own formats, which TensorFlow writes from Keras on TensorFlow) cannot be
    written in this process: TensorFlow cannot be imported, or Keras runs
    on another backend (`backends.without_keras_on_tensorflow`); `instead`:
    what to do."""
    from tagger.backends import without_keras_on_tensorflow

    why = without_keras_on_tensorflow()
    if why:
        raise UserError(f"{what} is TensorFlow's own format, written by TensorFlow from "
                        f"Keras on TensorFlow, and {why}; {instead}")


def default_out(model_path: str, fmt: str) -> str:
    """`run/model.keras` -> `run/model_saved_model` or `run/model.tflite`."""
    stem = os.path.splitext(str(model_path))[0]
    return f"{stem}_saved_model" if fmt == "saved_model" else f"{stem}.tflite"


def export(config, log=print) -> ExportResult:
    """Loads `config.model` and writes it as `config.format` (ExportConfig)."""
    from tagger import destination, fileio
    from tagger.models.saved import load_tagger

    check_tensorflow(f"--format {config.format}: "
                     + ("a SavedModel" if config.format == "saved_model" else "a TFLite file"),
                     "export where TensorFlow is installed, with KERAS_BACKEND unset or "
                     "tensorflow (a tagger trained under JAX exports there)")
    out = config.out or default_out(config.model, config.format)
    check_destination(out, config.format, config.overwrite, config.model)
    model, info = load_tagger(config.model)
    destination.prepare_output_dir(os.path.dirname(os.path.abspath(out)), "--out", named=out)
    serving = ServingModel(model, info)
    if serving.warning:
        log(f"warning: {serving.warning}")
    calibration = None
    if config.quantization == "int8":
        calibration = _calibration(model, serving, config.calibration_audio)
    bound = max_score_difference(config)
    # Written under a temporary name (a folder) or held in memory (a TFLite
    # file), verified, and only then put at `out`: a failed conversion or
    # verification leaves nothing behind.
    tmp = _temporary_beside(out) if config.format == "saved_model" else None
    try:
        if config.format == "saved_model":
            _write_saved_model(serving, tmp)
            tags_path = os.path.join(out, "assets", TAGS_ASSET)
            select, flat = False, None
        else:
            with native_stderr_silenced():  # the int8 calibrator's "fully_quantize: 0, ..."
                flat, select = tflite_bytes(serving, config.quantization, calibration)
            if config.quantization == "int8":
                _check_quantised(flat, select)
            tags_path = f"{out}.tags.txt"
        difference = None
        if config.verify:
            x = check_waveforms(serving.window_samples)
            expected = serving.predict(x)
            with native_stderr_silenced():
                got = (saved_model_scores(tmp, x) if config.format == "saved_model"
                       else tflite_scores(None, x, select, content=flat))
            difference = float(np.max(np.abs(got - expected)))
            if not difference <= bound:  # NaN fails too
                kind = config.quantization or "float32"
                raise UserError(
                    f"verification failed: the {kind} export's scores differ from the Keras "
                    f"model's by up to {difference:.2g}, above the bound {bound:g} "
                    f"(--max-score-difference); nothing was written. "
                    + ("Calibrate on audio like what the model will tag, or "
                       if kind == "int8" else "")
                    + "raise the bound if this difference is acceptable")
        if config.format == "saved_model":
            _replace(tmp, out)
        else:
            fileio.write_atomic(out, flat)
            fileio.write_atomic(tags_path, "".join(f"{name}\n" for name in serving.tag_names))
    except OSError as error:  # a full disk, a folder made read-only meanwhile
        raise destination.output_error("--out", out, error) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if select:
        log("note: the TFLite model uses select TensorFlow ops; run it with the "
            "Flex delegate (included in the tensorflow pip package)")
    return ExportResult(out, config.format, tags_path, serving.sample_rate,
                        serving.window_samples, tuple(serving.tag_names), difference,
                        select, config.quantization, bound if config.verify else None,
                        serving.hop_samples, serving.edge_padding)


# The largest score difference from the Keras model an export may show on
# the check waveforms before it is refused (export.py --max-score-difference
# raises it): float32 exports match to rounding; fp16 weights, dynamic and
# int8 quantisation move scores by a few hundredths when they work, and by
# tenths when int8 ranges were measured on audio unlike the check input.
MAX_SCORE_DIFFERENCE = {None: 1e-3, "fp16": 0.02, "dynamic": 0.05, "int8": 0.08}


def max_score_difference(config) -> float:
    """`config.max_score_difference`, or the default bound for its quantisation."""
    if config.max_score_difference is not None:
        return float(config.max_score_difference)
    return MAX_SCORE_DIFFERENCE[config.quantization]


def _calibration(model, serving: ServingModel, inputs) -> np.ndarray:
    """Calibration windows (n, window_samples) for int8 from the audio named
    by `inputs` (quantize.calibration_windows); UserError for inputs without
    decodable audio, or audio that cannot set ranges."""
    from tagger.inference.export.quantize import calibration_windows
    from tagger.inference.inputs import find_audio

    found = find_audio(inputs, recursive=True)
    try:
        with native_stderr_silenced():
            windows = calibration_windows(found.files, serving.sample_rate,
                                          serving.window_samples)
    except ValueError as error:
        raise UserError(str(error)) from None
    if len(windows) == 0:
        named = ", ".join(repr(str(p)) for p in inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        why = f"{len(found.files)} file(s) tried, none decoded" if found.files else \
            "no audio files there"
        if found.missing:
            path, reason = found.missing[0]
            why += f"; {path!r}: {reason}"
        raise UserError(f"--calibration-audio {named}: no decodable audio found ({why}); "
                        "name audio files or folders")
    return windows


def _check_quantised(content: bytes, select_tf_ops: bool) -> None:
    """A UserError when the int8 flatbuffer `content` holds no int8 tensor:
    int8 found nothing to quantise, and the file would be float32 under
    int8's name."""
    from tagger.inference.export.quantize import NOTHING_QUANTISED, int8_weights

    if not int8_weights(tflite_interpreter(content=content, select_tf_ops=select_tf_ops)):
        raise UserError(f"{NOTHING_QUANTISED}; nothing was written: export it without "
                        "--quantization, or with --quantization fp16 or dynamic")


def check_destination(out: str, fmt: str, overwrite: bool, model: str | None = None) -> None:
    """Refuses, in one line, an output that must not be replaced: anything
    without `overwrite`; with it, a file where a SavedModel folder goes, a
    folder where a TFLite file goes, or a folder holding files an export
    does not write (they are the user's: never deleted), or that is not an
    export (a TFLite file without the TFL3 mark, a SavedModel folder without
    assets/tags.txt); and, always, the model itself."""
    from tagger import destination, fileio

    if model is not None and destination.input_clash(out, [model]) is not None:
        raise UserError(f"--out {out!r} is the model being exported; writing it would "
                        "destroy it: choose another --out")
    tags = f"{out}.tags.txt"  # a TFLite export's tag names, beside it
    if fmt != "saved_model" and os.path.lexists(tags):
        if not overwrite:
            raise UserError(f"{tags!r} exists (the export's tag names go there); pass "
                            "--overwrite to replace it or choose --out")
        if os.path.isdir(tags):
            raise UserError(f"{tags!r} is a folder (the export's tag names go there); "
                            "choose another --out")
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise UserError(f"{out!r} exists; pass --overwrite to replace it or choose --out")
    if fmt == "saved_model":
        if not os.path.isdir(out):
            raise UserError(f"--out {out!r} is a file, not a SavedModel folder; choose "
                            "another --out (the file is left as it is)")
        foreign = sorted(set(os.listdir(out)) - SAVED_MODEL_ENTRIES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise UserError(f"--out {out!r} holds {len(foreign)} file(s) an export does not "
                            f"write ({shown}); --overwrite replaces only a SavedModel "
                            "folder: choose a new folder or move those files")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, "assets", TAGS_ASSET)):
            raise UserError(f"--out {out!r} is not a SavedModel export.py wrote (no assets/"
                            f"{TAGS_ASSET}); --overwrite replaces only those: choose a new "
                            "folder")
    elif os.path.isdir(out):
        raise UserError(f"--out {out!r} is a folder; a TFLite export is one file: "
                        "give a file name")
    elif os.path.getsize(out) and fileio.head_bytes(out, 8)[4:8] != b"TFL3":
        raise UserError(f"--out {out!r} is not a TFLite model (no TFL3 mark); --overwrite "
                        "replaces only an earlier export: choose another --out")


class ServingModel:
    """A saved tagger as a Keras model from raw windows to scores.

    `model`: `(batch, window_samples)` float32 at `sample_rate` ->
    `(batch, tags)`, the tagger in its inference form
    (`tagger.models.inference_graph`: the same scores, faster kernels);
    `tag_names` from its metadata (tag_0.. and a `warning` for a model
    without them); `metadata`: its TaggerMetadata (or None); `info`: what
    goes into `assets.extra/tagger_info.json`; `int8_scope`: what int8
    quantises (`quantize.int8_scope`); `image_convolutions`: the names of
    the inference form's convolutions over the log-mel image (what int8 of
    scope FRONT_END quantises, `inference_graph.image_convolutions`).
    """

    def __init__(self, model, info: TaggerMetadata | None):
        import keras

        from tagger.inference.export.quantize import int8_scope
        from tagger.models.inference_graph import image_convolutions, inference_model
        from tagger.models.saved import raw_audio_input, tag_names_of, window_grid

        self.sample_rate, self.window_samples, to_model_input = raw_audio_input(model, info)
        self.hop_samples, self.edge_padding = window_grid(model, info, self.window_samples)
        self.tag_names, self.warning = tag_names_of(model, info)
        bad = [name for name in self.tag_names if "\n" in name or "\r" in name]
        if bad:
            raise UserError(f"tag names must not contain line breaks: {bad[:3]}")
        waveform = keras.Input((self.window_samples,), name="waveform")  # (batch, samples)
        fast = inference_model(model)
        self.model = keras.Model(waveform, fast(to_model_input(waveform)),
                                 name=f"{model.name}_serving")
        self.int8_scope = int8_scope(model, info)
        self.image_convolutions = image_convolutions(fast)
        self._original = (model, to_model_input)
        self.metadata = info
        self.info = info.to_json() if info else {}
        self.info.update(tag_names=list(self.tag_names), sample_rate=self.sample_rate,
                         window_samples=self.window_samples, hop_samples=self.hop_samples,
                         edge_padding=self.edge_padding,
                         serving_input="waveform (batch, window_samples) float32, mono")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The saved model's own scores for windows `x` (not its inference
        form's: what an export is checked against)."""
        model, to_model_input = self._original
        return np.asarray(model(to_model_input(x), training=False), np.float32)


def _write_saved_model(serving: ServingModel, path: str, endpoints=("all",)) -> None:
    import keras
    import tensorflow as tf

    model, window, names = serving.model, serving.window_samples, serving.tag_names
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda waveform: {"scores": model(waveform, training=False)},
        input_signature=[tf.TensorSpec((None, window), tf.float32, name="waveform")])
    if endpoints != ("serve",):
        archive.add_endpoint(
            "serve_window",
            lambda waveform: {"scores": model(waveform[None], training=False)[0]},
            input_signature=[tf.TensorSpec((window,), tf.float32, name="waveform")])
        with tempfile.TemporaryDirectory() as folder:
            tags_file = os.path.join(folder, TAGS_ASSET)
            with open(tags_file, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{name}\n" for name in names))
            table = tf.lookup.StaticHashTable(  # line number -> line of tags.txt
                tf.lookup.TextFileInitializer(
                    tags_file, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                    tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
                default_value="")
            archive.track(table)
            count = len(names)
            archive.add_endpoint(
                "tags", lambda: {"tags": table.lookup(tf.range(count, dtype=tf.int64))},
                input_signature=[])
            rate, hop, edge = serving.sample_rate, serving.hop_samples, serving.edge_padding
            archive.add_endpoint(
                "info", lambda: {"sample_rate": tf.constant(rate, tf.int32),
                                 "window_samples": tf.constant(window, tf.int32),
                                 "hop_samples": tf.constant(hop, tf.int32),
                                 "edge_padding": tf.constant(edge, tf.int32)},
                input_signature=[])
            archive.write_out(path, verbose=False)  # copies tags.txt into assets/
        os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
        with open(os.path.join(path, INFO_EXTRA), "w", encoding="utf-8") as handle:
            json.dump(serving.info, handle, indent=2, ensure_ascii=False)
    else:
        archive.write_out(path, verbose=False)


# TFLite quantisation: None keeps float32; "fp16" stores the weights as
# float16 (computed in float32 on CPU); "dynamic" stores them as int8 and
# quantises activations on the fly (dynamic-range quantisation); "int8"
# quantises weights and activations with ranges measured on calibration
# windows (the waveform in and the scores out stay float32): every op with
# an int8 kernel for a waveform model (full integer quantisation), the
# convolutions over the log-mel image for a spectrogram model
# (`quantize.int8_scope`; its log-mel front end and the rest stay float32).
TFLITE_QUANTISATIONS = (None, "fp16", "dynamic", "int8")


def tflite_bytes(serving: ServingModel, quantisation: str | None = None,
                 calibration: np.ndarray | None = None) -> tuple[bytes, bool]:
    """The `serve` signature of `serving` as a TFLite flatbuffer, and whether
    select TF ops were needed (built-in ops are tried first). "int8" needs
    `calibration`, float32 windows (n, window_samples) of the audio the
    model will see."""
    import tensorflow as tf

    if quantisation not in TFLITE_QUANTISATIONS:
        raise ValueError(f"quantisation must be one of {TFLITE_QUANTISATIONS}, "
                         f"got {quantisation!r}")
    if (quantisation == "int8") != (calibration is not None):
        raise ValueError("calibration windows go with int8 quantisation, and only with it")
    if calibration is not None and (calibration.ndim != 2 or len(calibration) == 0
                                    or calibration.shape[1] != serving.window_samples):
        raise ValueError(f"calibration must be (n >= 1, {serving.window_samples}) windows, "
                         f"got shape {calibration.shape}")
    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "saved_model")
        _write_saved_model(serving, saved, endpoints=("serve",))
        try:
            return _convert(tf, saved, False, quantisation, calibration,
                            serving.int8_scope, serving.image_convolutions), False
        except Exception:  # the converter raises ConverterError and others
            return _convert(tf, saved, True, quantisation, calibration,
                            serving.int8_scope, serving.image_convolutions), True


def _convert(tf, saved_model_dir: str, select_tf_ops: bool,
             quantisation: str | None = None, calibration: np.ndarray | None = None,
             int8_scope: str = "full", image_convolutions: tuple = ()) -> bytes:
    """The flatbuffer of the `serve` signature in `saved_model_dir`; with
    `calibration`, int8 of `int8_scope` (quantize.FULL or FRONT_END: the
    layers named by `image_convolutions`)."""
    def converter():
        made = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                        signature_keys=["serve"])
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if select_tf_ops:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        made.target_spec.supported_ops = ops
        return made

    quantised = converter()
    if quantisation is not None:
        quantised.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantisation == "fp16":
            quantised.target_spec.supported_types = [tf.float16]
    if calibration is None:
        return quantised.convert()
    import warnings

    from tagger.inference.export.quantize import FULL

    windows = np.asarray(calibration, np.float32)
    quantised.representative_dataset = lambda: (
        {"waveform": windows[i:i + 1]} for i in range(len(windows)))
    with warnings.catch_warnings():  # the calibrator's tf.lite.Interpreter deprecation notice
        warnings.simplefilter("ignore")
        if int8_scope == FULL:
            return quantised.convert()
        floating = converter().convert()
        kept = _float_nodes(floating, image_convolutions)
        if kept is None:  # nothing to quantise: the float32 model (the engine says so)
            return floating
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=quantised, debug_options=options,
            debug_dataset=lambda: ({"waveform": windows[i:i + 1]} for i in range(1)))
        return debugger.get_nondebug_quantized_model()


def _float_nodes(content: bytes, layers: tuple) -> list[str] | None:
    """The ops of the float32 flatbuffer `content` (by their output tensors'
    names) that int8 of scope FRONT_END leaves float32: all but those of the
    `layers`, the inference form's convolutions over the log-mel image
    (`ServingModel.image_convolutions`: the convolution, its input's
    stacking, its pooling); None when that is every op."""
    if not layers:
        return None
    # a layer's ops are named `.../<layer>/...`, or `.../<layer>_<n>/...`
    # when the layer's name scope was entered again
    names = "|".join(map(re.escape, layers))
    within = re.compile(rf"(?:^|[/;])(?:{names})(?:_\d+)?(?:/|;|$)")
    interpreter = tflite_interpreter(content=content)
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    kept, quantised = [], False
    for op in tflite_ops(interpreter):
        outputs = [tensors[i] for i in op["outputs"]]
        if any(within.search(name) and "log_mel" not in name for name in outputs):
            quantised = True
        else:
            kept.extend(outputs)
    return kept if quantised else None


# -- checking an export --------------------------------------------------------
def check_waveforms(window_samples: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    """Tones in noise, (batch, window_samples) float32: a parity check input."""
    rng = np.random.default_rng(seed)
    t = np.arange(window_samples) / 22050.0
    freqs = rng.uniform(100.0, 3000.0, size=(batch, 1))
    x = 0.4 * np.sin(2 * np.pi * freqs * t) + 0.05 * rng.standard_normal((batch, window_samples))
    return x.astype(np.float32)


def saved_model_scores(path: str, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return loaded.signatures["serving_default"](waveform=tf.constant(x))["scores"].numpy()


def tflite_interpreter(path: str | None = None, select_tf_ops: bool = False,
                       num_threads: int | None = None, content: bytes | None = None):
    """A TFLite interpreter for the file `path` (or the flatbuffer
    `content`): LiteRT's (`ai_edge_litert`, the
    maintained package) when it is installed, else TensorFlow's deprecated
    `tf.lite.Interpreter`. A model that needs select TensorFlow ops (the
    Flex delegate, shipped inside tensorflow) always gets TensorFlow's."""
    if not select_tf_ops:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            pass
        else:
            return Interpreter(model_path=path, model_content=content,
                               num_threads=num_threads)
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=path, model_content=content,
                                   num_threads=num_threads)


def tflite_ops(interpreter) -> list[dict]:
    """The ops of the model of `interpreter` (LiteRT's or TensorFlow's), in
    order: dicts with "op_name" ("CONV_2D", ...), "inputs" and "outputs"
    (indices of `get_tensor_details()`). Neither interpreter lists its ops
    publicly: this function alone calls their `_get_ops_details` (checked
    with ai-edge-litert 2.3 and TensorFlow 2.21; tests/inference/test_export.py
    fails if it changes)."""
    return interpreter._get_ops_details()


def tflite_scores(path: str | None, x: np.ndarray, select_tf_ops: bool = False,
                  content: bytes | None = None) -> np.ndarray:
    """Scores of `x` from the TFLite file `path` (or the flatbuffer `content`)."""
    runner = tflite_interpreter(path, select_tf_ops,
                                content=content).get_signature_runner("serve")
    return np.asarray(runner(waveform=x)["scores"])


# -- files ---------------------------------------------------------------------
def _temporary_beside(out: str) -> str:
    """An empty folder beside `out`, with the permissions of a new folder."""
    parent = os.path.dirname(os.path.abspath(out))
    path = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    return path


def _replace(new: str, out: str) -> None:
    """Moves the finished folder `new` to `out`, replacing what is there."""
    if os.path.isdir(out):
        old = _temporary_beside(out)
        os.rmdir(old)
        os.rename(out, old)
        os.rename(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if os.path.exists(out):
            os.remove(out)
        os.rename(new, out)
