"""tagger: music auto-tagging with Keras 3 and TensorFlow.

Importing the package is light (no TensorFlow): the audio and dataset code
runs in worker processes that never need it. A saved tagger is loaded with
`tagger.models.saved.load_tagger` (model and info), or with
`keras.models.load_model`: with Keras alone for the families made of
Keras's layers only, after `import tagger.layers` (which registers the
layers of this package) for the others (docs/commands/train.md).

The Python API for the most common job (docs/python_api.md):

    from tagger import top_tags
    top_tags("song.mp3")  # the musicnn package's MTT_musicnn, from the package index
    top_tags("song.mp3", model="msd-transformer")  # another published tagger, by name
    top_tags("song.mp3", model="model.keras", k=5)  # a tagger trained here

`top_tags` and `clip_scores` import TensorFlow only when called.
`load_pretrained(NAME)` gives a published tagger (downloaded and converted
on first use; tagger.pretrained).
"""

import os
import sys

__version__ = "0.1.0"


def _quiet_tensorflow() -> None:
    """Imports TensorFlow with its start-up lines hidden (tagger.runtime)
    before anything in the API path (a pretrained name's conversion, the
    model's loading) imports it loudly; nothing once it is imported."""
    if "tensorflow" not in sys.modules:
        from tagger.runtime import quiet_tensorflow

        quiet_tensorflow()


def _model_path(function: str, audio, model):
    """The path of `model` (a saved tagger's path or a registry name;
    None: `DEFAULT_MODEL`). TypeError for the order `f(model, audio)`."""
    from tagger.models.saved import MODEL_SUFFIXES
    from tagger.pretrained.registry import DEFAULT_MODEL, lookup

    if model is not None and isinstance(audio, (str, os.PathLike)):
        first = os.fspath(audio)
        if first.endswith(MODEL_SUFFIXES) or lookup(first) is not None:
            audio = os.fspath(model) if isinstance(model, os.PathLike) else model
            raise TypeError(f"{function}() takes the audio first and the model by keyword: "
                            f"write {function}({audio!r}, model={first!r})")
    _quiet_tensorflow()
    from tagger.pretrained import resolve_model

    return resolve_model(DEFAULT_MODEL if model is None else model)


def top_tags(audio, model=None, k: int = 5, hop_seconds: float | None = None):
    """The `k` best (tag, score) pairs of an audio file (or, for a list of
    paths, one such list per file). `model`: a published tagger's name
    (`load_pretrained`) or the path of a tagger saved by train.py; by
    default the tagger for real music (MTT_musicnn, the musicnn package's,
    fetched from the package index on first use). See tagger.inference.api."""
    from tagger.inference.api import top_tags as top

    return top(audio, _model_path("top_tags", audio, model), k=k, hop_seconds=hop_seconds)


def clip_scores(audio, model=None, hop_seconds: float | None = None):
    """(tag names, every tag's clip score) of an audio file or a list of
    them, with `model` as `top_tags` takes it; see tagger.inference.api."""
    from tagger.inference.api import clip_scores as scores

    return scores(audio, _model_path("clip_scores", audio, model), hop_seconds=hop_seconds)


def load_pretrained(name: str, weights: str | None = None):
    """(Keras model, TaggerMetadata) of a published tagger by registry name
    (`tagger-pretrained list`), downloaded and converted into the cache on
    first use; a model path works too. `weights`: the original file, if
    downloaded by hand."""
    _quiet_tensorflow()
    from tagger.pretrained import load_pretrained as load

    return load(name, weights=weights)


def _refuse_a_module_run_as_a_command() -> None:
    """`python -m tagger.<module>` for a module that is not a command would
    run its definitions and exit 0 having done nothing: one line naming the
    command instead (the package is imported, with `sys.argv[0] == "-m"`,
    while Python looks the module up). The commands are the modules of
    tagger.commands and the packages with a `__main__.py`."""
    argv = list(getattr(sys, "orig_argv", ()))
    if sys.argv[:1] != ["-m"] or "-m" not in argv[:-1]:
        return
    module = argv[argv.index("-m") + 1]
    parts = module.split(".")
    if parts[0] != "tagger" or parts[1:2] == ["commands"]:
        return
    here = os.path.dirname(__file__)
    if os.path.isfile(os.path.join(here, *parts[1:], "__main__.py")):
        return
    if os.path.isfile(os.path.join(here, "commands", f"{parts[-1]}.py")):
        where = f"run python -m tagger.commands.{parts[-1]}"
    else:
        where = "the commands are listed in README.md (python -m tagger.commands.NAME)"
    sys.stderr.write(f"{module} is not a command: {where}\n")
    sys.exit(2)


_refuse_a_module_run_as_a_command()
