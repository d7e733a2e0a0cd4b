"""Evaluates a trained tagger: clip-level macro ROC-AUC and PR-AUC.

The command lives in tagger/commands/eval.py; `python eval.py --help` lists its flags.
"""

from tagger.commands.eval import main

if __name__ == "__main__":
    raise SystemExit(main())
