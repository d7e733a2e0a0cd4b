"""tag.py --runner: tagging as an Apache Beam pipeline with RunInference, for
libraries too large for one machine (Dataflow, Flink, Spark; DirectRunner
here).

    paths -> Reshuffle -> decode: (path, window index, window) ... and
                                  (path, samples, file rate, windows)
          -> RunInference(KeyedModelHandler(TaggerModelHandler))
                 batches of up to `batch_size` windows, formed by Beam
          -> per path: scores in window order, mean = the clip scores
          -> one JSON line (or Parquet row) per file

The model handler is ours (`TaggerModelHandler`): it loads the saved tagger
with `load_tagger` and scores raw windows with the predictor of tag.py's
`--engine` (the engine registry; log-mel front ends in the graph), so
every family runs, and the scores equal the local tag.py's. Beam's own
TensorFlow handler (`apache_beam.ml.inference.tensorflow_inference`) imports tensorflow_hub,
which needs the legacy tf-keras this project does not use. Windows are
cut as tag.py cuts them (audio.audio_windows). Paths may be local or any
tf.io.gfile scheme (gs://...): a remote file is copied to a worker's
temporary file to be decoded.

Output rows: `path`, `duration` (s), `sample_rate` (the file's own),
`windows`, `padded`, `tags` and `scores` (the top K, or those at least
`threshold`), and `tag_scores`: every tag's clip score in the model's tag
order. A file that cannot be decoded gets a row with `error` instead.
Paths travel through the pipeline as bytes (`os.fsencode`: Beam's coders
take text as UTF-8 only), so a name that is not valid UTF-8 is decoded too;
its row's path is its `fileio.path_text` (a backslash doubled, each byte
that does not decode as `\\xNN`), which `fileio.path_from_text` maps back.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tagger import destination, fileio
from tagger.errors import UserError


def make_handler(model_path: str, batch_size: int, engine: str = "keras",
                 calibration: tuple = ()):
    """A RunInference model handler of `(window,) float32` elements that
    yields PredictionResult(window, scores (tags,)), scored by `engine`
    (calibrated, if it asks, on the local audio files `calibration`)."""
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult

    class TaggerModelHandler(ModelHandler):
        def __init__(self):
            super().__init__(min_batch_size=1, max_batch_size=batch_size)
            self._path = model_path

        def load_model(self):
            from tagger.inference.engine.registry import EngineOptions, make_predictor
            from tagger.models.saved import load_tagger

            model, info = load_tagger(self._path)
            return make_predictor(engine, model, info, EngineOptions(
                model_path=self._path, calibration_audio=lambda: list(calibration)))

        def run_inference(self, batch, model, inference_args=None):
            scores, _ = model(np.stack(batch).astype(np.float32))
            return [PredictionResult(x, s) for x, s in zip(batch, scores)]

        def get_num_bytes(self, batch):
            return sum(x.nbytes for x in batch)

    return TaggerModelHandler()


def list_inputs(inputs, recursive: bool) -> list[str]:
    """The audio files `inputs` name: local paths as tag.py finds them,
    other schemes through tf.io.gfile (a folder: its audio-named files)."""
    from tagger.inference.inputs import find_audio, is_audio_name

    local = [p for p in inputs if fileio.is_local(str(p))]
    files = list(find_audio(local, recursive).files) if local else []
    for given in (str(p) for p in inputs if not fileio.is_local(str(p))):
        import tensorflow as tf

        if not tf.io.gfile.isdir(given):
            files.extend(sorted(tf.io.gfile.glob(given)))
            continue
        for folder, _, names in tf.io.gfile.walk(given):
            files.extend(f"{folder.rstrip('/')}/{n}" for n in sorted(names)
                         if is_audio_name(n) and not n.startswith("."))
            if not recursive:
                break
    return files


def _decode(key: bytes, sample_rate: int, window: int, hop: int, edge: int = 0):
    """Yields ("window", (key, index), samples) and then one ("file", key,
    (samples, file rate, windows, error)); `key` is the path's bytes."""
    from tagger.audio import WindowStream, audio_windows, file_info

    path = os.fsdecode(key)
    local, tmp = path, None
    try:
        if not fileio.is_local(path):
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=os.path.splitext(path)[1],
                                             delete=False) as f:
                f.write(fileio.read_bytes(path))
                tmp = local = f.name
        rate = int(file_info(local).sample_rate)
        stream = WindowStream(audio_windows(local, sample_rate, window, hop, edge_padding=edge))
        count = 0
        for _, samples in stream:
            yield "window", (key, count), np.asarray(samples, np.float32)
            count += 1
        yield "file", key, (int(stream.total), rate, count, None)
    except Exception as error:  # one row saying why, never a failed pipeline
        yield "file", key, (0, None, 0, str(error).splitlines()[0] if str(error)
                            else type(error).__name__)
    finally:
        if tmp:
            os.remove(tmp)


