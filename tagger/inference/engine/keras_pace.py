"""How fast an engine scores a model against the keras engine, on this
machine: tag.py times both at the start of a run with another built-in
engine (once per model, engine and machine: `pace_cache` keeps the
timing) and says so in one line, so that an engine slower than float Keras
for a model is never chosen silently (XNNPACK, for one, does not run
convolutions of int8 weights on float activations: docs/performance.md,
"The default engine").

Both score the same windows (tones in noise: the speed does not depend on
the audio), and compute the same outputs (the keras engine the predictor's
embeddings too, of the same layer, when it gives them), after one call each
that builds and traces them, in turns, `rounds` times; the best time of
each is kept.
"""

from __future__ import annotations

import time

from tagger.models.tagger_metadata import TaggerMetadata

WINDOWS = 16  # windows per timed call at most (the run's batch size if smaller)
ROUNDS = 2


def pace_against_keras(predictor, model, info: TaggerMetadata | None,
                       batch_size: int = WINDOWS, rounds: int = ROUNDS) -> tuple[float, int]:
    """(the predictor's speed / the keras engine's, windows per timed call)
    for `model`, the predictor's model."""
    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.export.formats import check_waveforms

    keras = KerasPredictor(model, info, embeddings=predictor.embedding_layer is not None,
                           embedding_layer=predictor.embedding_layer)
    windows = check_waveforms(predictor.window_samples, batch=max(1, min(batch_size, WINDOWS)))
    best = {"engine": float("inf"), "keras": float("inf")}
    scorers = {"engine": predictor, "keras": keras}
    for scorer in scorers.values():
        scorer(windows)  # built, traced, compiled
    for _ in range(rounds):
        for name, scorer in scorers.items():
            start = time.perf_counter()
            scorer(windows)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["keras"] / best["engine"], len(windows)


def pace_line(engine: str, pace: float, windows: int, timed: str | None = None) -> str:
    """The line tag.py shows for `engine` at `pace` times the keras engine's
    speed: timed at the start, or at `timed` and read from the cache
    (`pace_cache`)."""
    when = "timed at the start" if timed is None else f"timed on {timed}, read from the cache"
    line = (f"note: --engine {engine} runs this model at {pace:.2f}x the speed of --engine "
            f"keras on this machine ({windows} windows, {when})")
    return line + ("; --engine keras is faster" if pace < 1 else "")
