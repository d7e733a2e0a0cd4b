"""Raw records with the in-graph front end and log-mel records from build_mtt
give the same clip predictions for the same weights."""

import dataclasses

import keras
import numpy as np
import pytest

from tagger.config import FeatureConfig
from tagger.errors import UserError
from tagger.evaluation.predict import ClipPredictor
from tagger.models import build_model
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.model_fit import window_segments_for
from tests.checks import build_mtt
from tests.presets import RECORDS_LOGMEL as LOGMEL  # the log-mel records' settings

TINY = dict(conv_ndim=8, attention_ndim=16, attention_heads=2, attention_layers=1)


@pytest.fixture(scope="module")
def float_records(synthetic_mtt, tmp_path_factory):
    """Raw float32 records: the same decoded audio the log-mel build sees
    (int16 storage would add quantisation noise to quiet passages)."""
    out = tmp_path_factory.mktemp("float") / "records"
    info = build_mtt(synthetic_mtt[0], out, features=FeatureConfig("raw", "float32"))
    return str(out), info


def twin_models(num_tags, segments=2):
    keras.utils.set_random_seed(3)
    raw = build_model("transformer", num_tags=num_tags, input_kind="raw",
                      segments=segments, logmel=LOGMEL, **TINY)
    mel = build_model("transformer", num_tags=num_tags, input_kind="logmel",
                      segments=segments, logmel=LOGMEL, **TINY)
    mel.set_weights(raw.get_weights())
    return raw, mel


def test_raw_and_log_mel_records_predict_the_same(float_records, logmel_records):
    raw_dir, raw_info = float_records
    mel_dir, mel_info = logmel_records
    raw_model, mel_model = twin_models(raw_info.num_tags)
    a = ClipPredictor(raw_model)(raw_dir, "test", 2, batch_size=4)
    b = ClipPredictor(mel_model)(mel_dir, "test", 2, batch_size=4)
    np.testing.assert_array_equal(a.clip_ids, b.clip_ids)
    assert a.windows == b.windows > 0
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def mel_model_info(info: dict) -> TaggerMetadata:
    """The metadata of a log-mel model trained on the records of `info`."""
    return TaggerMetadata(model="transformer", model_args={}, tag_names=info.tag_names,
                          sample_rate=info.sample_rate,
                          segment_length=info.segment_length, window_segments=2,
                          input_kind="logmel", logmel=dict(info.features["logmel"]))


def test_log_mel_settings_must_match(logmel_records):
    _, info = logmel_records
    _, mel_model = twin_models(info.num_tags)
    model_info = mel_model_info(info)
    assert window_segments_for(mel_model, model_info, info) == 2
    model_info = dataclasses.replace(model_info, logmel=dataclasses.asdict(
        dataclasses.replace(LOGMEL, f_max=11025.0)))
    with pytest.raises(UserError, match="log-mel features"):
        window_segments_for(mel_model, model_info, info)


def test_sample_rate_must_match(logmel_records):
    _, info = logmel_records
    _, mel_model = twin_models(info.num_tags)
    model_info = mel_model_info(info)
    assert window_segments_for(mel_model, model_info, info) == 2
    # e.g. the converted self-attention release
    model_info = dataclasses.replace(model_info, sample_rate=16000)
    with pytest.raises(UserError, match=r"sample rate 16000 \(the dataset has 22050\)"):
        window_segments_for(mel_model, model_info, info)
