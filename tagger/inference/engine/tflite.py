"""A saved tagger converted to TFLite and run by LiteRT: the `--engine
tflite*` choices of tag.py.

The model (with its log-mel front end, for spectrogram families) is
converted in memory to the same `serve` signature export.py writes
(`waveform (batch, window_samples)` -> `scores (batch, tags)`), optionally
with quantised weights (and, for "tflite-int8", activations quantised with
ranges measured on windows of the audio to be tagged), and run by LiteRT's
interpreter with XNNPACK on every core. A `Predictor` (engine/predictor.py)
without embeddings.
"""

from __future__ import annotations

import numpy as np

from tagger import fileio
from tagger.errors import UserError
from tagger.inference.common import available_cores
from tagger.inference.engine.predictor import Predictor
from tagger.inference.export.quantize import FRONT_END, NOTHING_QUANTISED, int8_weights
from tagger.models.tagger_metadata import TaggerMetadata

ENGINES = {"tflite": None, "tflite-fp16": "fp16", "tflite-dynamic": "dynamic",
           "tflite-int8": "int8"}


# What tflite-fp16 and tflite-dynamic do to a spectrogram model, whose log-mel
# front end and batch norms they quantise too (MTT_musicnn on recorded music:
# docs/performance.md, "int8 for log-mel taggers"; bench/bench_int8.py).
QUANTISED_FRONT_END = {
    engine: (f"--engine {engine} {what} of this spectrogram model, its log-mel front end's "
             f"too: on MTT_musicnn and recorded music that changed {share} of the top-5 tags "
             "per window (docs/performance.md); --engine tflite-int8 keeps the front end "
             "float32 and is faster")
    for engine, what, share in (("tflite-fp16", "stores every weight as float16", "3%"),
                                ("tflite-dynamic", "quantises every weight and the "
                                 "activations that meet them", "28%"))}


class TFLitePredictor(Predictor):
    """`predictor(windows)` -> `(scores (batch, tags), None)` on LiteRT.

    `engine`: "tflite" (float32), "tflite-fp16" (float16 weights),
    "tflite-dynamic" (int8 weights, dynamic-range quantisation) or
    "tflite-int8" (int8 weights and activations; needs `calibration`, float32
    windows (n, window_samples), e.g. from `quantize.calibration_windows`);
    `threads`: interpreter threads (default: every core this process may
    use). `select_tf_ops` tells whether the model needed TensorFlow ops
    (then TensorFlow's interpreter runs it, with the Flex delegate).
    `converted`: (flatbuffer, select_tf_ops) of this engine's conversion
    made earlier (`int8_cache`), used instead of converting again.
    """

    def __init__(self, model, info: TaggerMetadata | None, engine: str = "tflite",
                 threads: int | None = None, calibration: np.ndarray | None = None,
                 converted: tuple[bytes, bool] | None = None):
        from tagger.inference.export.formats import ServingModel, tflite_bytes, tflite_interpreter
        from tagger.runtime import native_stderr_silenced

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, "
                             f"got {engine!r}")
        serving = ServingModel(model, info)
        self.engine = engine
        self.sample_rate, self.window_samples = serving.sample_rate, serving.window_samples
        self.hop_samples, self.edge_padding = serving.hop_samples, serving.edge_padding
        self.tag_names, self.warning = list(serving.tag_names), serving.warning
        if converted is None:
            with native_stderr_silenced():  # the int8 calibrator's "fully_quantize: 0, ..."
                converted = tflite_bytes(serving, ENGINES[engine], calibration)
        self.content, self.select_tf_ops = converted
        self.threads = threads or available_cores()
        with native_stderr_silenced():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
            interpreter = tflite_interpreter(content=self.content,
                                             select_tf_ops=self.select_tf_ops,
                                             num_threads=self.threads)
            self._runner = interpreter.get_signature_runner("serve")
            self._runner(waveform=np.zeros((1, self.window_samples), np.float32))  # delegate
        self._interpreter = interpreter  # the runner needs it alive
        self.interpreter = ("LiteRT" if type(interpreter).__module__.startswith("ai_edge_litert")
                            else "TensorFlow")
        notes = [self.warning] if self.warning else []
        if self.interpreter != "LiteRT":
            why = ("the model needs select TensorFlow ops" if self.select_tf_ops else
                   "ai-edge-litert is not installed (pip install ai-edge-litert)")
            notes.append(f"the {engine} engine runs on TensorFlow's TFLite interpreter: {why}")
        if engine == "tflite-int8" and not int8_weights(interpreter):
            notes.append(f"{NOTHING_QUANTISED}: it runs in float32, as --engine tflite does")
        if engine in QUANTISED_FRONT_END and serving.int8_scope == FRONT_END:
            notes.append(QUANTISED_FRONT_END[engine])
        self.warning = "; ".join(notes) or None

    def __call__(self, windows: np.ndarray):
        x = np.ascontiguousarray(windows, np.float32)  # (batch, window_samples)
        scores = self._runner(waveform=x)["scores"]
        return np.array(scores, np.float32), None


def make_predictor(model, info: TaggerMetadata | None, options, engine: str = "tflite"):
    """The factory of the `engine` (a key of ENGINES). "tflite-int8" is
    calibrated on windows of `options.calibration_audio()`, its conversion
    kept in the cache for the next run on the same model and windows
    (`int8_cache`; the predictor's `note` says which), when
    `options.model_path` is a local file."""
    from tagger.inference.export.formats import check_tensorflow
    from tagger.inference.export.quantize import calibration_windows
    from tagger.models.saved import raw_audio_input

    check_tensorflow(f"--engine {engine}: a TFLite model",
                     "use --engine keras, xla or keras-bf16, which run on JAX too")
    if engine != "tflite-int8":
        return TFLitePredictor(model, info, engine)
    sample_rate, window, _ = raw_audio_input(model, info)  # as the model is served
    try:
        calibration = calibration_windows(options.calibration_audio(), sample_rate, window)
    except ValueError as error:
        raise UserError(str(error)) from None
    if len(calibration) == 0:
        raise UserError("--engine tflite-int8 measures its ranges on the audio it tags, "
                        "and none of the inputs could be decoded; check the files or "
                        "use --engine tflite")
    from tagger.inference.export.formats import ServingModel, tflite_bytes
    from tagger.inference.export.int8_cache import cached_int8, entry_fields
    from tagger.runtime import native_stderr_silenced

    def convert():
        with native_stderr_silenced():  # the int8 calibrator's "fully_quantize: 0, ..."
            return tflite_bytes(ServingModel(model, info), "int8", calibration)

    path = options.model_path
    if path is None or not fileio.is_local(path):  # no fingerprint without reading it
        return TFLitePredictor(model, info, engine, converted=convert())
    fields = entry_fields(path, sample_rate, window, calibration)
    content, select_tf_ops, note = cached_int8(fields, convert)
    predictor = TFLitePredictor(model, info, engine, converted=(content, select_tf_ops))
    predictor.note = note
    return predictor
