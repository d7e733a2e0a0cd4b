"""Exports a trained tagger for serving: a SavedModel folder or a TFLite file.

The command lives in tagger/commands/export.py; `python export.py --help` lists its flags.
"""

from tagger.commands.export import main

if __name__ == "__main__":
    raise SystemExit(main())
