"""Windows on one whole-file frame grid (`tagger.models.saved.window_grid`):
a model with an uncentred front end (the musicnn package's) is fed windows
cut from the file reflected once at its edges, so its frames are those of
one centred STFT over the whole file; every other model keeps side-by-side
windows. Checked through tag.py's pipeline on a tiny pons_musicnn trained
as train.py saves it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from tagger.inference.predictor import Predictor
from tagger.inference.tagging import tag_files
from tagger.layers import LogMel
from tagger.models.pons_musicnn import LOGMEL
from tagger.models.saved import load_tagger, window_grid
from tests.checks import saved_model

RECORDS = {"num_tags": 3, "tag_names": ["a", "b", "c"], "sample_rate": 16000,
           "segment_length": 48128, "features": {"kind": "raw"}}


@pytest.fixture(scope="module")
def tiny_pons(tmp_path_factory):
    from tagger.models import family

    path = saved_model("pons_musicnn", family("pons_musicnn").tiny, RECORDS,
                       tmp_path_factory.mktemp("tiny_pons"))
    return load_tagger(str(path))


def test_the_grid_of_each_kind_of_model(tiny_pons):
    model, info = tiny_pons
    assert window_grid(model, info, 48128) == (187 * 256, 256)
    assert window_grid(model, dict(info, window_segments=2), 2 * 48128) == (2 * 48128, 0)
    centred = dict(info, logmel=dict(info["logmel"], center=True))
    assert window_grid(model, centred, 48128) == (48128, 0)
    assert window_grid(model, None, 48128) == (187 * 256, 256)  # from its log_mel layer
    predictor = Predictor(model, info)
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
    predictor = Predictor(model, info)
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
