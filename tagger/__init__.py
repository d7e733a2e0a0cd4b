"""tagger: music auto-tagging with Keras 3 and TensorFlow.

Importing the package is light (no TensorFlow): the audio and dataset code
runs in worker processes that never need it. The custom Keras layers of the
spectrogram families are registered as soon as Keras is imported, before or
after this package, so `keras.models.load_model` reads every saved tagger
after a plain `import tagger`.

The Python API for the most common job (docs/python_api.md):

    from tagger import top_tags
    top_tags("model.keras", "song.mp3", k=5)  # [('guitar', 0.91), ...]

`top_tags` and `clip_scores` import TensorFlow only when called.
"""

import importlib.abc
import importlib.machinery
import sys

__version__ = "0.1.0"


def top_tags(model, audio, k: int = 5, hop_seconds: float | None = None):
    """The `k` best (tag, score) pairs of an audio file (or, for a list of
    paths, one such list per file), from a tagger saved by train.py; see
    tagger.inference.api."""
    from tagger.inference.api import top_tags as top

    return top(model, audio, k=k, hop_seconds=hop_seconds)


def clip_scores(model, audio, hop_seconds: float | None = None):
    """(tag names, every tag's clip score) of an audio file or a list of
    them; see tagger.inference.api."""
    from tagger.inference.api import clip_scores as scores

    return scores(model, audio, hop_seconds=hop_seconds)


def _register_layers() -> None:
    import tagger.layers  # noqa: F401  (registration happens at import)


class _RegisterLayersAfterKeras(importlib.abc.MetaPathFinder):
    """Runs `_register_layers` right after the `keras` package finishes importing."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            exec_module(module)
            _register_layers()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(f, _RegisterLayersAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterLayersAfterKeras())
