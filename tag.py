"""Tags your own audio files with a trained tagger.

The command lives in tagger/commands/tag.py; `python tag.py --help` lists its flags.
"""

from tagger.commands.tag import main

if __name__ == "__main__":
    raise SystemExit(main())
