"""Turns the Million Song Dataset (or the synthetic MSD) into sharded TFRecords.

The command lives in tagger/commands/build_msd.py; `python build_msd.py --help` lists its flags.
"""

from tagger.commands.build_msd import main

if __name__ == "__main__":
    raise SystemExit(main())
