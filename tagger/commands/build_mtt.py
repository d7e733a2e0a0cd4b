"""Turns MagnaTagATune (or the synthetic dataset in its layout) into sharded TFRecords.

    python build_mtt.py --data-dir dataset --features raw

The flags are the MagnaTagATune source's settings (tagger.datasets.mtt)
and the record flags every builder shares (tagger.commands.build_flags).
"""

from __future__ import annotations

from tagger.commands import build_flags


def main(argv=None):
    return build_flags.main("mtt", argv)


if __name__ == "__main__":
    raise SystemExit(main())
