"""The command-line tools, one module each with `main(argv=None) -> int`.

They run as the scripts beside the package (`python train.py ...`) and as
the console commands `pip install .` creates (`tagger-train ...`); see
pyproject.toml for the names. The modules without a script beside the
package run with `python -m tagger.commands.<name>` (synthetic,
synthetic_msd, attention). Flags shared by several commands live here too
(build_flags, beam_flags, semi_supervised_flags); tagger/cli.py holds the
parser and exit plumbing they all use.
"""
