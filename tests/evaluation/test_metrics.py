import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tagger.evaluation.metrics import binary_crossentropy, tag_metrics


def _random_case(seed=0, clips=60, tags=5):
    rng = np.random.default_rng(seed)
    labels = (rng.random((clips, tags)) < 0.3).astype(int)
    scores = np.clip(labels * 0.4 + rng.random((clips, tags)) * 0.7, 0, 1)
    return labels, scores


def test_macro_aucs_equal_sklearn():
    labels, scores = _random_case()
    names = [f"t{i}" for i in range(labels.shape[1])]
    result = tag_metrics(labels, scores, names)
    assert result.roc_auc == pytest.approx(roc_auc_score(labels, scores, average="macro"))
    assert result.pr_auc == pytest.approx(
        average_precision_score(labels, scores, average="macro"))
    assert result.excluded == ()
    assert list(result.per_tag.roc_auc) == sorted(result.per_tag.roc_auc, reverse=True)
    assert set(result.per_tag.tag) == set(names)


def test_tags_without_both_classes_are_excluded_and_named():
    labels, scores = _random_case(seed=1)
    labels[:, 1] = 0  # no positives
    labels[:, 3] = 1  # no negatives
    names = ["a", "b", "c", "d", "e"]
    result = tag_metrics(labels, scores, names)
    assert result.excluded == ("b", "d")
    keep = [0, 2, 4]
    assert result.roc_auc == pytest.approx(
        roc_auc_score(labels[:, keep], scores[:, keep], average="macro"))
    assert len(result.per_tag) == 3


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must both be"):
        tag_metrics(np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"])


def test_binary_crossentropy_matches_formula():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [0.3, 0.6]])
    expected = -np.mean([np.log(0.9), np.log(0.8), np.log(0.7), np.log(0.6)])
    assert binary_crossentropy(y, p) == pytest.approx(expected)
