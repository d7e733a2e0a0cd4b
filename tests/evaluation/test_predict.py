"""ClipPredictor: a clip's scores are the mean of its windows' scores; with a
cap on the batches read, the clip that the cap cuts is read to its end and
none after it, so the figures are those of the whole split on its first
clips."""

import numpy as np

from tagger.evaluation.predict import ClipPredictor
from tagger.models import build_model
from tagger.records import reader
from tests.presets import SEGMENT, TINY_SAMPLECNN


def test_a_cap_on_batches_reads_the_clip_it_cuts_to_its_end(raw_records):
    records, info = raw_records
    model = build_model("samplecnn", num_tags=info.num_tags, input_length=SEGMENT,
                        **TINY_SAMPLECNN)
    predict = ClipPredictor(model)
    whole = predict(records, "test", 1, batch_size=3, info=info)
    # 3 batches of 3 windows: clips 0-3 (two segments each) and the first
    # window of clip 4, whose second window the fourth batch holds
    part = predict(records, "test", 1, batch_size=3, info=info, max_batches=3)
    np.testing.assert_array_equal(part.clip_ids, whole.clip_ids[:5])
    np.testing.assert_allclose(part.scores, whole.scores[:5], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(part.labels, whole.labels[:5])
    assert part.windows == 10 and whole.windows == 2 * info.splits["test"]["clips"]

    clips = list(reader.clip_dataset(records, "test", info).take(5).as_numpy_iterator())
    scores = np.concatenate([model.predict(c["segments"], verbose=0) for c in clips])
    labels = np.repeat([c["tags"] for c in clips], 2, axis=0)
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert abs(part.window_loss - loss) < 1e-6
