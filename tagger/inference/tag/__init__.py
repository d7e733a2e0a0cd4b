"""tag.py's run: `run.tag(TagConfig)` (`config`), each file's result into
its outputs (the report, taggrams, embeddings, tags in the files, the
results database)."""
