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


def _direct_bootstrap(labels, scores, resamples, seed):
    """The textbook bootstrap: sklearn on every resample of the clips, over
    the tags with both classes in the whole split; a resample missing a
    class of one of them gets one clip of that class added."""
    rng = np.random.default_rng(seed)
    repair = np.random.default_rng([seed, 1])
    clips = len(labels)
    keep = [t for t in range(labels.shape[1]) if 0 < labels[:, t].sum() < clips]
    rocs, prs = [], []
    for _ in range(resamples):
        idx = list(rng.integers(0, clips, clips))
        for t in keep:
            for cls in (1, 0):
                if not (labels[idx, t] == cls).any():
                    idx.append(repair.choice(np.flatnonzero(labels[:, t] == cls)))
        y, s = labels[idx], scores[idx]
        rocs.append(np.mean([roc_auc_score(y[:, t], s[:, t]) for t in keep]))
        prs.append(np.mean([average_precision_score(y[:, t], s[:, t]) for t in keep]))
    return rocs, prs


def test_bootstrap_intervals_equal_a_direct_sklearn_bootstrap():
    from tagger.evaluation.metrics import bootstrap_intervals

    labels, scores = _random_case(seed=3, clips=40, tags=6)
    scores = np.round(scores, 1)  # many tied scores
    labels[:, 5] = 0
    labels[:3, 5] = 1  # a rare tag: missing from some resamples
    rocs, prs = _direct_bootstrap(labels, scores, 150, seed=7)
    got = bootstrap_intervals(labels, scores, resamples=150, seed=7)
    assert got["roc_auc"] == pytest.approx(tuple(np.percentile(rocs, [2.5, 97.5])),
                                           abs=1e-12)
    assert got["pr_auc"] == pytest.approx(tuple(np.percentile(prs, [2.5, 97.5])), abs=1e-12)
    assert got["resamples"] == 150 and got["seed"] == 7 and got["level"] == 0.95
    full = tag_metrics(labels, scores, [f"t{i}" for i in range(6)])
    assert got["roc_auc"][0] < full.roc_auc < got["roc_auc"][1]
    again = bootstrap_intervals(labels, scores, resamples=150, seed=8)
    assert again["roc_auc"] != got["roc_auc"]  # the seed matters


def test_paired_gain_equals_a_direct_sklearn_bootstrap_of_the_differences():
    """The gain's interval: both models on the same resampled clips (those of
    bootstrap_intervals with the same seed), percentiles of the differences."""
    from tagger.evaluation.metrics import bootstrap_macro_aucs, paired_bootstrap_gain

    labels, weak = _random_case(seed=4, clips=50, tags=5)
    rng = np.random.default_rng(5)
    strong = np.clip(labels * 0.8 + rng.random(labels.shape) * 0.5, 0, 1)
    weak = np.round(weak, 1)  # ties
    labels[:, 4] = 0
    labels[:3, 4] = 1  # a rare tag: missing from some resamples
    roc_w, pr_w = _direct_bootstrap(labels, weak, 120, seed=2)
    roc_s, pr_s = _direct_bootstrap(labels, strong, 120, seed=2)
    got = paired_bootstrap_gain(labels, weak, strong, resamples=120, seed=2)
    for key, s, w in (("roc_auc", roc_s, roc_w), ("pr_auc", pr_s, pr_w)):
        expected = np.percentile(np.subtract(s, w), [2.5, 97.5])
        assert got[key] == pytest.approx(tuple(expected), abs=1e-12)
    assert got["roc_auc"][0] > 0  # the stronger model's gain lies beyond the interval
    assert (got["resamples"], got["seed"], got["level"]) == (120, 2, 0.95)
    # the same resamples as bootstrap_intervals: each model's own draws are its
    (alone_roc, _), = bootstrap_macro_aucs(labels, [weak], 120, seed=2)
    np.testing.assert_allclose(alone_roc, roc_w, atol=1e-12)
    same = paired_bootstrap_gain(labels, weak, weak, resamples=50)
    assert same["roc_auc"] == (0.0, 0.0) and same["pr_auc"] == (0.0, 0.0)


def test_tags_with_few_clips_are_flagged():
    labels, scores = _random_case(seed=2, clips=30, tags=3)
    labels[:, 0] = 0
    labels[:4, 0] = 1  # 4 positives
    labels[:, 1] = 1
    labels[:3, 1] = 0  # 3 negatives
    labels[:, 2] = 0
    labels[:10, 2] = 1
    result = tag_metrics(labels, scores, ["rare", "common", "fine"])
    flags = dict(zip(result.per_tag.tag, result.per_tag.few_clips))
    assert flags == {"rare": True, "common": True, "fine": False}
    assert dict(zip(result.per_tag.tag, result.per_tag.negatives))["common"] == 3
    assert result.as_dict()["few_clip_tags"] == sorted(["rare", "common"],
                                                       key=list(result.per_tag.tag).index)


def test_the_point_estimate_lies_inside_its_interval_and_excluded_tags_are_named():
    """Six tags with one positive clip each, scored last: dropping them from
    the resamples that miss their clip put the interval above the estimate
    (0.2961 outside [0.2980, 0.5428] before); every resample now averages
    the same tags. A tag with no positive clip is excluded once and named."""
    import dataclasses

    from tagger.evaluation.evaluate import Evaluation, report_lines
    from tagger.evaluation.metrics import bootstrap_intervals
    from tagger.evaluation.predict import ClipPredictions

    rng = np.random.default_rng(0)
    clips, common, rare = 120, 4, 6
    labels = np.zeros((clips, common + rare + 1), np.float32)  # the last: no positive
    labels[:, :common] = rng.random((clips, common)) < 0.3
    scores = np.clip(labels * 0.3 + rng.random(labels.shape) * 0.7, 0, 1)
    for k in range(rare):
        t = common + k
        labels[k, t] = 1
        scores[:, t] = 0.5 + 0.4 * rng.random(clips)
        scores[k, t] = 0.1
    names = [f"t{i}" for i in range(labels.shape[1])]
    metrics = tag_metrics(labels, scores, names)
    ci = bootstrap_intervals(labels, scores, resamples=300, seed=0)
    for key, point in (("pr_auc", metrics.pr_auc), ("roc_auc", metrics.roc_auc)):
        assert ci[key][0] <= point <= ci[key][1], (key, point, ci[key])
    assert metrics.excluded == ("t10",)
    result = Evaluation("m.keras", "test", dataclasses.replace(metrics, intervals=ci),
                        ClipPredictions(np.arange(clips), labels, scores, 0.5, clips))
    lines = report_lines(result)
    assert any("each over the same 10 tags as the estimate" in line for line in lines)
    assert ("excluded from the averages and intervals (no positive or no negative clip "
            "in test): t10") in lines
