"""tagger-similar's approximate index against its exact search.

    python bench/bench_similar.py [--files 100000] [--dim 256] [--queries 200]

Makes `--files` unit-length embeddings in clusters (like a library's: songs
of an album or a style lie close together; `--clusters` centres with noise
around each), builds the FAISS HNSW index tagger-similar uses
(tagger.inference.library.similar.build_index, the same settings), and answers
`--queries` queries (held-out points drawn like the rest) both ways.
Prints the index's build time, the time per query of each (the exact search
as tagger-similar does it: every vector scored with NumPy) and the recall@10
of the index against the exact top 10. Ratio lines: `ratio similar_recall_at_10`
(goal >= 0.95) and `ratio similar_speedup` (exact time / index time per query).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import ratio_line

from tagger.inference.library.similar import build_index, unit_rows


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("-k", type=int, default=10)
    return p.parse_args()


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((args.clusters, args.dim)).astype(np.float32)

    def draw(n):
        x = centres[rng.integers(0, args.clusters, n)]
        return unit_rows(x + 0.6 * rng.standard_normal((n, args.dim)).astype(np.float32))

    vectors, queries = draw(args.files), draw(args.queries)
    start = time.perf_counter()
    index = build_index(vectors, np.arange(args.files, dtype=np.int64))
    build = time.perf_counter() - start

    start = time.perf_counter()
    exact = []
    for q in queries:
        scores = vectors @ q
        top = np.argpartition(-scores, args.k)[:args.k]
        exact.append(set(top[np.argsort(-scores[top])].tolist()))
    exact_time = (time.perf_counter() - start) / len(queries)

    start = time.perf_counter()
    approx = [set(index.search(q[None], args.k)[1][0].tolist()) for q in queries]
    index_time = (time.perf_counter() - start) / len(queries)
    recall = float(np.mean([len(a & e) / args.k for a, e in zip(approx, exact)]))
    print(f"{args.files} embeddings of {args.dim} values, {args.clusters} clusters: index "
          f"built in {build:.1f} s; per query: exact {1000 * exact_time:.2f} ms, index "
          f"{1000 * index_time:.3f} ms")
    print(ratio_line(f"recall@{args.k} of the index against the exact search", recall,
                     ">= 0.95"))
    print(ratio_line("time per query, exact / index", exact_time / index_time, "> 1"))
    print(f"ratio similar_recall_at_10 {recall:.3f}")
    print(f"ratio similar_speedup {exact_time / index_time:.4g}")


if __name__ == "__main__":
    main()
