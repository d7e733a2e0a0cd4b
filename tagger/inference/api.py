"""The Python API for the most common job: the top tags of audio files.

    from tagger import top_tags
    top_tags("song.mp3", model="log/samplecnn-se-multi/model.keras", k=5)
    # [('guitar', 0.91), ('classical', 0.84), ...]

`top_tags` runs the same pipeline as tag.py (decoded, mixed to mono,
resampled to the model's rate, cut into the model's windows; a clip's
scores are the mean over its windows; a file shorter than one window is
zero-padded) and keeps the last loaded model, so calling it in a loop does
not reload the file. `clip_scores` gives every tag's score.

A model trained on the synthetic dataset knows synthetic sounds, not music:
loading one issues a `SyntheticModelWarning` (once per model file, at the
caller's line), whose message is `models.saved.synthetic_note`'s.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings

from tagger.errors import UserError

_LOADED = {}  # (real path, mtime, size) -> predictor; only the last model is kept
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tagger/


class SyntheticModelWarning(UserWarning):
    """The model's tags describe synthetic sounds: it was trained on the
    synthetic dataset."""


def _predictor(model):
    """The keras engine's predictor for a saved model's path; reloaded only when the path or
    the file changes."""
    from tagger.inference.engine.registry import make_predictor
    from tagger.models.saved import load_tagger

    path = os.fspath(model)
    try:
        stat = os.stat(path)
    except OSError:
        raise UserError(f"model file {path!r} not found") from None
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED.clear()
        if "tensorflow" not in sys.modules:
            from tagger.runtime import quiet_tensorflow

            quiet_tensorflow()  # TensorFlow's start-up chatter, not the user's concern
        from tagger.models.saved import synthetic_note

        model, info = load_tagger(path)
        note = synthetic_note(info)
        if note:
            warnings.warn(f"{path}: {note}", SyntheticModelWarning,
                          stacklevel=_caller_level())
        _LOADED[key] = make_predictor("keras", model, info)
    return _LOADED[key]


def _caller_level() -> int:
    """The `stacklevel` of the first frame outside this package, so that a
    warning names the user's line (the API's depth varies by entry point)."""
    frame, level = inspect.currentframe().f_back.f_back, 2  # the function that warns is 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def clip_scores(audio, model, hop_seconds: float | None = None):
    """Every tag's clip score for each audio file.

    `audio`: one path, or a list of paths. `model`: path of a .keras/.hdf5
    tagger saved by train.py (`tagger.clip_scores` also takes a published
    tagger's name). Returns `(tag_names, scores)`: `scores` is a
    `(tags,)` float32 array for one path, a list of them for a list (in
    the given order). A file that cannot be tagged raises UserError naming
    it and saying why. `hop_seconds`: step between windows (default: the
    window, no overlap).
    """
    from tagger.inference.engine.tagging import tag_files

    single = isinstance(audio, (str, os.PathLike))
    paths = [os.fspath(audio)] if single else [os.fspath(p) for p in audio]
    if not paths:
        return [], []
    predictor = _predictor(model)
    hop = None
    if hop_seconds is not None:
        if not hop_seconds > 0:
            raise UserError(f"hop_seconds must be positive, got {hop_seconds}")
        hop = max(1, int(round(hop_seconds * predictor.sample_rate)))
    results = sorted(tag_files(predictor, paths, hop_samples=hop), key=lambda r: r.index)
    failed = [r for r in results if not r.ok]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise UserError(f"cannot tag {failed[0].path}: {failed[0].error}{more}")
    scores = [r.clip_scores for r in results]
    return list(predictor.tag_names), scores[0] if single else scores


def top_tags(audio, model, k: int = 5, hop_seconds: float | None = None):
    """The `k` best tags of an audio file, best first, as (tag, score) pairs;
    for a list of paths, a list of such lists in the given order. See
    `clip_scores` for the arguments and errors."""
    from tagger.inference.outputs import select_tags

    if not (isinstance(k, int) and k >= 1):
        raise UserError(f"k must be a whole number of tags >= 1, got {k!r}")
    names, scores = clip_scores(audio, model, hop_seconds)
    if isinstance(audio, (str, os.PathLike)):
        return select_tags(scores, names, top_k=k)
    return [select_tags(s, names, top_k=k) for s in scores]
