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
# From this many embeddings on, `index="auto"` searches an approximate FAISS
# index (when faiss is installed): bench/bench_similar.py measures its
# recall@10 against the exact search and the time per query of both.
APPROXIMATE_FROM = 100_000
INDEXES = ("auto", "exact", "faiss")
HNSW_NEIGHBOURS = 32  # links per vector in the HNSW graph
HNSW_EF_SEARCH = 128  # candidates visited per query: recall against speed


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
            log=None, index: str = "auto") -> list[tuple[str, float]]:
    """The `k` files whose embeddings are nearest to `query`'s (cosine):
    exact, or from a FAISS HNSW index (`index`: "exact", "faiss", or "auto":
    FAISS from `APPROXIMATE_FROM` embeddings on, when installed)."""
    if index not in INDEXES:
        raise UserError(f"--index must be one of {', '.join(INDEXES)}, got {index!r}")
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
        if _use_faiss(con, chosen, index):
            return _search_index(db, con, chosen, vector, k, os.path.abspath(query), log)

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


# -- the approximate index -------------------------------------------------------


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("--index faiss needs faiss, which is not installed: pip install "
                        "faiss-cpu (or pip install 'tagger[faiss]'); or use --index exact"
                        ) from None
    return faiss


def _use_faiss(con, model: dict, index: str) -> bool:
    if index == "exact":
        return False
    if index == "faiss":
        _faiss()
        return True
    count = con.execute("SELECT COUNT(*) FROM files WHERE model = ? AND embedding IS NOT "
                        "NULL", (model["fingerprint"],)).fetchone()[0]
    if count < APPROXIMATE_FROM:
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


def index_path(db: str, model: dict) -> str:
    """Where the index of `model`'s embeddings in `db` is kept: beside it."""
    return f"{db}.{model['fingerprint'][:12]}.faiss"


def _state(con, model: dict) -> str:
    """What the index was built from: changes whenever a row is added or
    replaced (a replaced row gets a new rowid)."""
    count, top, tagged = con.execute(
        "SELECT COUNT(*), MAX(rowid), MAX(tagged) FROM files WHERE model = ? AND "
        "embedding IS NOT NULL", (model["fingerprint"],)).fetchone()
    return f"{count}:{top}:{tagged}"


def load_index(db: str, con, model: dict, log=None):
    """The index of `model`'s embeddings, built (and saved beside `db`)
    when absent or older than the database's rows."""
    import json

    from tagger import fileio

    faiss = _faiss()
    path, state = index_path(db, model), _state(con, model)
    meta = path + ".json"
    try:
        with open(meta) as f:
            if json.load(f).get("state") == state:
                return faiss.read_index(path)
    except (OSError, ValueError, RuntimeError):
        pass
    if log:
        log(f"building the FAISS index of {db} (once; it is kept in {path})")
    ids, vectors = [], []
    for rowid, blob in con.execute("SELECT rowid, embedding FROM files WHERE model = ? AND "
                                   "embedding IS NOT NULL", (model["fingerprint"],)):
        ids.append(rowid)
        vectors.append(np.frombuffer(blob, "<f4"))
    dim = model["embedding_dim"]
    matrix = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
    index = build_index(unit_rows(matrix), np.asarray(ids, np.int64))
    tmp = fileio.temporary_path(path)
    try:
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
        fileio.write_atomic(meta, json.dumps({"state": state}))
    except (OSError, RuntimeError):  # a read-only place: searched, not kept
        fileio.remove_quietly(tmp)
    return index


def _search_index(db, con, model, vector, k, skip, log):
    index = load_index(db, con, model, log)
    scores, ids = index.search(vector[None].astype(np.float32), k + 1)
    found = []
    for score, rowid in zip(scores[0], ids[0]):
        if rowid < 0:
            continue
        row = con.execute("SELECT path FROM files WHERE rowid = ?", (int(rowid),)).fetchone()
        if row is not None and row[0] != skip:
            found.append((row[0], float(score)))
    return found[:k]
