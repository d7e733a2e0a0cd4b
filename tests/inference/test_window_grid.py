"""Windows on one whole-file frame grid (`tagger.models.saved.window_grid`):
a model with an uncentred front end (the musicnn package's) is fed windows
cut from the file reflected once at its edges, so its frames are those of
one centred STFT over the whole file; every other model keeps side-by-side
windows. Checked through tag.py's pipeline on a tiny pons_musicnn trained
as train.py saves it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile

from tagger.inference.engine.keras import KerasPredictor
from tagger.inference.engine.tagging import tag_files
from tagger.layers import LogMel
from tagger.models.pons_musicnn import LOGMEL
from tagger.models.saved import load_tagger, window_grid
from tests.checks import records_info, saved_model

RECORDS = records_info(["a", "b", "c"], 16000, 48128)


@pytest.fixture(scope="module")
def tiny_pons(tmp_path_factory):
    from tagger.models import family

    path = saved_model("pons_musicnn", family("pons_musicnn").tiny, RECORDS,
                       tmp_path_factory.mktemp("tiny_pons"))
    return load_tagger(str(path))


def test_the_grid_of_each_kind_of_model(tiny_pons):
    model, info = tiny_pons
    assert window_grid(model, info, 48128) == (187 * 256, 256)
    assert window_grid(model, dataclasses.replace(info, window_segments=2),
                       2 * 48128) == (2 * 48128, 0)
    centred = dataclasses.replace(info, logmel=dict(info.logmel, center=True))
    assert window_grid(model, centred, 48128) == (48128, 0)
    assert window_grid(model, None, 48128) == (187 * 256, 256)  # from its log_mel layer
    predictor = KerasPredictor(model, info)
    assert (predictor.hop_samples, predictor.edge_padding) == (47872, 256)


def test_tagging_gives_the_whole_files_frames(tiny_pons, tmp_path):
    """Each window's scores are the model's on the file reflected by 256
    samples at its edges, windows every 187 x 256 samples, the last partial
    one dropped; a file of fewer than 187 frames is one window, padded."""
    model, info = tiny_pons
    rng = np.random.default_rng(0)
    long = (0.3 * rng.standard_normal(3 * 47872 + 30000)).astype(np.float32)
    short = (0.3 * rng.standard_normal(47615)).astype(np.float32)  # 186 frames
    for name, x in (("long.wav", long), ("short.wav", short)):
        soundfile.write(tmp_path / name, x, 16000, subtype="FLOAT")
    predictor = KerasPredictor(model, info)
    results = {r.path: r for r in tag_files(predictor, [str(tmp_path / "long.wav"),
                                                       str(tmp_path / "short.wav")])}
    result = results[str(tmp_path / "long.wav")]
    padded = np.pad(long, 256, mode="reflect")
    windows = np.stack([padded[k * 47872:k * 47872 + 48128] for k in range(3)])
    assert result.windows == 3 and not result.padded
    assert list(result.starts) == [0, 47872, 2 * 47872]
    np.testing.assert_allclose(result.scores, np.asarray(model(windows)), atol=1e-5)
    # the front end's frames are the whole file's centred STFT's, cut in 187
    whole = np.asarray(LogMel(sample_rate=16000, **dict(vars(LOGMEL), center=True))(
        long[None]))[0]
    front = LogMel(sample_rate=16000, **vars(LOGMEL))
    frames = np.concatenate([np.asarray(front(w[None]))[0] for w in windows])
    np.testing.assert_allclose(frames, whole[:3 * 187], atol=2e-3)
    result = results[str(tmp_path / "short.wav")]
    assert result.windows == 1 and result.padded and result.samples == 47615


def test_embedding_layer_picks_any_per_window_vector(tiny_pons, tmp_path, capsys):
    """tag.py --embedding-layer: the pooled features of the package's
    Musicnn (or any layer with one vector per window) into the .npz; one
    line for a layer without one, and where it does not apply."""
    from tagger.commands import tag as tag_cmd
    from tagger.models.saved import save_tagger
    from tests.checks import call_main, one_line_error

    model, info = tiny_pons
    path = tmp_path / "pons.keras"
    save_tagger(model, info, str(path))
    audio = tmp_path / "a.wav"
    soundfile.write(audio, np.random.default_rng(1).uniform(-0.3, 0.3, 60000), 16000)
    code, _, err = call_main(tag_cmd.main, capsys, path, audio, "--embeddings",
                             tmp_path / "e.npz", "--embedding-layer", "max_pool",
                             "--no-progress")
    assert code == 0, err
    channels = model.get_layer("midend_concat").output.shape[-1]
    assert np.load(tmp_path / "e.npz")[str(audio) + "::windows"].shape == (1, channels)
    code, _, err = call_main(tag_cmd.main, capsys, path, audio, "--embeddings",
                             tmp_path / "f.npz", "--embedding-layer", "front_end")
    one_line_error(code, err, "--embedding-layer 'front_end' is not a layer of this model "
                              "with one vector per window", "embedding")
    for extra in (["--db", tmp_path / "lib.db", "--embeddings"], []):
        code, _, err = call_main(tag_cmd.main, capsys, path, audio, *extra,
                                 "--embedding-layer", "pooled")
        one_line_error(code, err, "--embedding-layer applies with --embeddings PATH and no "
                                  "--db only")


@pytest.mark.slow
def test_exports_say_their_grid_and_run_on_builtin_tflite_ops(tiny_pons, tmp_path):
    """The SavedModel's `info` signature gives the hop and the edge padding;
    the TFLite export (float16 rounding in plain arithmetic) needs no select
    TensorFlow op and verifies against the Keras model."""
    import tensorflow as tf

    from tagger.inference.export.config import ExportConfig
    from tagger.inference.export.formats import export
    from tagger.models.saved import save_tagger

    model, info = tiny_pons
    path = tmp_path / "pons.keras"
    save_tagger(model, info, str(path))
    saved = export(ExportConfig(model=str(path), out=str(tmp_path / "saved")))
    assert (saved.hop_samples, saved.edge_padding) == (47872, 256)
    grid = {k: int(v) for k, v in tf.saved_model.load(str(tmp_path / "saved")).info().items()}
    assert grid == {"sample_rate": 16000, "window_samples": 48128, "hop_samples": 47872,
                    "edge_padding": 256}
    lite = export(ExportConfig(model=str(path), format="tflite",
                               out=str(tmp_path / "pons.tflite")))
    assert not lite.select_tf_ops and lite.max_difference < 1e-4
