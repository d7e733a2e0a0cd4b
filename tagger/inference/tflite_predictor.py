"""A saved tagger converted to TFLite and run by LiteRT: the `--engine
tflite*` choices of tag.py.

The model (with its log-mel front end, for spectrogram families) is
converted in memory to the same `serve` signature export.py writes
(`waveform (batch, window_samples)` -> `scores (batch, tags)`), optionally
with quantised weights (and, for "tflite-int8", activations quantised with
ranges measured on windows of the audio to be tagged), and run by LiteRT's
interpreter with XNNPACK on every core. Same call as `Predictor`, without
embeddings.
"""

from __future__ import annotations

import os

import numpy as np

ENGINES = {"tflite": None, "tflite-fp16": "fp16", "tflite-dynamic": "dynamic",
           "tflite-int8": "int8"}
CALIBRATION_WINDOWS = 32  # windows the int8 engine measures its ranges on


def int8_waveform_only(option: str, instead: str) -> str:
    """Why `option` (int8 activations) refuses a model that is not a
    waveform model, and `instead`, the options to use."""
    return (f"{option} is for models that read the waveform (the sample-level CNN): with "
            "int8 log-mel frames and attention, scores move by up to 0.16; use "
            f"{instead} for this model")


INT8_WAVEFORM_ONLY = int8_waveform_only("--engine tflite-int8",
                                        "--engine tflite or tflite-dynamic")


def check_int8_model(model, refusal: str = INT8_WAVEFORM_ONLY) -> None:
    """Raises ValueError(refusal) unless `model` reads waveforms, (batch,
    samples): the models int8 activations serve."""
    if len(model.inputs[0].shape) != 2:
        raise ValueError(refusal)


def int8_calibration(model, paths, sample_rate: int, window: int,
                     refusal: str = INT8_WAVEFORM_ONLY) -> np.ndarray:
    """`calibration_windows` of `paths` for `model`, after `check_int8_model`
    (so a model int8 does not serve is refused before anything is decoded);
    (0, window) when no file decodes: the caller says what to do."""
    check_int8_model(model, refusal)
    return calibration_windows(paths, sample_rate, window)


def calibration_windows(paths, sample_rate: int, window: int,
                        limit: int = CALIBRATION_WINDOWS) -> np.ndarray:
    """Up to `limit` windows (n, window) float32 for int8 calibration, drawn
    from the files in order, `ceil(limit / len(paths))` per file at most,
    spread over each file (a seeded reservoir sample, so a rerun draws the
    same ones). Files that cannot be decoded are passed over."""
    from tagger.audio import AudioDecodeError, audio_windows

    per_file = max(1, -(-limit // max(1, len(paths))))
    rng = np.random.default_rng(0)
    chosen = []
    for path in paths:
        reservoir = []
        try:
            for seen, (_, samples) in enumerate(audio_windows(path, sample_rate, window)):
                if seen < per_file:
                    reservoir.append(samples)
                elif (slot := rng.integers(0, seen + 1)) < per_file:
                    reservoir[slot] = samples
        except AudioDecodeError:
            continue
        chosen.extend(reservoir[:limit - len(chosen)])
        if len(chosen) >= limit:
            break
    return np.stack(chosen).astype(np.float32) if chosen else np.zeros((0, window), np.float32)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TFLitePredictor:
    """`predictor(windows)` -> `(scores (batch, tags), None)` on LiteRT.

    `engine`: "tflite" (float32), "tflite-fp16" (float16 weights),
    "tflite-dynamic" (int8 weights, dynamic-range quantisation) or
    "tflite-int8" (int8 weights and activations; needs `calibration`, float32
    windows (n, window_samples), e.g. from `calibration_windows`);
    `threads`: interpreter threads (default: every core this process may
    use). `select_tf_ops` tells whether the model needed TensorFlow ops
    (then TensorFlow's interpreter runs it, with the Flex delegate).
    """

    embedding_layer = None
    embedding_dim = None

    def __init__(self, model, info: dict | None, engine: str = "tflite",
                 threads: int | None = None, calibration: np.ndarray | None = None):
        from tagger.inference.export import ServingModel, tflite_bytes, tflite_interpreter
        from tagger.runtime import native_stderr_silenced

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, "
                             f"got {engine!r}")
        if engine == "tflite-int8":
            check_int8_model(model)
        serving = ServingModel(model, info)
        self.engine = engine
        self.sample_rate, self.window_samples = serving.sample_rate, serving.window_samples
        self.tag_names, self.warning = list(serving.tag_names), serving.warning
        with native_stderr_silenced():  # the int8 calibrator's "fully_quantize: 0, ..."
            self.content, self.select_tf_ops = tflite_bytes(serving, ENGINES[engine],
                                                            calibration)
        self.threads = threads or available_cores()
        with native_stderr_silenced():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
            interpreter = tflite_interpreter(content=self.content,
                                             select_tf_ops=self.select_tf_ops,
                                             num_threads=self.threads)
            self._runner = interpreter.get_signature_runner("serve")
            self._runner(waveform=np.zeros((1, self.window_samples), np.float32))  # delegate
        self._interpreter = interpreter  # the runner needs it alive

    @property
    def num_tags(self) -> int:
        return len(self.tag_names)

    def __call__(self, windows: np.ndarray):
        x = np.ascontiguousarray(windows, np.float32)  # (batch, window_samples)
        scores = self._runner(waveform=x)["scores"]
        return np.array(scores, np.float32), None
