"""A real check of the tag-wise contribution maps: a small Music Tagging
Transformer trained on synthetic music finds drums where the drums play and
piano where the piano plays.

The training set is an MTT-layout dataset made here from the synthetic
instrument sounds (`render_clip`): 160 clips of 5.4 s, each with a random
set of instruments (drums and piano in about half of the clips, five other
instruments in a quarter each) and exactly those instruments as tags. It is
built with build_mtt and trained with train() (Adam, 10 epochs, 1-segment
windows). The test input joins a drums-only half and a piano-only half
into one window with `--concat`, as in Won et al.'s figure, in both orders.
"""

import json

import numpy as np
import pytest
import soundfile

from tagger.commands import attention as cli
from tagger.config import TrainConfig
from tagger.datasets.sounds import ClipAttributes, render_clip
from tagger.training.run import train
from tests.checks import build_mtt
from tests.presets import SAMPLE_RATE, SEGMENT

SOUNDS = {"drums": "drum_kit", "piano": "piano", "guitar": "distorted_guitar",
          "violin": "violin", "synth": "synth_pad", "flute": "flute", "bass": "bass"}
SHARE = {"drums": 0.5, "piano": 0.5}  # the others: 0.25
CLIPS = 160
SECONDS = 5.4  # two 59049-sample segments at 22050 Hz
SEED = 0


def write_dataset(root, clips=CLIPS, seed=SEED):
    """annotations_final.csv and FLAC files in the MagnaTagATune layout:
    folder c is the validation split, d the test split (one clip in ten
    each), 0-b training."""
    rng = np.random.default_rng(seed)
    names = list(SOUNDS)
    lines = ["\t".join(f'"{c}"' for c in ["clip_id", *names, "mp3_path"])]
    for i in range(clips):
        tags = []
        while not tags:
            tags = [t for t in names if rng.random() < SHARE.get(t, 0.25)]
        folder = {3: "c", 7: "d"}.get(i % 10, "0123456789ab"[i % 12])
        attributes = ClipAttributes(instruments=tuple(SOUNDS[t] for t in tags),
                                    tempo=str(rng.choice(["slow", "mid", "fast"])),
                                    key=int(rng.integers(45, 60)))
        audio = render_clip(attributes, SECONDS, SAMPLE_RATE, rng=int(rng.integers(1 << 30)))
        path = f"{folder}/clip{i:04d}.flac"
        (root / "mp3" / folder).mkdir(parents=True, exist_ok=True)
        soundfile.write(str(root / "mp3" / path), audio, SAMPLE_RATE, format="FLAC")
        values = [str(i + 1), *("1" if n in tags else "0" for n in names), path]
        lines.append("\t".join(f'"{v}"' for v in values))
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("instruments")
    write_dataset(root)
    records = str(root / "tfrecord")
    info = build_mtt(root, records, top_k=len(SOUNDS), clips_per_shard=100)
    assert info.splits["train"]["clips"] == 128
    metrics = train(TrainConfig(
        data_dir=records, train_dir=str(root / "runs"), model="transformer",
        model_args={"conv_ndim": 8, "attention_ndim": 32, "attention_heads": 4,
                    "attention_layers": 2},
        window_segments=1, batch_size=16, schedule="staged", optimizer="adam", lr=2e-3,
        num_stages=1, max_epochs_per_stage=10, patience=10, strategy="default",
        seed=SEED, progress=False))
    return root, metrics


@pytest.mark.slow
def test_contributions_follow_the_instruments(trained, capsys):
    root, metrics = trained
    per_tag = {row["tag"]: row["roc_auc"] for row in metrics["test"]["per_tag"]}
    assert per_tag["drums"] > 0.85 and per_tag["piano"] > 0.8, per_tag  # it learned them

    half = SEGMENT // 2  # two halves make one 1-segment window
    for name, attributes, seed in (("drums", ("drum_kit",), 1), ("piano", ("piano",), 2)):
        audio = render_clip(ClipAttributes(instruments=attributes), half / SAMPLE_RATE + 0.01,
                            SAMPLE_RATE, rng=seed)[:half]
        soundfile.write(str(root / f"{name}.wav"), audio, SAMPLE_RATE)
    out = root / "maps"
    code = cli.main([str(root / "runs" / "transformer" / "model.keras"),
                     "--concat", str(root / "drums.wav"), str(root / "piano.wav"),
                     "--concat", str(root / "piano.wav"), str(root / "drums.wav"),
                     "--tags", "drums,piano", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    figures = {}
    for first, second in (("drums", "piano"), ("piano", "drums")):
        name = f"{first}+{second}"
        meta = json.loads((out / f"{name}_maps.json").read_text())
        contributions = np.load(out / f"{name}_contributions.npy")  # (steps, tags)
        assert meta["windows"] == 1 and meta["steps_per_window"] == len(contributions) == 29
        steps = len(contributions)
        halves = {first: slice(0, steps // 2), second: slice(steps - steps // 2, steps)}
        for tag in ("drums", "piano"):
            column = contributions[:, meta["tag_names"].index(tag)]
            inside = float(column[halves[tag]].mean())
            other = second if tag == first else first
            outside = float(column[halves[other]].mean())
            figures[name, tag] = (round(inside, 3), round(outside, 3))
            assert inside > outside, (name, tag, inside, outside)
    print("mean contribution (own half, other half):", figures)
