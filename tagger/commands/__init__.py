"""The command-line tools, one module each with `main(argv=None) -> int`.

They run as the scripts beside the package (`python train.py ...`) and as
the console commands `pip install .` creates (`tagger-train ...`); see
pyproject.toml for the names.
"""
