"""Turns a folder of audio files into sharded TFRecords, split into train/val/test.

The command lives in tagger/commands/build_folder.py; `python build_folder.py --help`
lists its flags.
"""

from tagger.commands.build_folder import main

if __name__ == "__main__":
    raise SystemExit(main())
