"""`python -m tagger.pretrained list | info NAME | download NAME | path NAME`:
a program entry point (the commands layer), as tagger-pretrained."""

from tagger.commands.pretrained import main

if __name__ == "__main__":
    raise SystemExit(main())
