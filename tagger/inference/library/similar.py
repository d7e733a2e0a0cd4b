""""More like this" over a results database (tag.py --db ... --embeddings):
exact search in NumPy.

- A query file: its embedding (the mean penultimate-layer vector, as stored)
  is read from the database, or computed on the fly with the database's
  model, by the engine, from the windows and on the step of most of its
  embeddings, when the file is not there (or changed since); the library
  is ranked by cosine similarity to it, the query itself left out. A database that does
  not record the engine (written before it did) is taken to hold
  `ASSUMED_ENGINE`'s embeddings: keras, float32's, which the other engines
  giving embeddings (xla, keras-bf16) approximate.
- A tag query (`tags=["piano", "slow"]`): the library is ranked by the mean
  of those tags' scores.

The rows are read in chunks of `CHUNK` and only the best `k` are kept, so
memory stays flat in the size of the library; the search is exact (every
row is scored).
"""

from __future__ import annotations

import heapq
import os

import numpy as np

from tagger.errors import UserError
from tagger.fileio import path_text
from tagger.inference.common import model_fingerprint
from tagger.inference.library.results_reader import ResultsReader

CHUNK = 4096
# From this many embeddings on, `index="auto"` searches an approximate FAISS
# index (when faiss is installed): bench/bench_similar.py measures its
# recall@10 against the exact search and the time per query of both.
APPROXIMATE_FROM = 100_000
INDEXES = ("auto", "exact", "faiss")
HNSW_NEIGHBOURS = 32  # links per vector in the HNSW graph
HNSW_EF_SEARCH = 128  # candidates visited per query: recall against speed
ASSUMED_ENGINE = "keras"  # the engine of a database's embeddings where it is not recorded


def _top(chunks, score_of, k: int, skip: str | None = None) -> list[tuple[str, float]]:
    """The `k` best (path, score) of `chunks` ((paths, (n, dim) matrix), as
    `ResultsReader.matrices` yields them), scored by `score_of(matrix) ->
    (n,) scores`."""
    best: list[tuple[float, str]] = []  # a min-heap of the k best
    for paths, matrix in chunks:
        for path, score in zip(paths, score_of(matrix)):
            if path == skip:
                continue
            item = (float(score), path)
            if len(best) < k:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
    return [(path, score) for score, path in sorted(best, key=lambda i: (-i[0], i[1]))]


def by_tags(db: str, tags, k: int = 10, model: str | None = None) -> list[tuple[str, float]]:
    """The `k` files whose mean score over `tags` is highest."""
    with ResultsReader(db) as reader:
        chosen = reader.choose_model(model)
        names = chosen["tag_names"]
        unknown = [t for t in tags if t not in names]
        if unknown or not tags:
            raise UserError(f"unknown tag(s) {unknown}; the model's tags are: "
                            f"{', '.join(names)}")
        columns = [names.index(t) for t in tags]
        return _top(reader.matrices(chosen, "scores", CHUNK),
                    lambda scores: scores[:, columns].mean(axis=1), k)


def by_file(db: str, query: str, k: int = 10, model: str | None = None,
            log=None, index: str = "auto") -> list[tuple[str, float]]:
    """The `k` files whose embeddings are nearest to `query`'s (cosine):
    exact, or from a FAISS HNSW index (`index`: "exact", "faiss", or "auto":
    FAISS from `APPROXIMATE_FROM` embeddings on, when installed)."""
    if index not in INDEXES:
        raise UserError(f"--index must be one of {', '.join(INDEXES)}, got {index!r}")
    with ResultsReader(db) as reader:
        chosen = reader.choose_model(model)
        if not chosen["embedding_dim"]:
            raise UserError(f"{db!r} holds no embeddings for model "
                            f"{chosen['fingerprint'][:12]}; tag the library with them: "
                            f"tag.py MODEL FOLDER --db {db} --embeddings")
        vector = reader.stored_embedding(chosen, query)
        if vector is None:
            windows, engine = reader.window_choice(chosen), reader.engine(chosen)
            hop = reader.hop(chosen)
            if log:
                log(f"{path_text(query)} is not in the database (or changed): tagging it "
                    f"with {chosen['path']} (engine {engine or ASSUMED_ENGINE}"
                    + ("" if engine else ", assumed: the database does not record the engine "
                       "of its embeddings") + ")"
                    + (f" from {windows} windows, as the library's files" if windows else "")
                    + (f", windows {hop} samples apart" if hop else ""))
            vector = embed(chosen, query, windows, engine, hop)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        if _use_faiss(reader, chosen, index):
            return _search_index(db, reader, chosen, vector, k, os.path.abspath(query), log)

        def score_of(matrix):
            norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)
            return matrix @ vector / norms

        return _top(reader.matrices(chosen, "embedding", CHUNK), score_of, k,
                    skip=os.path.abspath(query))


