"""Which unlabelled files to label next (train.py --from MODEL --suggest N):
those whose labels would teach the tagger most, chosen on the body's
stored embeddings and the trained head's scores.

Each clip's uncertainty is that of its most uncertain tag, 1 - |2p - 1|
of the head's clip score p (1 at the decision boundary, 0 when sure); the
clips are chosen one at a time, each the clip of the greatest uncertainty
x distance from the nearest clip labelled or chosen already (the clips'
mean embeddings, Euclidean; the distance counts as 1 while there is none),
so that N suggestions are not N near-copies of one uncertain album:
uncertainty weighted by a greedy k-center's distance, as batch active
learning recommends for small batches (Sener & Savarese 2018, core-sets;
Ash et al. 2020, BADGE). A file already chosen, or one equal to a
labelled file, is never chosen again while another is left.
"""

from __future__ import annotations

import numpy as np

from tagger.config import join_path
from tagger.errors import UserError

SUGGESTED_FILE = "suggested.csv"  # in the run folder: path,tags with the tags to fill in
FLOOR = 1e-6  # the least uncertainty counted, so that distance still orders sure clips


def uncertainty(scores: np.ndarray) -> np.ndarray:
    """(clips,) in [0, 1]: 1 - |2p - 1| of each clip's most uncertain tag
    (`scores`: (clips, tags) sigmoid scores)."""
    scores = np.asarray(scores, np.float64)
    return (1.0 - np.abs(2.0 * scores - 1.0)).max(axis=1, initial=0.0)


def choose(scores: np.ndarray, embeddings: np.ndarray, count: int,
           labelled: np.ndarray | None = None) -> list[int]:
    """Indexes of min(`count`, clips) clips to label next, first the best
    (module docstring): `scores` (clips, tags) of the head, `embeddings`
    (clips, dim) the clips' mean embeddings, `labelled` (labelled clips,
    dim) those of the clips labelled already."""
    embeddings = np.asarray(embeddings, np.float64)
    weight = np.maximum(uncertainty(scores), FLOOR)
    nearest = np.full(len(embeddings), np.inf)  # distance to the nearest labelled or chosen
    if labelled is not None and len(labelled):
        for row in np.asarray(labelled, np.float64):
            nearest = np.minimum(nearest, np.linalg.norm(embeddings - row, axis=1))
    chosen = []
    for _ in range(min(count, len(embeddings))):
        gain = weight * np.where(np.isinf(nearest), 1.0, nearest)
        gain[chosen] = -1.0
        best = int(np.argmax(gain))
        chosen.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(embeddings - embeddings[best], axis=1))
    return chosen


def suggestions(paths, scores: np.ndarray, embeddings: np.ndarray, count: int,
                labelled: np.ndarray | None = None) -> tuple[list, str]:
    """(the `count` of `paths` to label next, first the best, as `choose`
    orders them on their `scores` and mean `embeddings`; their labels CSV
    with the tags to fill in)."""
    from tagger.datasets.labels_csv import labels_text

    picked = [paths[i] for i in choose(scores, embeddings, count, labelled)]
    return picked, labels_text((path, []) for path in picked)


def require_unlabelled(data_dir: str, info) -> None:
    """A UserError unless the records hold unlabelled files to suggest."""
    from tagger.records.plan import STUDENT_SPLIT

    if not info.splits.get(STUDENT_SPLIT, {}).get("clips"):
        raise UserError(f"--suggest lists files of the records' unlabelled {STUDENT_SPLIT!r} "
                        f"split, but {data_dir!r} has none (every file is labelled); build "
                        "the records with a --labels CSV that lists only the files labelled "
                        "so far (build_folder.py)")


def suggest_files(run_dir: str, config, count: int, log=print) -> list[str]:
    """The paths (relative to the music folder) of the `count` files of the
    records' unlabelled split to label next for the tagger of the finished
    --from run in `run_dir`, written to `run_dir`/SUGGESTED_FILE as a
    labels CSV with empty tags; all of them when the split holds fewer."""
    from tagger import fileio
    from tagger.models.saved import load_tagger
    from tagger.records.batches import clip_paths
    from tagger.records.info import load_info
    from tagger.records.plan import STUDENT_SPLIT
    from tagger.training import tag_head
    from tagger.training.head_run import PREDICT_BATCH
    from tagger.training.pretrained_body import Body, joined_embeddings

    data_dir = config.data_dir
    info = load_info(data_dir)
    require_unlabelled(data_dir, info)
    settings = config.pretrained
    bodies = [Body(name, config.progress, log)
              for name in (settings.from_model, *settings.also_from)]
    ids, paths = clip_paths(data_dir, STUDENT_SPLIT, info)
    rows = joined_embeddings(bodies, data_dir, info, STUDENT_SPLIT, clip_ids=ids,
                             progress=config.progress, log=log)
    labelled = np.concatenate([joined_embeddings(bodies, data_dir, info, split,
                                                 log=log).clip_means()
                               for split in ("train", "val", "test")
                               if info.splits.get(split, {}).get("clips")])
    tagger, tagger_info = load_tagger(join_path(run_dir, "model.keras"))
    head = tag_head.head_of(tagger, tagger_info)
    scores = rows.clip_means(np.asarray(head.predict(rows.values, batch_size=PREDICT_BATCH,
                                                     verbose=0)))
    picked, text = suggestions(paths, scores, rows.clip_means(), count, labelled)
    fileio.write_atomic(join_path(run_dir, SUGGESTED_FILE), text)
    return picked
