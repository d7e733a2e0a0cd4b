"""The whole pipeline on the embedded synthetic dataset, offline, on a laptop.

The command lives in tagger/commands/demo.py; `python demo.py --help` lists its flags.
"""

from tagger.commands.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
