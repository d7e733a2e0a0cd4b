"""A tagged music library: the results database of tag.py --db
(`results_db`) and its one reader (`results_reader`), its rows as CSV, JSON
lines or Parquet (`library_export`, tagger-library), "more like this"
(`similar`, tagger-similar), the embeddings archive of tag.py --embeddings
(`embeddings`) and tags in the audio files' own metadata (`file_tags`)."""
