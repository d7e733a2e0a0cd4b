"""Turns a folder of audio files into sharded TFRecords, split into train/val/test.

    python build_folder.py ~/Music --out-dir music-records
    python build_folder.py ~/Music --out-dir music-records --split-by folder --labels tags.csv

The records are those of build_mtt.py; without --labels they carry no
tags (audio for a teacher to label). The flags are the folder source's
settings (tagger.datasets.folder) and the shared record flags
(tagger.commands.build_flags). See docs/commands/build_folder.md.
"""

from __future__ import annotations

from tagger.commands import build_flags


def main(argv=None):
    return build_flags.main("folder", argv)


if __name__ == "__main__":
    raise SystemExit(main())
