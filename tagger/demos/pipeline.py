"""The demo pipeline: synthetic data -> records -> training -> evaluation ->
interpretation (SE excitations, or attention maps of one test clip).

Each step writes into `work_dir`. A rerun reuses a step's output only when
it was made with the settings asked for now: every step records its
settings (`.demo/<step>.json`, training's with the fingerprint of the
records it read; the dataset's own `synthetic.json`), and a step whose
settings changed is redone, with the steps after it. The builder and the
trainer resume their own partial work.
"""

from __future__ import annotations

import dataclasses
import json
import time

from tagger import fileio, strict_json
from tagger.config import AudioConfig, BuildConfig, TrainConfig, join_path, to_dict

STAMP_DIR = ".demo"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    work_dir: str = "demo_output"
    model: str = "samplecnn"
    model_args: dict = dataclasses.field(default_factory=dict)
    clips: int = 400
    seconds: float = 29.1
    batch_size: int = 8
    lr: float = 0.003
    epochs: int = 4
    window_segments: int | None = None  # None: the family's
    workers: int = 1
    seed: int = 0
    progress: bool = True


def run_demo(config: DemoConfig):
    """Runs every step; yields report lines as it goes."""
    start = time.time()
    data_dir = join_path(config.work_dir, "dataset")
    records = join_path(data_dir, records_folder(config.model))
    yield from make_dataset(config, data_dir)
    yield from build_records(config, data_dir, records)
    metrics = yield from train_model(config, records)
    run_dir = metrics["run_dir"]
    test = metrics.get("test", {})
    # metrics.json holds null for an undefined (NaN) metric
    yield (f"test split: macro ROC-AUC {strict_json.number(test.get('roc_auc')):.4f}, "
           f"PR-AUC {strict_json.number(test.get('pr_auc')):.4f}")
    yield f"model:   {join_path(run_dir, 'model.keras')} (and model.hdf5)"
    yield f"metrics: {join_path(run_dir, 'metrics.json')}"
    yield (f"logs:    {join_path(run_dir, 'history.csv')}, TensorBoard in "
           f"{join_path(run_dir, 'logs')}")
    yield from interpret_model(config, run_dir, data_dir, records)
    yield f"demo finished in {time.time() - start:.0f} s"


def make_dataset(config: DemoConfig, data_dir: str):
    from tagger.datasets.origin import ORIGIN_FILE
    from tagger.datasets.synthetic import generate

    wanted = _dataset_settings(config)
    marker = join_path(data_dir, ORIGIN_FILE)
    if fileio.exists(join_path(data_dir, "annotations_final.csv")) and fileio.exists(marker):
        made = json.loads(fileio.read_text(marker))
        made = {key: made.get(key) for key in wanted}
        if made == wanted:
            yield f"synthetic dataset: {data_dir} (already there)"
            return
        yield f"synthetic dataset: {_changes(made, wanted)}: made anew"
    start = time.time()
    summary = generate(data_dir, clips=config.clips, seconds=config.seconds,
                       seed=config.seed, progress=config.progress, overwrite=True,
                       workers=config.workers)
    yield (f"synthetic dataset: {summary.num_clips} clips of {summary.seconds:g} s in "
           f"{data_dir} ({time.time() - start:.0f} s; {len(summary.broken)} files broken "
           "on purpose)")


def family_audio(model: str) -> AudioConfig:
    """The records a family reads: its paper's sample rate (22050 Hz, the
    datasets', where it names none) and segment length."""
    from tagger.models import family

    spec = family(model)
    return AudioConfig(sample_rate=spec.sample_rate, segment_length=spec.segment_length)


def records_folder(model: str) -> str:
    """`tfrecord` for the default audio settings, else a folder named after
    them (`tfrecord-16000hz-464000`), so families of different inputs keep
    their records side by side."""
    audio = family_audio(model)
    return ("tfrecord" if audio == AudioConfig()
            else f"tfrecord-{audio.sample_rate}hz-{audio.segment_length}")


def segment_seconds(model: str) -> float:
    """Seconds of audio in one record segment of `model`'s records."""
    audio = family_audio(model)
    return audio.segment_length / audio.sample_rate


def build_records(config: DemoConfig, data_dir: str, records: str):
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE, MttSettings
    from tagger.records.info import describe

    start = time.time()
    # The build keeps finished shards only when they fit the dataset and
    # settings (its own fingerprint); anything else is rebuilt.
    info = build(SOURCE, MttSettings(seed=config.seed),
                 BuildConfig(data_dir=data_dir, out_dir=records, workers=config.workers,
                             audio=family_audio(config.model), overwrite=True,
                             progress=config.progress))
    yield describe(info, records)
    yield f"records built in {time.time() - start:.0f} s"


def train_model(config: DemoConfig, records: str):
    from tagger.training.model_setup import family_spec

    train_config = TrainConfig(
        data_dir=records, train_dir=join_path(config.work_dir, "runs"),
        model=config.model, model_args=dict(config.model_args),
        window_segments=config.window_segments,
        batch_size=config.batch_size, schedule="staged", optimizer="adam", lr=config.lr,
        lr_decay=0.2, num_stages=1, max_epochs_per_stage=config.epochs,
        patience=config.epochs, monitor="val_roc_auc", seed=config.seed, strategy="default",
        resume=True, progress=config.progress)
    window = config.window_segments or family_spec(config.model).window_segments
    return (yield from stamped_training(
        config, train_config, _dataset_settings(config),
        f"training {config.model} {config.model_args} on {window}-segment windows, "
        f"Adam lr {config.lr:g}, {config.epochs} epochs"))


