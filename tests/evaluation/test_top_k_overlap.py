"""Top-k overlap, plain and tie-aware (evaluation/agreement.py): a swap of
the k-th and (k+1)-th tag whose teacher scores are within the tolerance is
no miss in the tie-aware figure, and is one in the plain figure."""

from __future__ import annotations

import numpy as np

from tagger.evaluation.agreement import tie_aware_top_k_overlap, top_k_overlap

# the teacher's scores of 7 tags: its top 5 are tags 0-4; tag 5 scores 0.005
# under tag 4, tag 6 0.05 under it
TEACHER = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.495, 0.45]])


def student_with(order):
    """Scores ranking the tags in `order`, best first."""
    scores = np.zeros((1, TEACHER.shape[1]))
    scores[0, list(order)] = np.linspace(1.0, 0.4, len(order))
    return scores


def test_a_swap_of_the_fifth_and_sixth_tag_within_the_tolerance_is_no_miss():
    swapped = student_with([0, 1, 2, 3, 5, 4, 6])
    assert top_k_overlap(swapped, TEACHER, 5)[0] == 0.8
    assert tie_aware_top_k_overlap(swapped, TEACHER, 5, tolerance=0.01)[0] == 1.0
    assert tie_aware_top_k_overlap(swapped, TEACHER, 5, tolerance=0.001)[0] == 0.8


def test_a_tag_further_below_the_fifth_is_a_miss_in_both():
    further = student_with([0, 1, 2, 3, 6, 4, 5])
    assert top_k_overlap(further, TEACHER, 5)[0] == 0.8
    assert tie_aware_top_k_overlap(further, TEACHER, 5, tolerance=0.01)[0] == 0.8


def test_the_same_ranking_and_every_clip_are_counted():
    same = student_with(range(7))
    teacher = np.concatenate([TEACHER, TEACHER[:, ::-1]])  # the second: 6 first, 1 tied fifth
    student = np.concatenate([same, same])
    np.testing.assert_allclose(tie_aware_top_k_overlap(student, teacher, 5), [1.0, 0.8])
    np.testing.assert_allclose(top_k_overlap(student, teacher, 5), [1.0, 0.6])
    assert tie_aware_top_k_overlap(student, teacher, 0).tolist() == [0.0, 0.0]
