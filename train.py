"""Trains a music tagger on records written by build_mtt.py.

The command lives in tagger/commands/train.py; `python train.py --help` lists its flags.
"""

from tagger.commands.train import main

if __name__ == "__main__":
    raise SystemExit(main())