def stamped_training(config, train_config: TrainConfig, dataset: dict, announce: str,
                     step: str = "training"):
    """`train_rounds(train_config)` (yielding `announce` first) and its
    metrics, or the metrics of the run that finished before with the same
    training and `dataset` settings on the same records (their fingerprint;
    the `step` stamp in `config.work_dir`); a run made with other settings
    or records is removed and trained anew."""
    from tagger.records.fingerprint import records_fingerprint
    from tagger.training.rounds import train_rounds
    from tagger.training.run import default_run_name

    run_dir = join_path(train_config.train_dir, default_run_name(train_config))
    metrics_path = join_path(run_dir, "metrics.json")
    dataset = {**dataset, "records": records_fingerprint(train_config.data_dir)}
    wanted = json.loads(json.dumps({  # as read back from the stamp: lists, not tuples
        **to_dict(dataclasses.replace(train_config, progress=True)), "dataset": dataset}))
    previous = _read_stamp(config, step)
    if previous == wanted and fileio.exists(metrics_path):
        yield f"training: {run_dir} (already finished)"
        return json.loads(fileio.read_text(metrics_path))
    if previous != wanted and fileio.exists(run_dir):
        reason = _changes(previous, wanted) if previous else "settings not recorded"
        yield f"training: {reason}: {run_dir} is trained anew"
        fileio.rmtree(run_dir)
    _write_stamp(config, step, wanted)
    yield announce
    start = time.time()
    metrics = train_rounds(train_config)
    yield f"trained in {time.time() - start:.0f} s"
    return metrics


def interpret_model(config: DemoConfig, run_dir: str, data_dir: str, records: str):
    """SE/ReSE sample-level CNNs: the excitation table of the test split and
    its figures; attention families: the attention and contribution maps of
    the first test clip; other models: a note."""
    from tagger.models import family

    model_path = join_path(run_dir, "model.keras")
    spec = family(config.model)
    analyses = spec.analyses_for(config.model_args)
    if "excitations" in analyses:
        from tagger.interpret.excitation_run import ExcitationConfig, run_excitations

        out = join_path(config.work_dir, "excitations.pkl")
        plots = join_path(config.work_dir, "excitation_plots")
        if _read_stamp(config, "excitations") == _read_stamp(config, "training") \
                and fileio.exists(out) and fileio.exists(plots):
            yield f"excitations: {out}, figures in {plots} (already there)"
            return
        start = time.time()
        yield from run_excitations(ExcitationConfig(
            model_path=model_path, data_dir=records, split="test", out=out,
            plots_dir=plots, progress=config.progress))
        _write_stamp(config, "excitations", _read_stamp(config, "training"))
        yield (f"excitations: {out}, figures in {plots} ({time.time() - start:.0f} s; "
               "notebooks/excitation_analysis.ipynb reads them)")
    elif "attention" in analyses:
        from tagger.interpret.attention_maps import write_attention_maps
        from tagger.records.batches import clip_paths

        out = join_path(config.work_dir, "attention_maps")
        found = [join_path(data_dir, "mp3", path) for path in clip_paths(records, "test")[1][:1]]
        if not found:
            yield "attention maps: skipped (the test split is empty)"
            return
        start = time.time()
        for line in write_attention_maps(model_path, found[:1], out_dir=out, top_k=5,
                                         progress=config.progress):
            yield f"attention maps: {line}"
        yield (f"attention maps of {found[0]} in {out} ({time.time() - start:.0f} s; "
               "notebooks/attention_maps.ipynb draws more)")
    else:
        block = spec.block(config.model_args)
        what = f"{config.model} with {block} blocks" if block else config.model
        yield (f"interpretation: skipped for {what} (excitations need SE or ReSE blocks, "
               "attention maps an attention model)")


def _dataset_settings(config: DemoConfig) -> dict:
    return {"clips": config.clips, "seconds": float(config.seconds), "seed": config.seed}


def _stamp_path(config: DemoConfig, step: str) -> str:
    return join_path(config.work_dir, STAMP_DIR, f"{step}.json")


def _read_stamp(config: DemoConfig, step: str):
    path = _stamp_path(config, step)
    if not fileio.exists(path):
        return None
    try:
        return json.loads(fileio.read_text(path))
    except json.JSONDecodeError:
        return None  # unreadable: as if never recorded, so the step is redone


def _write_stamp(config: DemoConfig, step: str, settings: dict) -> None:
    fileio.makedirs(join_path(config.work_dir, STAMP_DIR))
    fileio.write_atomic(_stamp_path(config, step), json.dumps(settings, sort_keys=True))


def _changes(old: dict, new: dict) -> str:
    """'epochs 4 -> 5, lr 0.003 -> 0.001': the settings that differ."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    keys = sorted(set(flat_old) | set(flat_new))
    diffs = [f"{k} {flat_old.get(k)} -> {flat_new.get(k)}" for k in keys
             if flat_old.get(k) != flat_new.get(k)]
    return "settings changed (" + ", ".join(diffs) + ")"


def _flatten(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
