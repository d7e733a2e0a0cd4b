"""Tagging your own audio with a saved tagger, and what is built on it.

Four subsystems over shared helpers, each importing only those below it
(tests/test_layering.py holds the order):

1. shared: `inputs` (which files a list of files and folders names),
   `outputs` (the selected tags and tag.py's reports), `common` (the cores
   this process may use, a model's fingerprint, a model's tag names).
2. `export`: SavedModel and TFLite export with a raw-waveform signature
   (export.py), the int8 calibration and its cache.
3. `engine`: the tagging engines: the one predictor protocol, the engines
   by name (`engine.registry`: keras, xla, tflite*), and the tagging loop
   (decoder threads feeding full batches to a predictor).
4. `library`: the results database of tag.py --db and its one reader,
   its exports (tagger-library), "more like this" (tagger-similar), the
   embeddings archive and tags written into the audio files; `api`: the
   Python API (`top_tags`); `beam_tagging`: tag.py --runner on Apache Beam.
5. `tag`: `tag(TagConfig)`, the library call behind tag.py: the engine's
   results into its outputs (the report, taggrams, embeddings, tags in
   the files, the results database).
"""