def _row(path, grouped, tag_names, sample_rate, window, top_k, threshold):
    from tagger.inference.outputs import select_tags

    windows = sorted(grouped["scores"])  # [(index, scores)]
    (samples, rate, count, error), = grouped["file"]
    if error is None and len(windows) != count:
        error = "not every window was scored"
    if error is not None or not windows:
        return {"path": fileio.path_text(path), "error": error or "no audio samples"}
    clip = np.stack([s for _, s in windows]).astype(np.float32).mean(axis=0)
    chosen = select_tags(clip, tag_names, top_k, threshold)
    return {"path": fileio.path_text(path), "duration": round(samples / sample_rate, 3),
            "sample_rate": rate, "windows": count, "padded": samples < window,
            "tags": [t for t, _ in chosen], "scores": [round(s, 6) for _, s in chosen],
            "tag_scores": [float(s) for s in clip]}


def is_beam_output(path: str) -> bool:
    """Whether `path` is a file `tag_with_beam` wrote (its first row)."""
    footer = fileio.parquet_footer(path)
    if footer is not None:
        return b"tag_scores" in footer
    try:
        first = json.loads(fileio.first_line(path))
    except ValueError:
        return False
    return isinstance(first, dict) and "path" in first and (
        "tag_scores" in first or set(first) == {"path", "error"})


def tag_with_beam(config, run, log=print) -> int:
    """Runs tag.py's `config` (a TagConfig with `out`) as a Beam pipeline on
    `run` (tagger.beam.build.BeamRun); returns the number of files listed.
    `out` ending in .parquet: Parquet (pyarrow); else JSON lines."""
    from tagger.beam.build import pipeline_options
    from tagger.models.saved import load_tagger, raw_audio_input, tag_names_of, window_grid

    if not config.out:
        raise UserError("--runner writes its results to a file: add --out PATH (.jsonl, or "
                        ".parquet for Parquet)")
    destination.check_destination(str(config.out), "--out", kind="a tag.py --runner output",
                                  recognise=is_beam_output, overwrite=config.overwrite,
                                  inputs=[*config.inputs, config.model])
    options = pipeline_options(run)
    model, info = load_tagger(config.model)
    sample_rate, window, _ = raw_audio_input(model, info)
    tag_names, _ = tag_names_of(model, info)
    grid_hop, edge = window_grid(model, info, window)
    hop = int(round(config.hop * sample_rate)) if config.hop else grid_hop
    files = list_inputs(config.inputs, config.recursive)
    if not files:
        raise UserError(f"no audio files found in {', '.join(map(str, config.inputs[:3]))}")
    parquet = str(config.out).endswith(".parquet")

    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    calibration = tuple(p for p in files if fileio.is_local(p))[:64]
    handler = KeyedModelHandler(make_handler(config.model, config.batch_size, config.engine,
                                             calibration))
    with (fileio.replacing(str(config.out)) as tmp_prefix,  # the whole file, or none
          beam.Pipeline(options=options) as pipeline):
        decoded = (pipeline
                   | "paths" >> beam.Create([os.fsencode(p) for p in files])
                   | "spread" >> beam.Reshuffle()
                   | "decode" >> beam.FlatMap(
                       lambda p: _decode(p, sample_rate, window, hop, edge)))
        windows = (decoded | "windows" >> beam.Filter(lambda e: e[0] == "window")
                   | "keyed" >> beam.Map(lambda e: (e[1], e[2])))
        notes = (decoded | "files" >> beam.Filter(lambda e: e[0] == "file")
                 | "by path" >> beam.Map(lambda e: (e[1], e[2])))
        scores = (windows
                  | "model" >> RunInference(handler)
                  | "per file" >> beam.Map(
                      lambda kv: (kv[0][0], (kv[0][1], np.asarray(kv[1].inference)))))
        rows = ({"scores": scores, "file": notes}
                | "join" >> beam.CoGroupByKey()
                | "row" >> beam.MapTuple(
                    lambda path, grouped: _row(path, grouped, tag_names, sample_rate,
                                               window - 2 * edge,  # the file's part of one
                                               config.top_k, config.threshold)))
        if parquet:
            import pyarrow as pa

            schema = pa.schema([
                ("path", pa.string()), ("duration", pa.float64()),
                ("sample_rate", pa.int64()), ("windows", pa.int64()),
                ("padded", pa.bool_()), ("tags", pa.list_(pa.string())),
                ("scores", pa.list_(pa.float64())), ("tag_scores", pa.list_(pa.float64())),
                ("error", pa.string())])
            _ = (rows | "fill" >> beam.Map(lambda r: {n: r.get(n) for n in schema.names})
                 | "write" >> beam.io.WriteToParquet(
                    tmp_prefix, schema, num_shards=1, shard_name_template=""))
        else:
            _ = (rows | "json" >> beam.Map(
                    lambda r: json.dumps(r, ensure_ascii=False, allow_nan=False))
                 | "write" >> beam.io.WriteToText(tmp_prefix, num_shards=1,
                                                  shard_name_template=""))
    log(f"wrote {config.out}: {len(files)} files tagged on Beam's "
        f"{run.runner}")
    return len(files)
