"""Turns MagnaTagATune (or the synthetic dataset in its layout) into sharded TFRecords.

The command lives in tagger/commands/build_mtt.py; `python build_mtt.py --help` lists its flags.
"""

from tagger.commands.build_mtt import main

if __name__ == "__main__":
    raise SystemExit(main())
