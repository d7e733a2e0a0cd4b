"""The own-tags demo (demo.py --own-tags): a tagger of tags of the user's
own, learnt from a few labelled files on a trained model's body (train.py
--from), beside the same split trained from scratch.

music (Debian's game soundtracks, `soundtracks.py`, or a folder of the
user's) -> labels: each top-level folder is a tag (a soundtrack), and up
to `per_tag` of its files, drawn with the seed, are labelled with it (at
most half of them, so that every tag keeps files to test on) -> records at
the body's rate and window (16 kHz, 48128-sample segments for
MTT_musicnn), the labelled files split 80/10/10 by file and the others
kept as the unlabelled `student` split -> the body's tagger (`--from`) and
the same architecture trained from scratch (the body's family at its demo
size: pons_musicnn for MTT_musicnn) on the same split -> both measured on the held-out files (every
file of a tag's folder that was not labelled), each file scored as tag.py
scores it -> the table of both, and tag.py's tags of one held-out file.

Each step writes into `work_dir` and is skipped on a rerun when its
output was made with the settings asked for (`pipeline`'s stamps); the
builder, the body's embeddings and the trainer resume their own work.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time

from tagger import fileio, strict_json
from tagger.config import join_path

CLIPS_PER_SHARD = 10
MIN_FILES = 4  # a folder with fewer files is no tag: too few to label and to test on
HELDOUT_FILE = "heldout.json"


@dataclasses.dataclass(frozen=True)
class OwnTagsDemoConfig:
    work_dir: str = "demo_output/own_tags"
    music: str | None = None  # a folder of audio, a tag per top-level folder; None: Debian's
    from_model: str = "musicnn-package"  # a model, or a set of them (registry.BODY_SETS)
    per_tag: int = 10  # labelled files per tag, at most
    epochs: int | None = None  # from scratch; None: the family's demo setting's
    batch_size: int | None = None  # the same
    lr: float | None = None  # the same
    workers: int = 1
    seed: int = 0
    progress: bool = True


def run_own_tags_demo(config: OwnTagsDemoConfig):
    """Runs every step; yields report lines as it goes."""
    from tagger.training.pretrained_body import Body

    start = time.time()
    bodies = [Body(name, config.progress)  # a bad name stops the demo here
              for name in body_names(config)]
    body = bodies[0]
    scratch_family = family_of(body)
    yield (f"body: {config.from_model} ({', '.join(b.name for b in bodies)}; "
           if len(bodies) > 1 else f"body: {config.from_model} (") + (
           f"{scratch_family}, {body.info.sample_rate} Hz, {body.info.segment_length}-sample "
           f"windows), embedding layer {body.embedding_layer} of {body.embedding_dim} values")
    music = yield from music_step(config)
    labels = yield from labels_step(config, music)
    records = join_path(config.work_dir, "records")
    yield from build_step(config, music, labels, records, body.info)
    ours = yield from train_step(config, records, music, from_config(config, records),
                                 body_sha256="+".join(b.fingerprint for b in bodies))
    scratch = yield from train_step(config, records, music,
                                    scratch_config(config, records, scratch_family))
    models = {f"from {config.from_model}": ours, f"from scratch ({scratch_family})": scratch}
    heldout = yield from heldout_step(config, records, music, labels, models)
    from tagger.records.info import load_info

    yield from report(models, heldout, load_info(records).splits["test"]["clips"])
    yield from tag_one_file(music, heldout, ours)
    yield f"demo finished in {time.time() - start:.0f} s"


def body_names(config: OwnTagsDemoConfig) -> tuple:
    """The bodies `from_model` names: one, or each of a set of them."""
    from tagger.pretrained.registry import BODY_SETS

    return BODY_SETS.get(config.from_model, (config.from_model,))


def family_of(body) -> str:
    """The family of the body, which the demo trains from scratch."""
    from tagger.errors import UserError
    from tagger.models import FAMILY_NAMES

    if body.info.model not in FAMILY_NAMES:
        raise UserError(f"--from {body.name!r} is a {body.info.model!r} model, of no family "
                        "of this project, so the demo cannot train its architecture from "
                        "scratch; give a pretrained name or a model saved by train.py")
    return body.info.model


def music_step(config: OwnTagsDemoConfig):
    """The folder of music: the user's, or Debian's soundtracks laid out."""
    if config.music:
        yield f"music: {config.music}"
        return config.music
    from tagger.demos.soundtracks import SOUNDTRACKS, music_folder

    soundtracks = [s for s in SOUNDTRACKS if s.package != "asc-music"]  # 3 tracks: too few
    folder = join_path(config.work_dir, "music")
    start = time.time()
    yield (f"music: Debian's game soundtracks ({', '.join(s.package for s in soundtracks)}) "
           f"into {folder}")
    music_folder(folder, join_path(config.work_dir, "debs"), soundtracks)
    yield f"music ready in {time.time() - start:.0f} s"
    return folder


def folder_tags(music: str) -> dict:
    """{tag: its files}: each top-level folder of `music` with at least
    MIN_FILES audio files (paths relative to `music`, sorted)."""
    from tagger.datasets.folder import audio_files

    folders = {}
    for path in audio_files(music):
        if "/" in path:
            folders.setdefault(path.split("/")[0], []).append(path)
    return {tag: files for tag, files in sorted(folders.items()) if len(files) >= MIN_FILES}


def labels_step(config: OwnTagsDemoConfig, music: str):
    """`work_dir/labels.csv`: up to `per_tag` files of each tag (at most
    half of its files), drawn with the seed. A folder whose name cannot be
    a tag as it is (`tag_problem`: a ';'; or spaces at its ends, which the
    CSV drops) is left out with a line; labelled files too few for the
    build to keep one for validation are refused. Returns its path."""
    import numpy as np

    from tagger.datasets.labels_csv import labels_text
    from tagger.errors import UserError

    tags = {}
    for tag, files in folder_tags(music).items():
        problem = _folder_problem(tag)
        if problem:
            yield (f"folder {fileio.path_text(tag)!r} left out: its name {problem}; rename "
                   "it to make it a tag")
        else:
            tags[tag] = files
    if len(tags) < 2:
        raise UserError(f"--music {music!r} needs two or more folders of {MIN_FILES} or more "
                        "audio files each: each folder is a tag")
    rng = np.random.default_rng(config.seed)
    rows, counts = [], {}
    for tag, files in tags.items():
        chosen = sorted(rng.permutation(files)[:min(config.per_tag, len(files) // 2)])
        rows += [(str(path), [fileio.path_text(tag)]) for path in chosen]
        counts[tag] = len(chosen)
    _check_split(config, {tag: len(files) for tag, files in tags.items()}, counts)
    path = join_path(config.work_dir, "labels.csv")
    fileio.makedirs(config.work_dir)
    fileio.write_atomic(path, labels_text(rows))
    yield (f"labels: {path}, " + ", ".join(f"{tag} {n} of {len(tags[tag])} files"
                                            for tag, n in counts.items())
           + "; the other files are held out")
    return path


def _labelled_split_empty(labelled: int, seed: int) -> bool:
    """Whether build_folder's default split of `labelled` files leaves its
    train or val split empty."""
    from tagger.datasets.folder import FolderSettings, split_rows

    rows = split_rows([str(i) for i in range(labelled)], FolderSettings(seed=seed), what=None)
    return not rows["train"] or not rows["val"]


def _check_split(config: OwnTagsDemoConfig, sizes: dict, counts: dict) -> None:
    """A UserError in the demo's terms when the labelled files (`counts`,
    of folders of `sizes` files) are too few for the build to keep one for
    validation; it names the --per-tag that would do, where one would."""
    from tagger.errors import UserError

    labelled = sum(counts.values())
    if not _labelled_split_empty(labelled, config.seed):
        return
    enough = next((n for n in range(config.per_tag + 1, max(sizes.values()) // 2 + 1)
                   if not _labelled_split_empty(
                       sum(min(n, size // 2) for size in sizes.values()), config.seed)),
                  None)
    advice = (f"give --per-tag {enough} or more files per tag, or " if enough else "give ")
    raise UserError(
        f"the {labelled} labelled files ({', '.join(f'{tag} {n}' for tag, n in counts.items())}"
        f"; at most half of each folder's files) are too few for the build to keep a tenth "
        f"of them for validation; {advice}more folders, or folders of more files")


def _folder_problem(folder: str) -> str | None:
    """Why the top-level folder `folder` cannot be a tag of the labels
    CSV as its name is, or None."""
    from tagger.datasets.labels_csv import tag_problem

    text = fileio.path_text(folder)
    if text != text.strip():
        return "has spaces at its ends, which a labels CSV drops from a tag"
    return tag_problem(text)


def build_step(config: OwnTagsDemoConfig, music: str, labels: str, records: str, body_info):
    from tagger.config import AudioConfig, BuildConfig
    from tagger.datasets.build import build
    from tagger.datasets.folder import SOURCE, FolderSettings
    from tagger.records.info import describe

    start = time.time()
    info = build(SOURCE, FolderSettings(labels=labels, seed=config.seed),
                 BuildConfig(data_dir=music, out_dir=records, workers=config.workers,
                             audio=AudioConfig(body_info.sample_rate, body_info.segment_length),
                             clips_per_shard=CLIPS_PER_SHARD, overwrite=True,
                             max_seconds=SOURCE.max_seconds, progress=config.progress))
    yield describe(info, records)
    yield f"records built in {time.time() - start:.0f} s"


def from_config(config: OwnTagsDemoConfig, records: str):
    """train.py --data-dir RECORDS --from MODEL, its defaults."""
    from tagger.config import PretrainedConfig, TrainConfig
    from tagger.training.head_run import head_config

    return head_config(TrainConfig(
        data_dir=records, train_dir=join_path(config.work_dir, "runs"), seed=config.seed,
        strategy="default", resume=True, progress=config.progress,
        pretrained=PretrainedConfig(from_model=body_names(config)[0],
                                    also_from=body_names(config)[1:])))


def scratch_config(config: OwnTagsDemoConfig, records: str, name: str):
    """The body's family `name` trained from scratch on the same records as
    demo.py trains it: its demo setting (model size, batch, one Adam stage
    at its rate for its epochs), where the config does not say otherwise."""
    from tagger.config import TrainConfig
    from tagger.models import family

    preset = family(name).demo
    epochs = config.epochs or preset.epochs
    return TrainConfig(
        data_dir=records, train_dir=join_path(config.work_dir, "runs"), model=name,
        model_args=dict(preset.model_args), batch_size=config.batch_size or preset.batch_size,
        schedule="staged", optimizer="adam", lr=config.lr or preset.lr, num_stages=1,
        max_epochs_per_stage=epochs, patience=epochs, seed=config.seed,
        strategy="default", resume=True, progress=config.progress)


def train_step(config: OwnTagsDemoConfig, records: str, music: str, train_config,
               body_sha256: str | None = None):
    """One run, trained (or its earlier run's metrics, when made with the
    same settings and, on a body, the same body file: `body_sha256`, its
    SHA-256); returns (metrics, seconds its epochs took, from its history)."""
    from tagger.demos.pipeline import stamped_training
    from tagger.training.run import default_run_name

    name = default_run_name(train_config)
    what = (f"a head on each of {', '.join(body_names(config))}'s embeddings, their scores "
            "averaged" if train_config.pretrained.also_from else
            f"a head on {config.from_model}'s embeddings" if train_config.pretrained.from_model
            else f"{train_config.model} {train_config.model_args} from scratch, Adam lr "
                 f"{train_config.lr:g}, {train_config.max_epochs_per_stage} epochs")
    dataset = {"music": music, "per_tag": config.per_tag, "seed": config.seed}
    if body_sha256:
        dataset["body_sha256"] = body_sha256
    metrics = yield from stamped_training(config, train_config, dataset, f"training {what}",
                                          step=f"training-{name}")
    history = fileio.read_text(join_path(metrics["run_dir"], "history.csv"))
    return metrics, sum(float(row["seconds"]) for row in csv.DictReader(io.StringIO(history)))


def heldout_step(config: OwnTagsDemoConfig, records: str, music: str, labels: str,
                 models: dict):
    """Each model's clip scores of the held-out files (the records'
    `student` split), as tag.py scores a file, against their folders' tags;
    stored in `work_dir/heldout.json` and read back when made by the same
    models of the same records."""
    from tagger.datasets.folder import audio_files
    from tagger.evaluation.metrics import tag_metrics
    from tagger.records.fingerprint import records_fingerprint
    from tagger.records.info import load_info
    from tagger.training.model_outputs import ModelFile

    info = load_info(records)
    paths = [join_path(metrics["run_dir"], "model.keras") for metrics, _ in models.values()]
    files = [ModelFile(path, progress=False) for path in paths]
    key = {"records": records_fingerprint(records, info),
           "models": [f.fingerprint for f in files]}
    out = join_path(config.work_dir, HELDOUT_FILE)
    if fileio.exists(out):
        stored = json.loads(fileio.read_text(out))
        if stored.get("key") == key:
            yield f"held-out files: {out} (already measured)"
            return stored
    listing = audio_files(music)
    tag_names = list(info.tag_names)
    result = {"key": key, "models": {}}
    for (who, _), model in zip(models.items(), files):
        start = time.time()
        ids, scores = clip_scores(model, records, info, "student", config.progress)
        keep = [i for i, clip in enumerate(ids) if listing[clip].split("/")[0] in tag_names]
        y = [[float(listing[ids[i]].split("/")[0] == tag) for tag in tag_names] for i in keep]
        s = scores[keep][:, [list(model.info.tag_names).index(t) for t in tag_names]]
        metrics = tag_metrics(y, s, tag_names)
        result["models"][who] = {**metrics.as_dict(), "files": len(keep),
                                 "seconds": round(time.time() - start, 1),
                                 "example": listing[ids[keep[0]]] if keep else None}
        yield (f"held-out files, {who}: {len(keep)} files scored in "
               f"{time.time() - start:.0f} s")
    fileio.write_atomic(out, strict_json.dumps(result, indent=2) + "\n")
    return result


def clip_scores(model, records: str, info, split: str, progress: bool) -> tuple:
    """(clip ids, (clips, tags) the mean of each clip's window scores) of
    `model` over `split`, at its own rate and window (`model_outputs`)."""
    import numpy as np
    from tqdm import tqdm

    from tagger.records import reader

    ids, scores = [], []
    clips = reader.clip_dataset(records, split, info, with_tags=False)
    with reader.shard_errors(records, split, info):
        for clip, outputs in tqdm(model.clips_outputs(clips.as_numpy_iterator(),
                                                      info.sample_rate),
                                  desc=f"held-out: {model.name}",
                                  total=info.splits[split]["clips"], unit="file",
                                  disable=not progress):
            ids.append(int(clip["clip_id"]))
            scores.append(outputs.scores.mean(0))
    return ids, np.asarray(scores, np.float32)


def report(models: dict, heldout: dict, test_clips: int):
    """The table of both models, and the held-out figures per tag."""
    files = next(iter(heldout["models"].values()))["files"]
    yield (f"{'':36s}  {f'test split ({test_clips} files)':>20s}  "
           f"{f'held-out files ({files})':>22s}  {'epochs':>6s}  {'training':>8s}")
    yield f"{'':36s}  {'ROC-AUC  PR-AUC':>20s}  {'ROC-AUC  PR-AUC':>22s}"
    for who, (metrics, seconds) in models.items():
        test = metrics.get("test") or {}
        held = heldout["models"][who]
        yield (f"{who:36s}  {strict_json.number(test.get('roc_auc')):12.4f} "
               f"{strict_json.number(test.get('pr_auc')):7.4f}  {held['roc_auc']:14.4f} "
               f"{held['pr_auc']:7.4f}  {metrics.get('epochs'):6d}  {seconds:6.0f} s")
    for who, held in heldout["models"].items():
        per_tag = ", ".join(f"{row['tag']} {row['roc_auc']:.3f}" for row in held["per_tag"])
        yield f"held-out ROC-AUC per tag, {who}: {per_tag}"
    yield ("(the test split: the labelled files the build kept out of training; the "
           "held-out files: every other file of the tags' folders; training: the seconds "
           "its epochs took, validation included, the body's embeddings not)")


def tag_one_file(music: str, heldout: dict, ours, top_k: int = 3):
    """tag.py's best tags of one held-out file, by the tagger learnt."""
    from tagger.inference.engine.registry import make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger

    metrics, _ = ours
    model_path = join_path(metrics["run_dir"], "model.keras")
    example = next(iter(heldout["models"].values()))["example"]
    if example is None:
        return
    model, info = load_tagger(model_path)
    result = next(tag_files(make_predictor("keras", model, info), [join_path(music, example)]))
    if not result.ok:
        yield f"tag.py {model_path} {example}: {result.error}"
        return
    best = sorted(zip(info.tag_names, result.clip_scores), key=lambda pair: -pair[1])[:top_k]
    yield (f"python tag.py {model_path} {join_path(music, example)}: "
           + ", ".join(f"{tag} {score:.3f}" for tag, score in best))
