"""Tagging your own audio with a saved tagger, and exporting taggers for serving.

- `inputs`: which files a list of files and folders names.
- `predictor`: a saved model as one compiled call from raw windows to tag
  scores (and embeddings).
- `tagging`: the pipeline: decoder threads stream windows of many files into
  a bounded queue; the model scores full batches drawn from it.
- `outputs`, `taggram`, `embeddings`: what is written per file.
- `run`: `tag(TagConfig)`, the library call behind tag.py.
- `export`: `export(ExportConfig)`, SavedModel and TFLite export with a
  raw-waveform signature, behind export.py.
- `tflite_predictor`: a saved tagger converted to TFLite and run by LiteRT
  (tag.py --engine tflite*); `quantize`: the int8 calibration both share.
- `config`: the frozen `TagConfig` and `ExportConfig`.
- `results_db`: the SQLite results database of tag.py --db (resumable, one
  row per file); `results_reader`: the one reader of it (read-only, damage
  as one line); `library_export`: its rows as CSV, JSON lines or Parquet
  (tagger-library); `similar`: "more like this" over it (tagger-similar,
  exact or with a FAISS index).
- `file_tags`: tags written into the audio files' own metadata (mutagen).
- `beam_tagging`: tag.py --runner, tagging as a Beam RunInference pipeline.
"""
