""""More like this" over a results database (tag.py --db ... --embeddings):
exact search in NumPy.

- A query file: its embedding (the mean penultimate-layer vector, as stored)
  is read from the database, or computed on the fly with the database's
  model when the file is not there (or changed since); the library is
  ranked by cosine similarity to it, the query itself left out.
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
from tagger.inference import results_db

CHUNK = 4096


def _top(rows, score_of, k: int, skip: str | None = None) -> list[tuple[str, float]]:
    """The `k` best (path, score) of `rows` (an iterable of (path, blob)),
    scored a chunk at a time by `score_of(list of blobs) -> (n,) scores`."""
    best: list[tuple[float, str]] = []  # a min-heap of the k best
    chunk = []

    def flush():
        if not chunk:
            return
        scores = score_of([blob for _, blob in chunk])
        for (path, _), score in zip(chunk, scores):
            if path == skip:
                continue
            item = (float(score), path)
            if len(best) < k:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            flush()
    flush()
    return [(path, score) for score, path in sorted(best, key=lambda i: (-i[0], i[1]))]


def by_tags(db: str, tags, k: int = 10, model: str | None = None) -> list[tuple[str, float]]:
    """The `k` files whose mean score over `tags` is highest."""
    con = results_db.open_existing(db)
    try:
        chosen = results_db.choose_model(con, db, model)
        names = chosen["tag_names"]
        unknown = [t for t in tags if t not in names]
        if unknown or not tags:
            raise UserError(f"unknown tag(s) {unknown}; the model's tags are: "
                            f"{', '.join(names)}")
        columns = [names.index(t) for t in tags]

        def score_of(blobs):
            scores = np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), len(names))
            return scores[:, columns].mean(axis=1)

        rows = con.execute("SELECT path, scores FROM files WHERE model = ? ORDER BY path",
                           (chosen["fingerprint"],))
        return _top(rows, score_of, k)
    finally:
        con.close()


def by_file(db: str, query: str, k: int = 10, model: str | None = None,
            log=None) -> list[tuple[str, float]]:
    """The `k` files whose embeddings are nearest to `query`'s (cosine)."""
    con = results_db.open_existing(db)
    try:
        chosen = results_db.choose_model(con, db, model)
        if not chosen["embedding_dim"]:
            raise UserError(f"{db!r} holds no embeddings for model "
                            f"{chosen['fingerprint'][:12]}; tag the library with them: "
                            f"tag.py MODEL FOLDER --db {db} --embeddings")
        vector = _stored(con, chosen, query)
        if vector is None:
            if log:
                log(f"{query} is not in the database (or changed): tagging it with "
                    f"{chosen['path']}")
            vector = embed(chosen, query)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        dim = len(vector)

        def score_of(blobs):
            matrix = np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), dim)
            norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)
            return matrix @ vector / norms

        rows = con.execute("SELECT path, embedding FROM files WHERE model = ? AND "
                           "embedding IS NOT NULL ORDER BY path", (chosen["fingerprint"],))
        return _top(rows, score_of, k, skip=os.path.abspath(query))
    finally:
        con.close()


def _stored(con, model: dict, query: str):
    if not os.path.isfile(query):
        return None
    key, size, mtime = results_db.file_key(query)
    row = con.execute("SELECT size, mtime_ns, embedding FROM files WHERE path = ? AND "
                      "model = ?", (key, model["fingerprint"])).fetchone()
    if row is None or row[2] is None or (row[0], row[1]) != (size, mtime):
        return None
    return np.frombuffer(row[2], "<f4").astype(np.float32)


def embed(model: dict, query: str) -> np.ndarray:
    """The mean embedding of `query` by the database's model (its file must
    still be there, unchanged: the fingerprint is checked)."""
    from tagger.inference.inputs import path_problem

    problem = path_problem(query)
    if problem is not None:
        raise UserError(f"query {query!r}: {problem}")
    path = model["path"]
    if not os.path.exists(path) or results_db.model_fingerprint(path) != model["fingerprint"]:
        raise UserError(f"the database's model {path!r} is gone or changed since it tagged "
                        "the library, so the query cannot be compared: tag the query into "
                        "the database with that model, or retag the library")
    from tagger.runtime import quiet_tensorflow

    quiet_tensorflow()
    from tagger.inference.predictor import Predictor
    from tagger.inference.tagging import tag_files
    from tagger.models.saved import load_tagger

    keras_model, info = load_tagger(path)
    predictor = Predictor(keras_model, info, embeddings=True)
    (result,) = list(tag_files(predictor, [query], workers=1))
    if not result.ok:
        raise UserError(f"query {query!r}: {result.error}")
    return np.asarray(result.embeddings, np.float32).mean(axis=0)
