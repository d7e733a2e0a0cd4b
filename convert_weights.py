"""Converts an original release's published weights into a tagger of ours.

The command lives in tagger/commands/convert_weights.py; `python
convert_weights.py --help` lists its flags.
"""

from tagger.commands.convert_weights import main

if __name__ == "__main__":
    raise SystemExit(main())