def embed(model: dict, query: str, windows: int | None = None,
          engine: str | None = None, hop: int | None = None) -> np.ndarray:
    """The mean embedding of `query` by the database's model (its file must
    still be there, unchanged: the fingerprint is checked) run by `engine`
    (None: `ASSUMED_ENGINE`), over `windows` of its windows as `tag.py
    --windows` chooses them (None: every one), on a grid `hop` samples
    apart (`tag.py --hop`; None: the model's own step)."""
    from tagger.inference.inputs import path_problem

    problem = path_problem(query)
    if problem is not None:
        raise UserError(f"query {query!r}: {problem}")
    path = model["path"]
    if not os.path.exists(path) or model_fingerprint(path) != model["fingerprint"]:
        raise UserError(f"the database's model {path!r} is gone or changed since it tagged "
                        "the library, so the query cannot be compared: tag the query into "
                        "the database with that model, or retag the library")
    from tagger.backends import quiet_tensorflow_for_keras

    quiet_tensorflow_for_keras()
    from tagger.inference.engine.registry import ENGINES, EngineOptions, make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger

    engine = engine or ASSUMED_ENGINE
    if engine not in ENGINES or not ENGINES.get(engine).embeddings:
        givers = ", ".join(name for name, entry in ENGINES.items() if entry.embeddings)
        raise UserError(f"the library's embeddings came from engine {engine!r}, which this "
                        f"tagger cannot run for embeddings (it can: {givers}); tag the query "
                        "into the database with that engine, or retag the library with one "
                        "of these")
    keras_model, info = load_tagger(path)
    predictor = make_predictor(engine, keras_model, info, EngineOptions(
        embeddings=True, model_path=path, calibration_audio=lambda: [query]))
    (result,) = list(tag_files(predictor, [query], hop_samples=hop, workers=1,
                               windows=windows))
    if not result.ok:
        raise UserError(f"query {query!r}: {result.error}")
    return np.asarray(result.embeddings, np.float32).mean(axis=0)


# -- the approximate index -------------------------------------------------------


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("--index faiss needs faiss, which is not installed: pip install "
                        "faiss-cpu (or pip install 'tagger[faiss]'); or use --index exact"
                        ) from None
    return faiss


def _use_faiss(reader, model: dict, index: str) -> bool:
    if index == "exact":
        return False
    if index == "faiss":
        _faiss()
        return True
    if reader.embedding_count(model) < APPROXIMATE_FROM:
        return False
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def build_index(vectors: np.ndarray, ids: np.ndarray):
    """A FAISS HNSW index (inner product) of the unit-length `vectors`
    (n, dim) float32, labelled with `ids` (n,) int64."""
    faiss = _faiss()
    graph = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efSearch = HNSW_EF_SEARCH
    index = faiss.IndexIDMap(graph)
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32),
                           np.asarray(ids, np.int64))
    return index


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return (matrix / norms).astype(np.float32)


def load_index(db: str, reader, model: dict, log=None):
    """The index of `model`'s embeddings, built (and saved beside `db`)
    when absent or older than the database's rows."""
    import json

    from tagger import fileio

    faiss = _faiss()
    path = f"{db}.{model['fingerprint'][:12]}.faiss"  # beside the database
    state = reader.embeddings_state(model)
    meta = path + ".json"
    try:
        with open(meta) as f:
            if json.load(f).get("state") == state:
                return faiss.read_index(path)
    except (OSError, ValueError, RuntimeError):
        pass
    if log:
        log(f"building the FAISS index of {db} (once; it is kept in {path})")
    ids, blocks = [], []
    for rowids, block in reader.matrices(model, "embedding", CHUNK, with_rowids=True):
        ids.extend(rowids)
        blocks.append(block)
    dim = model["embedding_dim"]
    matrix = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
    index = build_index(unit_rows(matrix), np.asarray(ids, np.int64))
    try:
        with fileio.replacing(path) as tmp:
            faiss.write_index(index, tmp)
        fileio.write_atomic(meta, json.dumps({"state": state}))
    except (OSError, RuntimeError):  # a read-only place: searched, not kept
        pass
    return index


def _search_index(db, reader, model, vector, k, skip, log):
    index = load_index(db, reader, model, log)
    scores, ids = index.search(vector[None].astype(np.float32), k + 1)
    found = []
    for score, rowid in zip(scores[0], ids[0]):
        if rowid < 0:
            continue
        path = reader.path_of_rowid(int(rowid))
        if path is not None and path != skip:
            found.append((path, float(score)))
    return found[:k]
