"""`python -m tagger.serve MODEL`: a program entry point (the commands
layer), as tagger-serve."""

from tagger.commands.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
