"""Turns the Million Song Dataset (or the synthetic MSD) into sharded TFRecords.

    python build_msd.py --data-dir msd --split lastfm
    python build_msd.py --data-dir msd --split cals msd/cals
    python build_msd.py --data-dir msd --split classic msd/classic

--data-dir holds track_metadata.db (and lastfm_tags.db for --split lastfm);
the audio lies under --audio-dir (default <data-dir>/audio) in the 7digital
layout (8/9/8947470.clip.mp3) or by MSD id (A/B/C/TRABC....wav). The records
are those of build_mtt.py; an unlabelled `student` split is stored without
labels. The flags are the MSD source's settings (tagger.datasets.msd.plan)
and the shared record flags (tagger.commands.build_flags). See docs/msd.md.
"""

from __future__ import annotations

from tagger.commands import build_flags


def main(argv=None):
    return build_flags.main("msd", argv)


if __name__ == "__main__":
    raise SystemExit(main())
