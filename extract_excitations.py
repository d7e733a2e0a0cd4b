"""Extracts the SE excitations of a sample-level CNN for every clip of a split.

The command lives in tagger/commands/extract_excitations.py; `python
extract_excitations.py --help` lists its flags.
"""

from tagger.commands.extract_excitations import main

if __name__ == "__main__":
    raise SystemExit(main())
