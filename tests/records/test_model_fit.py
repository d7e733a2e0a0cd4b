"""Whether a saved tagger fits a dataset's records, and the one line saying
how when it does not."""

import pytest

from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.model_fit import tag_order
from tests.checks import records_info


def test_tag_order_matches_by_name_or_says_how_the_tags_differ():
    model = TaggerMetadata(tag_names=["rock", "jazz", "pop"], sample_rate=16000,
                           segment_length=48128, input_kind="raw", window_segments=1,
                           logmel=None, model="samplecnn", model_args={})
    assert tag_order(model, records_info(["rock", "jazz", "pop"], 16000, 48128)) is None
    reordered = records_info(["pop", "rock", "jazz"], 16000, 48128)
    assert tag_order(model, reordered, reorder=True) == [2, 0, 1]
    with pytest.raises(UserError, match=r"in order only \(output 0 is 'rock', the dataset's "
                                        r"tag 0 'pop'\).*--tag-order"):
        tag_order(model, reordered)
    synthetic = records_info(["rock", "harp", "flute"], 16000, 48128, {"kind": "synthetic"})
    with pytest.raises(UserError, match=r"2 of its 3 are not among the dataset's tags "
                                        r"\('jazz', 'pop'\) \(these are records of the "
                                        r"synthetic dataset.*build_mtt.py --sample-rate "
                                        r"16000 --segment-length 48128$"):
        tag_order(model, synthetic, reorder=True)
